import TensorCore

/// LayerCAM: each position's activation weighted by its own positive gradient.
///
/// Jiang et al. 2021, "LayerCAM: Exploring Hierarchical Class Activation Maps for Localization"
/// (IEEE TIP), eq. 5–6: `L = ReLU(Σ_k ReLU(∂y/∂A_k) ⊙ A_k)`. Matches pytorch-grad-cam `layer_cam.py`.
public struct LayerCAM: GradientCAMMethod {
    public var name: String { "LayerCAM" }
    /// Creates the method.
    public init() {}

    public func contribution(activations: Tensor, gradients: Tensor) throws -> LayerContribution {
        .weightedActivations(elementwise(gradients, activations) { max($0, 0) * $1 })
    }
}
