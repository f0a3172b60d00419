import TensorCore

// LeakyRelu — https://onnx.ai/onnx/operators/onnx__LeakyRelu.html
// Opsets 6, 16 (CAMKit: 11–21): `x` for x ≥ 0, `alpha · x` otherwise; attribute `alpha`
// (default 0.01). Type: float32.

/// ONNX `LeakyRelu`.
struct LeakyReluOperator: DifferentiableOperator {
    /// The slope for negative inputs.
    let alpha: Float

    init(node: Node, opset: Int) throws {
        alpha = try node.float("alpha", default: 0.01)
    }

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        try inferUnary(inputs, allowed: [.float32])
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        [leakyRelu(try required(inputs, 0, "X"), alpha: alpha)]
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        guard let g = outputGradient(outputGradients), let x = elementwiseInput(inputs, 0),
              wantsGradient(needed, inputs, 0) else { return [nil] }
        return [leakyReluPullback(g, input: x, alpha: alpha)]
    }
}
