import TensorCore

// Gelu — https://onnx.ai/onnx/operators/onnx__Gelu.html
// Opset 20 (CAMKit: 11–21; earlier exports decompose GELU into Erf/Mul/Add): attribute
// `approximate` = "none" (exact, x·Φ(x)) or "tanh". Type: float32.

/// ONNX `Gelu`.
struct GeluOperator: DifferentiableOperator {
    /// How Φ is evaluated.
    let approximation: GeluApproximation

    init(node: Node, opset: Int) throws {
        let a = try node.string("approximate", default: "none")
        guard let approximation = GeluApproximation(rawValue: a) else {
            throw OperatorError("attribute 'approximate' must be \"none\" or \"tanh\", got \"\(a)\"")
        }
        self.approximation = approximation
    }

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        try inferUnary(inputs, allowed: [.float32])
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        [gelu(try required(inputs, 0, "X"), approximation: approximation)]
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        guard let g = outputGradient(outputGradients), let x = elementwiseInput(inputs, 0),
              wantsGradient(needed, inputs, 0) else { return [nil] }
        return [geluPullback(g, input: x, approximation: approximation)]
    }
}
