import TensorCore

// Exp — https://onnx.ai/onnx/operators/onnx__Exp.html
// Opsets 6, 13 (CAMKit: 11–21): natural exponential.
// Types: float32.

/// ONNX `Exp`.
struct ExpOperator: DifferentiableOperator {
    init(node: Node, opset: Int) throws {}

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        try inferUnary(inputs, allowed: [.float32])
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        [exp(try required(inputs, 0, "X"))]
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        guard let g = outputGradient(outputGradients),
              wantsGradient(needed, inputs, 0) else { return [nil] }
        return [expPullback(g, result: outputs[0])]
    }
}
