import ONNXGraph
import TensorCore

/// Deconvolution (deconvnet): the input gradient with every ReLU's backward pass replaced by a
/// ReLU of the incoming gradient, whatever the sign of the ReLU's forward input.
///
/// Zeiler & Fergus 2014, "Visualizing and Understanding Convolutional Networks", §2.1 (the
/// deconvnet's "rectification" of the reconstructed signal; the transposed filters are the
/// convolutions' ordinary backward pass). Matches Captum
/// `captum/attr/_core/guided_backprop_deconvnet.py` (`Deconvolution`: `relu(grad_output)` on every
/// `nn.ReLU` module). Which activations get the rule is explained in ``GuidedBackprop``: every ONNX
/// `Relu` node; `Clip` (ReLU6) and other activations keep their true derivative, as in Captum.
public struct Deconvolution: AttributionMethod {
    public var name: String { "Deconvolution" }

    /// Creates the method.
    public init() {}

    public func attributions(of images: Tensor, context: AttributionContext) throws -> MethodAttributions {
        MethodAttributions(attributions: try inputGradient(of: images, context: context, rule: .deconvnet) { _, g in g })
    }
}
