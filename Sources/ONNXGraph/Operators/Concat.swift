import TensorCore

// Concat — https://onnx.ai/onnx/operators/onnx__Concat.html
// Opsets 4, 11 (negative axis), 13 (CAMKit: 11–21). Any dtype; all inputs share dtype and rank and
// agree off the axis.

/// ONNX `Concat`.
struct ConcatOperator: DifferentiableOperator {
    /// The joining axis (may be negative).
    let axis: Int

    init(node: Node, opset: Int) throws {
        axis = try node.int("axis")
    }

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        guard !inputs.isEmpty else { throw OperatorError("Concat needs at least one input") }
        let all = try inputs.indices.map { try required(inputs, $0, "inputs") }
        let first = all[0]
        let rank = first.shape.count
        let ax = try ShapingSupport.axis(axis, rank: rank)
        var shape = first.shape
        shape[ax] = 0
        for (i, v) in all.enumerated() {
            guard v.dtype == first.dtype else {
                throw OperatorError("input \(i) is \(v.dtype) but input 0 is \(first.dtype)")
            }
            guard v.shape.count == rank else {
                throw OperatorError("input \(i) has rank \(v.shape.count) but input 0 has rank \(rank)")
            }
            for d in 0..<rank where d != ax && v.shape[d] != first.shape[d] {
                throw OperatorError("input \(i) has shape \(v.shape), incompatible with \(first.shape) off axis \(ax)")
            }
            shape[ax] += v.shape[ax]
        }
        return [ValueInfo(shape: shape, dtype: first.dtype)]
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let all = try inputs.indices.map { try required(inputs, $0, "inputs") }
        guard let first = all.first else { throw OperatorError("Concat needs at least one input") }
        return [concatenated(all, alongAxis: try ShapingSupport.axis(axis, rank: first.rank))]
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        guard let g = ShapingSupport.gradient(outputGradients) else { return inputs.map { _ in nil } }
        let ax = try ShapingSupport.axis(axis, rank: g.rank)
        let sizes = inputs.map { $0?.shape[ax] ?? 0 }
        let pieces = concatenatePullback(g, sizes: sizes, alongAxis: ax)
        return inputs.indices.map { ShapingSupport.wants(needed, inputs, $0) ? pieces[$0] : nil }
    }
}
