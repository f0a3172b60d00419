import TensorCore

/// Grad-CAM: channel weights are the spatial mean of the gradient.
///
/// Selvaraju et al. 2017, "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based
/// Localization", eq. 1: `α_k = 1/Z Σ_ij ∂y/∂A_kij`, `L = ReLU(Σ_k α_k A_k)` (eq. 2).
/// Matches pytorch-grad-cam `grad_cam.py` (`np.mean(grads, axis=(2, 3))`).
public struct GradCAM: GradientCAMMethod {
    public var name: String { "GradCAM" }
    /// Creates the method.
    public init() {}

    public func contribution(activations: Tensor, gradients: Tensor) throws -> LayerContribution {
        .channelWeights(spatialReduce(gradients) { g, _, n in
            var s = 0.0
            for p in 0..<n { s += Double(g[p]) }
            return Float(s / Double(n))
        })
    }
}

/// Applies `body(gradientChannel, activationChannel, count)` to every (b, k) channel of (B, K, H, W)
/// tensors and returns the (B, K) results.
func spatialReduce(_ g: Tensor, _ a: Tensor? = nil,
                   _ body: (UnsafeBufferPointer<Float>, UnsafeBufferPointer<Float>?, Int) -> Float) -> Tensor {
    let (b, k) = (g.shape[0], g.shape[1])
    let n = g.count / max(b * k, 1)
    var out = Tensor(zeros: [b, k])
    out.withUnsafeMutableBufferPointer { o in
        g.withUnsafeBufferPointer { gp in
            if let a {
                a.withUnsafeBufferPointer { ap in
                    for i in 0..<(b * k) {
                        o[i] = body(UnsafeBufferPointer(rebasing: gp[(i * n)..<((i + 1) * n)]),
                                    UnsafeBufferPointer(rebasing: ap[(i * n)..<((i + 1) * n)]), n)
                    }
                }
            } else {
                for i in 0..<(b * k) {
                    o[i] = body(UnsafeBufferPointer(rebasing: gp[(i * n)..<((i + 1) * n)]), nil, n)
                }
            }
        }
    }
    return out
}

/// `f(G, A)` element by element over same-shaped tensors.
func elementwise(_ g: Tensor, _ a: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
    precondition(g.shape == a.shape, "gradients \(g.shape) and activations \(a.shape) differ")
    var out = Tensor(uninitializedShape: a.shape)
    g.withUnsafeBufferPointer { gp in
        a.withUnsafeBufferPointer { ap in
            out.withUnsafeMutableBufferPointer { o in
                for i in 0..<o.count { o[i] = f(gp[i], ap[i]) }
            }
        }
    }
    return out
}
