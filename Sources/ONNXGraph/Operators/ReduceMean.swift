import TensorCore

// ReduceMean — https://onnx.ai/onnx/operators/onnx__ReduceMean.html
// Opsets 1, 11, 13 (`axes` attribute), 18 (`axes` as optional input 1, `noop_with_empty_axes`) (CAMKit: 11–21).
// The dynamo exporter uses it for global average pooling: (N, C, H, W) → (N, C, 1, 1), a fast path.
// Types: float32, int64 (shape arithmetic).

/// ONNX `ReduceMean`; the shared axes handling is ``ReduceOperator``'s.
struct ReduceMeanOperator: ReduceOperator {
    let configuration: ReduceConfiguration
    static let axesInputSince = 18

    static func reduce(_ x: Tensor, axes: [Int], keepingDimensions keep: Bool) -> Tensor {
        x.mean(alongAxes: axes, keepingDimensions: keep)
    }

    static func reducePullback(_ x: Tensor, gradient: Tensor, axes: [Int], keepingDimensions keep: Bool) -> Tensor {
        meanPullback(gradient: gradient, inputShape: x.shape, axes: axes, keepingDimensions: keep)
    }
}
