import Foundation

// Activation functions (Float32) and their pullbacks. ReLU has three pullbacks, one per gradient
// rule that attribution methods use: the true derivative, guided backpropagation (Springenberg et
// al. 2015, "Striving for Simplicity") and deconvnet (Zeiler & Fergus 2014).

// MARK: - ReLU

/// `max(x, 0)` elementwise (NaN propagates). Float32.
public func relu(_ x: Tensor) -> Tensor {
    mapElements(x, Float.self, to: .float32, Float.self) { mapLoop($0, $1, $2) { $0 < 0 ? 0 : $0 } }
}

/// The true gradient of `relu(x)`: `grad` where `x > 0`, else 0.
public func reluPullback(_ grad: Tensor, input x: Tensor) -> Tensor {
    zipElements(grad, x, Float.self, Float.self, to: .float32, Float.self) { zipLoop($0, $1, $2, $3) { g, v in v > 0 ? g : 0 } }
}

/// The guided-backpropagation gradient of `relu(x)`: `grad` where `x > 0` and `grad > 0`, else 0.
public func guidedReluPullback(_ grad: Tensor, input x: Tensor) -> Tensor {
    zipElements(grad, x, Float.self, Float.self, to: .float32, Float.self) { zipLoop($0, $1, $2, $3) { g, v in (v > 0 && g > 0) ? g : 0 } }
}

/// The deconvnet gradient of `relu(x)`: `relu(grad)`, ignoring the input's sign.
public func deconvnetReluPullback(_ grad: Tensor) -> Tensor {
    mapElements(grad, Float.self, to: .float32, Float.self) { mapLoop($0, $1, $2) { $0 > 0 ? $0 : 0 } }
}

// MARK: - Leaky ReLU

/// `x` for `x ≥ 0`, `alpha · x` otherwise (ONNX `LeakyRelu`, default alpha 0.01). Float32.
public func leakyRelu(_ x: Tensor, alpha: Float = 0.01) -> Tensor {
    mapElements(x, Float.self, to: .float32, Float.self) { mapLoop($0, $1, $2) { $0 < 0 ? alpha * $0 : $0 } }
}

/// The gradient of `leakyRelu(x, alpha:)`: `grad` where `x > 0`, `alpha · grad` elsewhere.
public func leakyReluPullback(_ grad: Tensor, input x: Tensor, alpha: Float = 0.01) -> Tensor {
    zipElements(grad, x, Float.self, Float.self, to: .float32, Float.self) { zipLoop($0, $1, $2, $3) { g, v in v > 0 ? g : alpha * g } }
}

// MARK: - Sigmoid and tanh

/// The logistic function `1 / (1 + e^(−x))` elementwise. Float32.
public func sigmoid(_ x: Tensor) -> Tensor {
    mapElements(x, Float.self, to: .float32, Float.self, minimumChunk: transcendentalMinimumChunk) { mapLoop($0, $1, $2) {
        logistic($0)
    } }
}

/// `1 / (1 + e^(−x))`. Both tails are safe without a branch (which would block vectorisation):
/// e^(−x) overflows to +∞ for x < −88.7, giving exactly 0, and underflows to 0 for large x,
/// giving 1; NaN propagates.
@inline(__always)
func logistic(_ v: Float) -> Float {
    1 / (1 + Foundation.exp(-v))
}

/// The gradient of `sigmoid(x)`: `grad · y · (1 − y)`, from the forward result `y`.
public func sigmoidPullback(_ grad: Tensor, result y: Tensor) -> Tensor {
    zipElements(grad, y, Float.self, Float.self, to: .float32, Float.self) { zipLoop($0, $1, $2, $3) { g, s in g * s * (1 - s) } }
}

/// The hyperbolic tangent elementwise. Float32.
public func tanh(_ x: Tensor) -> Tensor {
    mapElements(x, Float.self, to: .float32, Float.self, minimumChunk: transcendentalMinimumChunk) { mapLoop($0, $1, $2) { Foundation.tanh($0) } }
}

/// The gradient of `tanh(x)`: `grad · (1 − y²)`, from the forward result `y`.
public func tanhPullback(_ grad: Tensor, result y: Tensor) -> Tensor {
    zipElements(grad, y, Float.self, Float.self, to: .float32, Float.self) { zipLoop($0, $1, $2, $3) { g, t in g * (1 - t * t) } }
}

// MARK: - GELU

/// How ``gelu(_:approximation:)`` evaluates the Gaussian CDF (ONNX `Gelu`'s `approximate`).
public enum GeluApproximation: String, Sendable, Hashable {
    /// The exact form `x · Φ(x) = x/2 · (1 + erf(x/√2))`.
    case none
    /// Hendrycks & Gimpel's `x/2 · (1 + tanh(√(2/π) · (x + 0.044715 x³)))`.
    case tanh
}

private let sqrtHalf: Float = 0.70710678118654752
private let sqrtTwoOverPi: Float = 0.79788456080286536
private let geluCubic: Float = 0.044715
private let inverseSqrtTwoPi: Float = 0.39894228040143268

