import TensorCore

// Abs — https://onnx.ai/onnx/operators/onnx__Abs.html
// Opsets 6, 13 (CAMKit: 11–21): absolute value.
// Types: float32, int64.

/// ONNX `Abs`.
struct AbsOperator: DifferentiableOperator {
    init(node: Node, opset: Int) throws {}

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        try inferUnary(inputs, allowed: [.float32, .int64])
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        [abs(try required(inputs, 0, "X"))]
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        guard let g = outputGradient(outputGradients), let x = elementwiseInput(inputs, 0),
              wantsGradient(needed, inputs, 0) else { return [nil] }
        return [absPullback(g, input: x)]
    }
}
