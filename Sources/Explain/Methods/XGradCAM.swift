import TensorCore

/// XGradCAM: channel weights are the gradient averaged with the activation as weights.
///
/// Fu et al. 2020, "Axiom-based Grad-CAM: Towards Accurate Visualization and Explanation of CNNs",
/// eq. 10: `w_k = Σ_ij (A_kij / (Σ_ab A_kab + ε)) · ∂y/∂A_kij` with ε = 1e-7.
/// Matches pytorch-grad-cam `xgrad_cam.py`.
public struct XGradCAM: GradientCAMMethod {
    public var name: String { "XGradCAM" }
    /// The ε added to the activation sum (reference 1e-7).
    public var epsilon: Float
    /// Creates the method.
    public init(epsilon: Float = 1e-7) { self.epsilon = epsilon }

    public func contribution(activations: Tensor, gradients: Tensor) throws -> LayerContribution {
        let eps = epsilon
        return .channelWeights(spatialReduce(gradients, activations) { g, a, n in
            guard let a else { return 0 }
            var sumA: Float = 0
            for p in 0..<n { sumA += a[p] }
            let d = sumA + eps
            var w: Float = 0
            for p in 0..<n { w += g[p] * a[p] / d }
            return w
        })
    }
}
