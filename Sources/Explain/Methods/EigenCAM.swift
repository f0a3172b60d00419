import TensorCore

/// EigenCAM: the projection of the activations on their first principal component; needs neither
/// gradients nor a target (the map is class-agnostic).
///
/// Muhammad & Yeasin 2020, "Eigen-CAM: Class Activation Map using Principal Components", eq. 4–5:
/// `L = A · V₁` with `V₁` the first right-singular vector of the (centred) activations.
/// Matches pytorch-grad-cam `eigen_cam.py` / `utils/svd_on_activations.py` **up to sign**: the
/// reference's sign is whatever LAPACK returns; CAMKit makes the projection correlate positively
/// with `Σ_k A_k` (see ``EigenDecomposition``), so a map the reference shows inverted is upright here.
public struct EigenCAM: GradientFreeCAMMethod {
    public var name: String { "EigenCAM" }
    /// Creates the method.
    public init() {}

    public func contribution(activations: Tensor, probe: LayerProbe) throws -> LayerContribution {
        .principalComponent(activations)
    }
}
