import TensorCore

// HardSwish — https://onnx.ai/onnx/operators/onnx__HardSwish.html
// Opsets 14, 22 (CAMKit: 11–21): x · max(0, min(1, x/6 + 1/2)).
// Types: float32.

/// ONNX `HardSwish`.
struct HardSwishOperator: DifferentiableOperator {
    init(node: Node, opset: Int) throws {}

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        try inferUnary(inputs, allowed: [.float32])
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        [hardSwish(try required(inputs, 0, "X"))]
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        guard let g = outputGradient(outputGradients), let x = elementwiseInput(inputs, 0),
              wantsGradient(needed, inputs, 0) else { return [nil] }
        return [hardSwishPullback(g, input: x)]
    }
}
