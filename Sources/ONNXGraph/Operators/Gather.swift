import TensorCore

// Gather — https://onnx.ai/onnx/operators/onnx__Gather.html
// Opsets 1, 11 (negative indices), 13 (CAMKit: 11–21). Any data dtype; int64 indices of any shape
// (a scalar index drops the axis). Out-of-range indices are an error.

/// ONNX `Gather`.
struct GatherOperator: DifferentiableOperator {
    /// The indexed axis (may be negative).
    let axis: Int

    init(node: Node, opset: Int) throws {
        axis = try node.int("axis", default: 0)
    }

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        let data = try required(inputs, 0, "data")
        let indices = try required(inputs, 1, "indices")
        guard indices.dtype == .int64 else { throw OperatorError("indices must be int64, got \(indices.dtype)") }
        let ax = try ShapingSupport.axis(axis, rank: data.shape.count)
        if let c = indices.constant { try ShapingSupport.checkIndices(c, extent: data.shape[ax], "indices") }
        let shape = Array(data.shape[..<ax]) + indices.shape + Array(data.shape[(ax + 1)...])
        return [ValueInfo(shape: shape, dtype: data.dtype)]
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let data = try required(inputs, 0, "data")
        let indices = try required(inputs, 1, "indices")
        let ax = try ShapingSupport.axis(axis, rank: data.rank)
        try ShapingSupport.checkIndices(indices, extent: data.shape[ax], "indices")
        return [data.gathered(indices: indices, alongAxis: ax)]
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        guard let g = ShapingSupport.gradient(outputGradients), ShapingSupport.wants(needed, inputs, 0),
              let data = inputs[0], let indices = inputs[1] else { return [nil, nil] }
        return [gatherPullback(g, indices: indices, alongAxis: try ShapingSupport.axis(axis, rank: data.rank),
                               inputShape: data.shape), nil]
    }
}
