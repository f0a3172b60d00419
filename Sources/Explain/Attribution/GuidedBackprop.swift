import ONNXGraph
import TensorCore

/// Guided Backpropagation: the input gradient with every ReLU's backward pass replaced by
/// "pass the gradient only where the ReLU's input is positive **and** the incoming gradient is
/// positive".
///
/// Springenberg et al. 2015, "Striving for Simplicity: The All Convolutional Net", §3.4 (eq. for
/// guided backpropagation). Matches Captum `captum/attr/_core/guided_backprop_deconvnet.py`
/// (`GuidedBackprop`: a backward hook on every `nn.ReLU` module returning `relu(grad_input)`).
///
/// Which activations get the rule: every ONNX `Relu` node (including `Conv`+`Relu` chains CAMKit
/// fuses). Captum overrides `nn.ReLU` **modules** only, so this agrees with Captum for models built
/// from `nn.ReLU` modules (torchvision ResNet, VGG...); ReLU6 (`nn.ReLU6`, exported as ONNX `Clip`
/// with bounds 0 and 6: MobileNetV2, EfficientNet-Lite) and every other activation keep their
/// true derivative in both, so on such models this equals the plain gradient. (A functional
/// `F.relu` call is not overridden by Captum but is a `Relu` node in ONNX: there the two differ.)
public struct GuidedBackprop: AttributionMethod {
    public var name: String { "GuidedBackprop" }

    /// Creates the method.
    public init() {}

    public func attributions(of images: Tensor, context: AttributionContext) throws -> MethodAttributions {
        MethodAttributions(attributions: try inputGradient(of: images, context: context, rule: .guided) { _, g in g })
    }
}
