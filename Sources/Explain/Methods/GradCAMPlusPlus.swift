import TensorCore

/// Grad-CAM++: channel weights from positive gradients weighted by α.
///
/// Chattopadhyay et al. 2018, "Grad-CAM++: Improved Visual Explanations for Deep Convolutional
/// Networks", eq. 19 (with the exponential-score simplification of eq. 17–18):
/// `α_kij = G² / (2G² + (Σ_ab A_kab)·G³ + ε)` with ε = 1e-6, α = 0 where G = 0, and
/// `w_k = Σ_ij ReLU(G_kij)·α_kij`. `Σ_ab A` is a **sum** over positions (not a mean). Matches
/// pytorch-grad-cam `grad_cam_plusplus.py` (not TorchCAM, whose variant differs).
public struct GradCAMPlusPlus: GradientCAMMethod {
    public var name: String { "GradCAMPlusPlus" }
    /// The ε in the denominator of α (reference 1e-6).
    public var epsilon: Float
    /// Creates the method.
    public init(epsilon: Float = 1e-6) { self.epsilon = epsilon }

    public func contribution(activations: Tensor, gradients: Tensor) throws -> LayerContribution {
        let eps = epsilon
        return .channelWeights(spatialReduce(gradients, activations) { g, a, n in
            guard let a else { return 0 }
            var sumA: Float = 0
            for p in 0..<n { sumA += a[p] }
            var w: Float = 0
            for p in 0..<n where g[p] != 0 {
                let g2 = g[p] * g[p], g3 = g2 * g[p]
                let alpha = g2 / (2 * g2 + sumA * g3 + eps)
                w += max(g[p], 0) * alpha
            }
            return w
        })
    }
}
