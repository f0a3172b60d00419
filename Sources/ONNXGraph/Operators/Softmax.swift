import TensorCore

// Softmax — https://onnx.ai/onnx/operators/onnx__Softmax.html
// Opsets 1, 11 (`axis` default 1; the input is coerced to 2-D — `(Π shape[..<axis], Π shape[axis...])` —
// and normalised along its second dimension), 13 (`axis` default −1; normalised along that one
// axis) (CAMKit: 11–21). Types: float32.

/// ONNX `Softmax`.
struct SoftmaxOperator: SoftmaxFamilyOperator {
    let axis: Int
    let coercedTo2D: Bool

    static func forward(_ x: Tensor, alongAxis axis: Int) -> Tensor { softmax(x, alongAxis: axis) }

    static func backward(output: Tensor, gradient: Tensor, alongAxis axis: Int) -> Tensor {
        softmaxPullback(output: output, gradient: gradient, alongAxis: axis)
    }
}

/// What Softmax and LogSoftmax share: the `axis` attribute (default 1 before opset 13, −1 from
/// 13), the opset < 13 coercion of the input to 2-D at `axis`, shape inference and the reshaping
/// around the kernel and its pullback (which needs only the output).
protocol SoftmaxFamilyOperator: DifferentiableOperator {
    /// The axis attribute (possibly negative).
    var axis: Int { get }
    /// Opset < 13: flatten to 2-D at `axis` (normalise over all trailing axes together).
    var coercedTo2D: Bool { get }
    init(axis: Int, coercedTo2D: Bool)
    /// The kernel along one axis.
    static func forward(_ x: Tensor, alongAxis axis: Int) -> Tensor
    /// The kernel's pullback from its output.
    static func backward(output: Tensor, gradient: Tensor, alongAxis axis: Int) -> Tensor
}

extension SoftmaxFamilyOperator {
    init(node: Node, opset: Int) throws {
        let coerced = opset < 13
        self.init(axis: try node.int("axis", default: coerced ? 1 : -1), coercedTo2D: coerced)
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
        return [Self.forward(x.reshaped(to: view.shape), alongAxis: view.axis).reshaped(to: x.shape)]
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        guard let g = LinearAlgebraSupport.gradient(outputGradients), LinearAlgebraSupport.wants(needed, inputs, 0),
              let y = outputs.first else { return [nil] }
        let view = try kernelView(y.shape)
        return [Self.backward(output: y.reshaped(to: view.shape), gradient: g.reshaped(to: view.shape),
                              alongAxis: view.axis).reshaped(to: y.shape)]
    }
}