/// The Gaussian error linear unit (Hendrycks & Gimpel 2016; ONNX `Gelu`, opset 20). Float32.
public func gelu(_ x: Tensor, approximation: GeluApproximation = .none) -> Tensor {
    switch approximation {
    case .none:
        return mapElements(x, Float.self, to: .float32, Float.self, minimumChunk: transcendentalMinimumChunk) { mapLoop($0, $1, $2) { v in
            0.5 * v * (1 + Foundation.erf(v * sqrtHalf))
        } }
    case .tanh:
        return mapElements(x, Float.self, to: .float32, Float.self, minimumChunk: transcendentalMinimumChunk) { mapLoop($0, $1, $2) { v in
            0.5 * v * (1 + Foundation.tanh(sqrtTwoOverPi * (v + geluCubic * v * v * v)))
        } }
    }
}

/// The gradient of `gelu(x, approximation:)`: for the exact form `grad · (Φ(x) + x·φ(x))`; for
/// the tanh form the derivative of that expression.
public func geluPullback(_ grad: Tensor, input x: Tensor, approximation: GeluApproximation = .none) -> Tensor {
    switch approximation {
    case .none:
        return zipElements(grad, x, Float.self, Float.self, to: .float32, Float.self,
                           minimumChunk: transcendentalMinimumChunk) { zipLoop($0, $1, $2, $3) { g, v in
            let cdf = 0.5 * (1 + Foundation.erf(v * sqrtHalf))
            let pdf = inverseSqrtTwoPi * Foundation.exp(-0.5 * v * v)
            return g * (cdf + v * pdf)
        } }
    case .tanh:
        return zipElements(grad, x, Float.self, Float.self, to: .float32, Float.self,
                           minimumChunk: transcendentalMinimumChunk) { zipLoop($0, $1, $2, $3) { g, v in
            let v2 = v * v
            let t = Foundation.tanh(sqrtTwoOverPi * (v + geluCubic * v2 * v))
            let du = sqrtTwoOverPi * (1 + 3 * geluCubic * v2)
            return g * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * du)
        } }
    }
}

// MARK: - Hard sigmoid and hard swish

/// `max(0, min(1, alpha · x + beta))` elementwise (ONNX `HardSigmoid`, defaults 0.2 and 0.5). Float32.
public func hardSigmoid(_ x: Tensor, alpha: Float = 0.2, beta: Float = 0.5) -> Tensor {
    mapElements(x, Float.self, to: .float32, Float.self) { mapLoop($0, $1, $2) { v in
        let y = alpha * v + beta
        return y < 0 ? 0 : (y > 1 ? 1 : y)
    } }
}

/// The gradient of `hardSigmoid(x, alpha:beta:)`: `alpha · grad` where `0 < alpha·x + beta < 1`
/// (strictly, as PyTorch), else 0.
public func hardSigmoidPullback(_ grad: Tensor, input x: Tensor, alpha: Float = 0.2, beta: Float = 0.5) -> Tensor {
    zipElements(grad, x, Float.self, Float.self, to: .float32, Float.self) { zipLoop($0, $1, $2, $3) { g, v in
        let y = alpha * v + beta
        return (y > 0 && y < 1) ? alpha * g : 0
    } }
}

/// `x · max(0, min(1, x/6 + 1/2))` elementwise (ONNX `HardSwish`, Howard et al. 2019). Float32.
public func hardSwish(_ x: Tensor) -> Tensor {
    mapElements(x, Float.self, to: .float32, Float.self) { mapLoop($0, $1, $2) { v in
        let y = v * (1 / 6 as Float) + 0.5
        return v * (y < 0 ? 0 : (y > 1 ? 1 : y))
    } }
}

/// The gradient of `hardSwish(x)`: 0 below −3, `grad · (x/3 + 1/2)` on [−3, 3], `grad` above
/// (PyTorch's convention at the breakpoints).
public func hardSwishPullback(_ grad: Tensor, input x: Tensor) -> Tensor {
    zipElements(grad, x, Float.self, Float.self, to: .float32, Float.self) { zipLoop($0, $1, $2, $3) { g, v in
        v < -3 ? 0 : (v <= 3 ? g * (v * (1 / 3 as Float) + 0.5) : g)
    } }
}

// MARK: - Clip

