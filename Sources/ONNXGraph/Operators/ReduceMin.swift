import TensorCore

// ReduceMin — https://onnx.ai/onnx/operators/onnx__ReduceMin.html
// Opsets 1, 11, 12, 13 (`axes` attribute), 18 (`axes` as optional input 1, `noop_with_empty_axes`), 20 (bool,
// not supported) (CAMKit: 11–21). The gradient goes to the first minimal element of each slice.
// Types: float32, int64 (shape arithmetic).

/// ONNX `ReduceMin`; the shared axes handling is ``ReduceOperator``'s.
struct ReduceMinOperator: ReduceOperator {
    let configuration: ReduceConfiguration
    static let axesInputSince = 18

    static func reduce(_ x: Tensor, axes: [Int], keepingDimensions keep: Bool) -> Tensor {
        x.minimum(alongAxes: axes, keepingDimensions: keep)
    }

    static func reducePullback(_ x: Tensor, gradient: Tensor, axes: [Int], keepingDimensions keep: Bool) -> Tensor {
        minPullback(x, gradient: gradient, axes: axes, keepingDimensions: keep)
    }
}
