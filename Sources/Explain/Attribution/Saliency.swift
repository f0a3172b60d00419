import ONNXGraph
import TensorCore

/// Saliency (vanilla gradient): the gradient of the target score with respect to the input,
/// by default its absolute value.
///
/// Simonyan, Vedaldi & Zisserman 2014, "Deep Inside Convolutional Networks: Visualising Image
/// Classification Models and Saliency Maps", §3.1 (`w = ∂S_c/∂I`). Matches Captum
/// `captum/attr/_core/saliency.py` (`Saliency.attribute(inputs, target, abs=True)`): the
/// attribution keeps the input's channels; the paper's display map (the maximum of |w| over the
/// channels) is a rendering step.
public struct Saliency: AttributionMethod {
    public var name: String { "Saliency" }
    /// Return `|∂S/∂x|` (Captum's default `abs=True`); `false` returns the signed gradient.
    public var absolute: Bool

    /// Creates the method.
    /// - Parameter absolute: return absolute values (default `true`, as Captum).
    public init(absolute: Bool = true) { self.absolute = absolute }

    public func attributions(of images: Tensor, context: AttributionContext) throws -> MethodAttributions {
        let abs = absolute
        return MethodAttributions(attributions: try inputGradient(of: images, context: context, rule: .standard) { _, g in
            abs ? Swift.abs(g) : g
        })
    }
}
