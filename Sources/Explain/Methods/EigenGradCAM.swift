import TensorCore

/// EigenGradCAM: EigenCAM on the gradient-weighted activations `G ⊙ A`, which makes it
/// class-discriminative.
///
/// pytorch-grad-cam's variant of Muhammad & Yeasin 2020 (Eigen-CAM, eq. 4–5) applied to
/// `∂y/∂A ⊙ A`; matches `eigen_grad_cam.py` **up to sign** (see ``EigenCAM``).
public struct EigenGradCAM: GradientCAMMethod {
    public var name: String { "EigenGradCAM" }
    /// Creates the method.
    public init() {}

    public func contribution(activations: Tensor, gradients: Tensor) throws -> LayerContribution {
        .principalComponent(elementwise(gradients, activations) { $0 * $1 })
    }
}
