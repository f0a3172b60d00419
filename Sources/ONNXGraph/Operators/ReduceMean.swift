import TensorCore

// ReduceMean — https://onnx.ai/onnx/operators/onnx__ReduceMean.html
// Opsets 1, 11, 13 (`axes` attribute), 18 (`axes` as optional input 1, `noop_with_empty_axes`) (CAMKit: 11–21).
// The dynamo exporter uses it for global average pooling: (N, C, H, W) → (N, C, 1, 1), a fast path.
// Types: float32, int64 (shape arithmetic).

/// ONNX `ReduceMean`.
struct ReduceMeanOperator: DifferentiableOperator {
    /// Axes, keepdims and noop_with_empty_axes.
    let configuration: ReduceConfiguration

    init(node: Node, opset: Int) throws {
        configuration = try ReduceConfiguration(node: node, opset: opset, axesInputSince: 18)
    }

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        try configuration.inferOutputs(inputs, allowed: [.float32, .int64])
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try required(inputs, 0, "data")
        guard let axes = try configuration.axes(rank: x.rank, axesTensor: configuration.axesTensor(inputs)) else {
            return [x]
        }
        return [x.mean(alongAxes: axes, keepingDimensions: configuration.keepDimensions)]
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        var result = LinearAlgebraSupport.noGradients(inputs)
        guard let g = LinearAlgebraSupport.gradient(outputGradients), LinearAlgebraSupport.wants(needed, inputs, 0),
              let x = inputs[0] else { return result }
        guard let axes = try configuration.axes(rank: x.rank, axesTensor: configuration.axesTensor(inputs)) else {
            result[0] = g
            return result
        }
        result[0] = meanPullback(gradient: g, inputShape: x.shape, axes: axes, keepingDimensions: configuration.keepDimensions)
        return result
    }
}
