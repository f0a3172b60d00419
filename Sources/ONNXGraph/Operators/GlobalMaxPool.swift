import TensorCore

// GlobalMaxPool — https://onnx.ai/onnx/operators/onnx__GlobalMaxPool.html
// Opset 1 (CAMKit: 11–21). X [N, C, spatial...] → [N, C, 1, ..., 1], the maximum of each plane.
// Any number of spatial axes; float32. Gradient: to the first maximal element of each plane.

/// ONNX `GlobalMaxPool`.
struct GlobalMaxPoolOperator: DifferentiableOperator {
    init(node: Node, opset: Int) throws {}

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        let x = try required(inputs, 0, "X")
        guard x.dtype == .float32 else { throw OperatorError("X must be float32, got \(x.dtype)") }
        guard x.shape.count >= 3 else { throw OperatorError("X must be [N, C, spatial...], got shape \(x.shape)") }
        guard x.shape[2...].allSatisfy({ $0 > 0 }) else { throw OperatorError("X has an empty spatial axis: \(x.shape)") }
        return [ValueInfo(shape: [x.shape[0], x.shape[1]] + Array(repeating: 1, count: x.shape.count - 2), dtype: .float32)]
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        [globalMaxPool(try required(inputs, 0, "X"))]
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        guard needed.first == true, let dy = outputGradients.first ?? nil else { return [nil] }
        return [globalMaxPoolPullback(try required(inputs, 0, "X"), outputGradient: dy)]
    }
}
