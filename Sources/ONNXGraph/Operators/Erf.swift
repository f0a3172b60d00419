import TensorCore

// Erf — https://onnx.ai/onnx/operators/onnx__Erf.html
// Opsets 9, 13 (CAMKit: 11–21): the Gauss error function.
// Types: float32.

/// ONNX `Erf`.
struct ErfOperator: DifferentiableOperator {
    init(node: Node, opset: Int) throws {}

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        try inferUnary(inputs, allowed: [.float32])
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        [erf(try required(inputs, 0, "X"))]
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        guard let g = outputGradient(outputGradients), let x = elementwiseInput(inputs, 0),
              wantsGradient(needed, inputs, 0) else { return [nil] }
        return [erfPullback(g, input: x)]
    }
}
