import TensorCore

// LogSoftmax — https://onnx.ai/onnx/operators/onnx__LogSoftmax.html
// Opsets 1, 11 (`axis` default 1; the input is coerced to 2-D — `(Π shape[..<axis], Π shape[axis...])` —
// and normalised along its second dimension), 13 (`axis` default −1; normalised along that one
// axis) (CAMKit: 11–21). Types: float32.

/// ONNX `LogSoftmax` (`log(softmax(x))`, computed as `x − max − log Σ exp(x − max)`); the shared
/// behaviour is ``SoftmaxFamilyOperator``'s.
struct LogSoftmaxOperator: SoftmaxFamilyOperator {
    let axis: Int
    let coercedTo2D: Bool

    static func forward(_ x: Tensor, alongAxis axis: Int) -> Tensor { logSoftmax(x, alongAxis: axis) }

    static func backward(output: Tensor, gradient: Tensor, alongAxis axis: Int) -> Tensor {
        logSoftmaxPullback(output: output, gradient: gradient, alongAxis: axis)
    }
}
