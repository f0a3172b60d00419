import TensorCore

/// EigenCAM: the projection of the activations on their first principal component; needs neither
/// gradients nor a target (the map is class-agnostic).
///
/// Muhammad & Yeasin 2020, "Eigen-CAM: Class Activation Map using Principal Components", eq. 4–5:
/// `L = A · V₁` with `V₁` the first right-singular vector of the (centred) activations.
/// Matches pytorch-grad-cam `eigen_cam.py` / `utils/svd_on_activations.py` **up to sign**: the
/// reference's sign is whatever LAPACK returns; CAMKit makes the projection correlate positively
/// with `Σ_k A_k` (see ``EigenDecomposition``), so a map the reference shows inverted is upright here.
///
/// Fixture cases `vit_ln1_pred` and `swin_norm_eigen` (EigenCAM on a LayerNorm output): there the
/// channels sum to ~0 at every token (the randomly initialised norms have γ = 1, β = 0), so
/// `Σ_k V[0]_k ≈ 1e-7` and the reference's sign — LAPACK's, and even the fixture's `Σ V[0] ≥ 0`
/// convention file — is rounding noise. CAMKit then falls back to "largest-magnitude projection
/// value positive"; the maps equal the reference's up to sign (Pearson 1.0 after inverting),
/// which is how the parity tests compare them.
public struct EigenCAM: GradientFreeCAMMethod {
    public var name: String { "EigenCAM" }
    /// Creates the method.
    public init() {}

    public func contribution(activations: Tensor, probe: LayerProbe) throws -> LayerContribution {
        .principalComponent(activations)
    }
}
