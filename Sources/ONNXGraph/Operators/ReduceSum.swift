import TensorCore

// ReduceSum — https://onnx.ai/onnx/operators/onnx__ReduceSum.html
// Opsets 1, 11 (`axes` attribute), 13 (`axes` as optional input 1, `noop_with_empty_axes`) (CAMKit: 11–21).
// Types: float32, int64 (shape arithmetic).

/// ONNX `ReduceSum`; the shared axes handling is ``ReduceOperator``'s.
struct ReduceSumOperator: ReduceOperator {
    let configuration: ReduceConfiguration
    static let axesInputSince = 13

    static func reduce(_ x: Tensor, axes: [Int], keepingDimensions keep: Bool) -> Tensor {
        x.sum(alongAxes: axes, keepingDimensions: keep)
    }

    static func reducePullback(_ x: Tensor, gradient: Tensor, axes: [Int], keepingDimensions keep: Bool) -> Tensor {
        sumPullback(gradient: gradient, inputShape: x.shape, axes: axes, keepingDimensions: keep)
    }
}
