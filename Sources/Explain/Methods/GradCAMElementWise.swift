import TensorCore

/// Grad-CAM element-wise: like HiResCAM but with the ReLU applied to each product before the
/// channel sum, `L = Σ_k ReLU(∂y/∂A_k ⊙ A_k)`.
///
/// pytorch-grad-cam's own variant (no paper; README "GradCAMElementWise"), matching
/// `grad_cam_elementwise.py`.
public struct GradCAMElementWise: GradientCAMMethod {
    public var name: String { "GradCAMElementWise" }
    /// Creates the method.
    public init() {}

    public func contribution(activations: Tensor, gradients: Tensor) throws -> LayerContribution {
        .weightedActivations(elementwise(gradients, activations) { max($0 * $1, 0) })
    }
}
