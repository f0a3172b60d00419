import ONNXGraph
import TensorCore

/// Input × Gradient: the input multiplied element-wise by the gradient of the target score.
///
/// Shrikumar et al. 2016, "Not Just a Black Box: Learning Important Features Through Propagating
/// Activation Differences" (the "gradient * input" baseline). Matches Captum
/// `captum/attr/_core/input_x_gradient.py` (`inputs * grad`, Float32).
public struct InputXGradient: AttributionMethod {
    public var name: String { "InputXGradient" }

    /// Creates the method.
    public init() {}

    public func attributions(of images: Tensor, context: AttributionContext) throws -> MethodAttributions {
        MethodAttributions(attributions: try inputGradient(of: images, context: context, rule: .standard) { x, g in x * g })
    }
}
