import TensorCore

/// HiResCAM: the element-wise product of gradient and activation, summed over channels (no
/// spatial pooling of the gradient), which provably reflects the locations the score uses.
///
/// Draelos & Carin 2020, "Use HiResCAM instead of Grad-CAM for faithful explanations of
/// convolutional neural networks", eq. 5: `L = Σ_k ∂y/∂A_k ⊙ A_k` (then ReLU).
/// Matches pytorch-grad-cam `hirescam.py`. With `eigenSmooth` the reference projects `G ⊙ A`
/// (and warns that the faithfulness guarantee is lost); so does CAMKit.
public struct HiResCAM: GradientCAMMethod {
    public var name: String { "HiResCAM" }
    /// Creates the method.
    public init() {}

    public func contribution(activations: Tensor, gradients: Tensor) throws -> LayerContribution {
        .weightedActivations(elementwise(gradients, activations) { $0 * $1 })
    }
}
