import TensorCore

// LogSoftmax — https://onnx.ai/onnx/operators/onnx__LogSoftmax.html
// Opsets 1, 11 (`axis` default 1; the input is coerced to 2-D — `(Π shape[..<axis], Π shape[axis...])` —
// and normalised along its second dimension), 13 (`axis` default −1; normalised along that one
// axis) (CAMKit: 11–21). Types: float32.

/// ONNX `LogSoftmax` (`log(softmax(x))`, computed as `x − max − log Σ exp(x − max)`).
struct LogSoftmaxOperator: DifferentiableOperator {
    /// The axis attribute (possibly negative).
    let axis: Int
    /// Opset < 13: flatten to 2-D at `axis` (normalise over all trailing axes together).
    let coercedTo2D: Bool

    init(node: Node, opset: Int) throws {
        coercedTo2D = opset < 13
        axis = try node.int("axis", default: coercedTo2D ? 1 : -1)
    }

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        let x = try required(inputs, 0, "input")
        try LinearAlgebraSupport.require(x, [.float32], "input")
        _ = try LinearAlgebraSupport.axis(axis, rank: Swift.max(x.shape.count, 1))
        return [ValueInfo(shape: x.shape, dtype: .float32)]
    }

    /// The shape the kernel sees and the axis it normalises.
    func kernelView(_ shape: [Int]) throws -> (shape: [Int], axis: Int) {
        let rank = Swift.max(shape.count, 1)
        let a = try LinearAlgebraSupport.axis(axis, rank: rank)
        let padded = shape.isEmpty ? [1] : shape
        guard coercedTo2D else { return (padded, a) }
        return ([padded[..<a].reduce(1, *), padded[a...].reduce(1, *)], 1)
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try required(inputs, 0, "input")
        let view = try kernelView(x.shape)
        return [logSoftmax(x.reshaped(to: view.shape), alongAxis: view.axis).reshaped(to: x.shape)]
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        guard let g = LinearAlgebraSupport.gradient(outputGradients), LinearAlgebraSupport.wants(needed, inputs, 0),
              let y = outputs.first else { return [nil] }
        let view = try kernelView(y.shape)
        return [logSoftmaxPullback(output: y.reshaped(to: view.shape), gradient: g.reshaped(to: view.shape),
                                   alongAxis: view.axis).reshaped(to: y.shape)]
    }
}
