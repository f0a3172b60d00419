import TensorCore

// Expand — https://onnx.ai/onnx/operators/onnx__Expand.html
// Opsets 8, 13 (CAMKit: 11–21). Any dtype. The constant shape input and the data's shape broadcast
// bidirectionally (NumPy rules), so a 1 in the requested shape keeps the data's extent.

/// ONNX `Expand`.
struct ExpandOperator: DifferentiableOperator {
    init(node: Node, opset: Int) throws {}

    /// The bidirectional broadcast of `a` and `b`.
    static func broadcast(_ a: [Int], _ b: [Int]) throws -> [Int] {
        let rank = max(a.count, b.count)
        let pa = [Int](repeating: 1, count: rank - a.count) + a
        let pb = [Int](repeating: 1, count: rank - b.count) + b
        return try (0..<rank).map { d in
            if pa[d] == pb[d] || pb[d] == 1 { return pa[d] }
            if pa[d] == 1 { return pb[d] }
            throw OperatorError("cannot expand shape \(a) to \(b): extents \(pa[d]) and \(pb[d]) differ at dim \(d)")
        }
    }

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        let x = try required(inputs, 0, "input")
        let shape = try ShapingSupport.ints(try constant(inputs, 1, "shape"), "shape")
        guard shape.allSatisfy({ $0 >= 0 }) else { throw OperatorError("shape \(shape) has a negative extent") }
        return [ValueInfo(shape: try Self.broadcast(x.shape, shape), dtype: x.dtype)]
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try required(inputs, 0, "input")
        let shape = try ShapingSupport.ints(try required(inputs, 1, "shape"), "shape")
        return [x.expanded(toShape: try Self.broadcast(x.shape, shape))]
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        guard let g = ShapingSupport.gradient(outputGradients), ShapingSupport.wants(needed, inputs, 0),
              let x = inputs[0] else { return [nil, nil] }
        return [expandPullback(g, inputShape: x.shape), nil]
    }
}
