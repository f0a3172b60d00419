import TensorCore

// Log — https://onnx.ai/onnx/operators/onnx__Log.html
// Opsets 6, 13 (CAMKit: 11–21): natural logarithm.
// Types: float32.

/// ONNX `Log`.
struct LogOperator: DifferentiableOperator {
    init(node: Node, opset: Int) throws {}

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        try inferUnary(inputs, allowed: [.float32])
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        [log(try required(inputs, 0, "X"))]
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        guard let g = outputGradient(outputGradients), let x = elementwiseInput(inputs, 0),
              wantsGradient(needed, inputs, 0) else { return [nil] }
        return [logPullback(g, input: x)]
    }
}
