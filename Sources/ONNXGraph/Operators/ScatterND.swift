import TensorCore

// ScatterND — https://onnx.ai/onnx/operators/onnx__ScatterND.html
// Opsets 11, 13, 16 (reduction add/mul), 18 (reduction max/min) (CAMKit: 11–21). Data float32,
// int64 or bool (bool only without reduction); int64 indices [..., k]; updates of shape
// indices.shape[..<q−1] + data.shape[k...]. Gradients for reduction none and add.

/// ONNX `ScatterND`.
struct ScatterNDOperator: DifferentiableOperator {
    /// How updates combine with the data.
    let reduction: ScatterReduction

    init(node: Node, opset: Int) throws {
        let name = try node.string("reduction", default: "none")
        guard let r = ScatterReduction(rawValue: name) else {
            throw OperatorError("reduction '\(name)' is not one of none, add, mul, max, min")
        }
        reduction = r
    }

    private func validate(data: [Int], dtype: DType, indices: ValueInfo, updates: ValueInfo) throws {
        guard indices.dtype == .int64 else { throw OperatorError("indices must be int64, got \(indices.dtype)") }
        guard updates.dtype == dtype else { throw OperatorError("updates are \(updates.dtype) but data is \(dtype)") }
        guard dtype != .bool || reduction == .none else { throw OperatorError("bool data only supports reduction none") }
        guard let k = indices.shape.last, k <= data.count else {
            throw OperatorError("indices shape \(indices.shape) must end in k ≤ data rank \(data.count)")
        }
        let expected = Array(indices.shape.dropLast()) + Array(data[k...])
        guard updates.shape == expected else {
            throw OperatorError("updates have shape \(updates.shape); expected \(expected)")
        }
    }

    private func checkRange(_ indices: Tensor, data: [Int]) throws {
        guard let k = indices.shape.last, k > 0 else { return }
        try indices.withUnsafeInt64BufferPointer { b in
            for (i, v) in b.enumerated() {
                let n = Int64(data[i % k])
                guard v >= -n && v < n else {
                    throw OperatorError("index \(v) is outside [\(-n), \(n - 1)] for dim \(i % k) of data \(data)")
                }
            }
        }
    }

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        let data = try required(inputs, 0, "data")
        let indices = try required(inputs, 1, "indices")
        try validate(data: data.shape, dtype: data.dtype, indices: indices, updates: try required(inputs, 2, "updates"))
        if let c = indices.constant { try checkRange(c, data: data.shape) }
        return [ValueInfo(shape: data.shape, dtype: data.dtype)]
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let data = try required(inputs, 0, "data")
        let indices = try required(inputs, 1, "indices")
        let updates = try required(inputs, 2, "updates")
        try validate(data: data.shape, dtype: data.dtype, indices: ValueInfo(shape: indices.shape, dtype: indices.dtype),
                     updates: ValueInfo(shape: updates.shape, dtype: updates.dtype))
        try checkRange(indices, data: data.shape)
        return [scatteredND(data, indices: indices, updates: updates, reduction: reduction)]
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        guard let g = ShapingSupport.gradient(outputGradients), let indices = inputs[1], let updates = inputs[2],
              ShapingSupport.wants(needed, inputs, 0) || ShapingSupport.wants(needed, inputs, 2) else { return [nil, nil, nil] }
        guard reduction == .none || reduction == .add else {
            throw OperatorError("ScatterND has no gradient for reduction '\(reduction.rawValue)'")
        }
        let (dData, dUpdates) = scatterNDPullback(g, indices: indices, updatesShape: updates.shape, reduction: reduction)
        return [ShapingSupport.wants(needed, inputs, 0) ? dData : nil, nil,
                ShapingSupport.wants(needed, inputs, 2) ? dUpdates : nil]
    }
}
