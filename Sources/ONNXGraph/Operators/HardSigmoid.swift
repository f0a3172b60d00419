import TensorCore

// HardSigmoid — https://onnx.ai/onnx/operators/onnx__HardSigmoid.html
// Opsets 6, 22 (CAMKit: 11–21): `max(0, min(1, alpha·x + beta))`; attributes `alpha` (default
// 0.2) and `beta` (default 0.5). Type: float32.

/// ONNX `HardSigmoid`.
struct HardSigmoidOperator: DifferentiableOperator {
    /// The slope.
    let alpha: Float
    /// The offset.
    let beta: Float

    init(node: Node, opset: Int) throws {
        alpha = try node.float("alpha", default: 0.2)
        beta = try node.float("beta", default: 0.5)
    }

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        try inferUnary(inputs, allowed: [.float32])
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        [hardSigmoid(try required(inputs, 0, "X"), alpha: alpha, beta: beta)]
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        guard let g = outputGradient(outputGradients), let x = elementwiseInput(inputs, 0),
              wantsGradient(needed, inputs, 0) else { return [nil] }
        return [hardSigmoidPullback(g, input: x, alpha: alpha, beta: beta)]
    }
}
