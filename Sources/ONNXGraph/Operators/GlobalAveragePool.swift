import TensorCore

// GlobalAveragePool — https://onnx.ai/onnx/operators/onnx__GlobalAveragePool.html
// Opset 1 (CAMKit: 11–21). X [N, C, spatial...] → [N, C, 1, ..., 1], the mean of each plane.
// Any number of spatial axes; float32.

/// ONNX `GlobalAveragePool`.
struct GlobalAveragePoolOperator: DifferentiableOperator {
    init(node: Node, opset: Int) throws {}

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        let x = try required(inputs, 0, "X")
        guard x.dtype == .float32 else { throw OperatorError("X must be float32, got \(x.dtype)") }
        guard x.shape.count >= 3 else { throw OperatorError("X must be [N, C, spatial...], got shape \(x.shape)") }
        return [ValueInfo(shape: [x.shape[0], x.shape[1]] + Array(repeating: 1, count: x.shape.count - 2), dtype: .float32)]
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        [globalAvgPool(try required(inputs, 0, "X"))]
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        guard needed.first == true, let dy = outputGradients.first ?? nil else { return [nil] }
        let x = try required(inputs, 0, "X")
        return [globalAvgPoolPullback(inputShape: x.shape, outputGradient: dy)]
    }
}
