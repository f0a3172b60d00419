import TensorCore

// Neg — https://onnx.ai/onnx/operators/onnx__Neg.html
// Opsets 6, 13 (CAMKit: 11–21): negation.
// Types: float32, int64.

/// ONNX `Neg`.
struct NegOperator: DifferentiableOperator {
    init(node: Node, opset: Int) throws {}

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        try inferUnary(inputs, allowed: [.float32, .int64])
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        [negative(try required(inputs, 0, "X"))]
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        guard let g = outputGradient(outputGradients),
              wantsGradient(needed, inputs, 0) else { return [nil] }
        return [negative(g)]
    }
}
