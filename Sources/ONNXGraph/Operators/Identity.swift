import TensorCore

// Identity — https://onnx.ai/onnx/operators/onnx__Identity.html
// Opsets 1, 13, 14, 16, 19, 21 (CAMKit: 11–21): returns its input. Types: float32, int64, bool
// (sequences and optionals, opset 14+, are not supported).

/// ONNX `Identity`.
struct IdentityOperator: DifferentiableOperator {
    init(node: Node, opset: Int) throws {}

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        try inferUnary(inputs, allowed: [.float32, .int64, .bool], name: "input")
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        [try required(inputs, 0, "input")]
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        [wantsGradient(needed, inputs, 0) ? outputGradient(outputGradients) : nil]
    }
}