/// `x` clamped to `[min, max]` elementwise (ONNX `Clip`); a `nil` bound is open. Float32 or Int64
/// (bounds are converted; for Int64 they are truncated toward zero). NaN inputs stay NaN.
/// - Precondition: `x` is Float32 or Int64.
public func clip(_ x: Tensor, min lower: Float?, max upper: Float?) -> Tensor {
    switch x.dtype {
    case .float32:
        let lo = lower ?? -Float.infinity, hi = upper ?? Float.infinity
        return mapElements(x, Float.self, to: .float32, Float.self) { mapLoop($0, $1, $2) { v in
            // ONNX Runtime applies min then max: when lo > hi every element becomes hi.
            let a = v < lo ? lo : v
            return a > hi ? hi : a
        } }
    case .int64:
        let lo = lower.map { saturatingInt64(Double($0)) } ?? Int64.min
        let hi = upper.map { saturatingInt64(Double($0)) } ?? Int64.max
        return mapElements(x, Int64.self, to: .int64, Int64.self) { mapLoop($0, $1, $2) { v in
            let a = v < lo ? lo : v
            return a > hi ? hi : a
        } }
    case .bool:
        preconditionFailure("clip of a bool tensor")
    }
}

/// The gradient of `clip(x, min:max:)`: `grad` where `min ≤ x ≤ max` (inclusive, as PyTorch's
/// `clamp`), else 0.
public func clipPullback(_ grad: Tensor, input x: Tensor, min lower: Float?, max upper: Float?) -> Tensor {
    let lo = lower ?? -Float.infinity, hi = upper ?? Float.infinity
    return zipElements(grad, x, Float.self, Float.self, to: .float32, Float.self) { zipLoop($0, $1, $2, $3) { g, v in
        (v >= lo && v <= hi) ? g : 0
    } }
}

/// The gradient of `clip(x, min:max:)` computed from its *output* `y` (when the input was not kept,
/// as in a convolution fused with its activation): `grad` where `lo < y < hi` strictly, else 0 —
/// PyTorch's `hardtanh` backward, which equals ``clipPullback(_:input:min:max:)`` except exactly at
/// the bounds.
public func clipPullback(_ grad: Tensor, output y: Tensor, min lo: Float, max hi: Float) -> Tensor {
    zipElements(grad, y, Float.self, Float.self, to: .float32, Float.self) { zipLoop($0, $1, $2, $3) { g, v in
        (v > lo && v < hi) ? g : 0
    } }
}

/// The gradients of `clip(x, min:max:)` with respect to its scalar bounds: the sum of `grad` over
/// the elements below `min` (which the output takes from `min`) and over those above `max`.
/// An absent bound gets 0.
public func clipBoundsPullback(_ grad: Tensor, input x: Tensor, min lower: Float?, max upper: Float?) -> (min: Float, max: Float) {
    let lo = lower ?? -Float.infinity, hi = upper ?? Float.infinity
    let below = zipElements(grad, x, Float.self, Float.self, to: .float32, Float.self) { zipLoop($0, $1, $2, $3) { g, v in v < lo && v <= hi ? g : 0 } }
    let above = zipElements(grad, x, Float.self, Float.self, to: .float32, Float.self) { zipLoop($0, $1, $2, $3) { g, v in (v < lo ? lo : v) > hi ? g : 0 } }
    return (below.summed(toShape: []).scalar, above.summed(toShape: []).scalar)
}

// MARK: - In-place pullbacks from the output (reverse passes in channels-last regions)

/// The gradient rule for ReLU in ``activationPullback(_:output:activation:reluRule:)``: the true
/// derivative, guided backpropagation or deconvnet (see this file's description).
public enum ReLUGradientRule: Sendable, Equatable {
    case standard, guided, deconvnet
}

/// Replaces `grad` (in place, split over the worker threads) by the gradient through `activation`
/// computed from the activation's *output* `y`, the same numbers as ``reluPullback(_:input:)``
/// (and its guided and deconvnet variants, by `reluRule`) or
/// ``clipPullback(_:output:min:max:)``: `y > 0` exactly where `x > 0`, and `lo < y < hi`
/// exactly where `lo < x < hi`. `.none` leaves `grad` unchanged. The layout does not matter
/// (elementwise). Float32.
/// - Precondition: `grad` and `y` have the same shape.
public func activationPullback(_ grad: inout Tensor, output y: Tensor, activation: FusedActivation,
                               reluRule: ReLUGradientRule = .standard) {
    precondition(grad.shape == y.shape, "activationPullback: gradient \(grad.shape), output \(y.shape)")
    if activation == .none { return }
    grad.withUnsafeMutableBufferPointer { g in
        y.withUnsafeBufferPointer { v in
            guard let gp = g.baseAddress, let vp = v.baseAddress else { return }
            parallelFor(g.count, minimumChunk: 1 << 15) { range in
                // Unconditional loads and a select, so that the loops vectorise.
                switch activation {
                case .none: break
                case .relu:
                    switch reluRule {
                    case .standard: for i in range { let g = gp[i], v = vp[i]; gp[i] = v > 0 ? g : 0 }
                    case .guided: for i in range { let g = gp[i], v = vp[i]; gp[i] = v > 0 && g > 0 ? g : 0 }
                    case .deconvnet: for i in range { let g = gp[i]; gp[i] = g > 0 ? g : 0 }
                    }
                case .clip(let lo, let hi):
                    for i in range { let g = gp[i], v = vp[i]; gp[i] = v > lo && v < hi ? g : 0 }
                }
            }
        }
    }
}
