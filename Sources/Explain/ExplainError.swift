import TensorCore

/// A problem with the way an explanation was asked for, in words for the user.
///
/// Every case names the value it is about and its ``description`` is one line that also says what
/// to do. Unknown layer names are reported by ONNXGraph
/// (``ONNXGraph/ONNXGraphError/unknownLayer(_:suggestions:)``, with suggestions).
public enum ExplainError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The number of targets differs from the number of images in the batch. (pytorch-grad-cam
    /// silently zips the two and drops images; CAMKit refuses.)
    case targetCountMismatch(targets: Int, batch: Int)
    /// A class index outside `0..<classCount`.
    case classOutOfRange(classIndex: Int, classCount: Int)
    /// The model input is not a rank-4 image batch.
    case unsupportedInput(shape: [Int], reason: String)
    /// The model has a number of inputs CAMKit cannot explain (it explains single-input models).
    case unsupportedModel(reason: String)
    /// The model output chosen for the scores is not a (batch, classes) tensor.
    case unsupportedOutput(index: Int, shape: [Int], batch: Int)
    /// A target layer's output has no spatial structure CAMKit can map back onto the image.
    case noSpatialStructure(layer: String, shape: [Int], reason: String)
    /// No target layer was given and none could be found.
    case noDefaultTargetLayer(reason: String)
    /// Classic CAM needs a global average pooling followed by a fully connected layer.
    case noClassifierHead(layer: String, reason: String)
    /// The method cannot use this kind of target (e.g. classic CAM with a custom score).
    case unsupportedTarget(method: String, target: String)
    /// A setting outside its valid range.
    case invalidOption(name: String, value: String, reason: String)
    /// A custom target returned a gradient of the wrong length.
    case invalidCustomTarget(name: String, reason: String)
    /// A target layer's value does not depend on the input or does not reach the chosen output.
    case layerNotOnPath(layer: String, reason: String)
    /// A channel index outside the layer's `0..<channelCount` (feature maps, kernels, deconvnet).
    case channelOutOfRange(layer: String, channel: Int, channelCount: Int)
    /// Kernel visualisation was asked of a layer that is not a convolution with constant weights.
    case noConvolutionKernels(layer: String, reason: String)
    /// A tensor argument (an attribution baseline, explicit noise) whose shape does not fit the input.
    case shapeMismatch(name: String, shape: [Int], expected: String)

    /// One line for the user: what is wrong and what to do.
    public var description: String {
        switch self {
        case .targetCountMismatch(let targets, let batch):
            return "\(targets) targets for a batch of \(batch) images: give exactly one target per image "
                + "(or none for the top prediction of each), or use explain(_:eachOf:) for several classes per image"
        case .classOutOfRange(let c, let count):
            return "class \(c) is out of range: the model has \(count) classes (0...\(max(count - 1, 0)))"
        case .unsupportedInput(let shape, let reason):
            return "cannot explain an input of shape \(shape): \(reason)"
        case .unsupportedModel(let reason):
            return "cannot explain this model: \(reason)"
        case .unsupportedOutput(let index, let shape, let batch):
            return "model output \(index) has shape \(shape), not (\(batch), classes): choose the classifier output "
                + "with CAMOptions.outputIndex"
        case .noSpatialStructure(let layer, let shape, let reason):
            return "layer '\(layer)' outputs \(shape), which has no spatial structure to map onto the image (\(reason)). "
                + "Choose a convolutional feature map (B, C, H, W); for a vision transformer's (B, tokens, C) output "
                + "pass --vit-like (ReshapeTransform.vit) and, if the token count is not N+1 or N+2 with N a perfect "
                + "square, --num-extra-tokens; for a Swin (B, H, W, C) output use ReshapeTransform.channelsLast"
        case .noDefaultTargetLayer(let reason):
            return "no target layer was given and none could be chosen (\(reason)): name one with --target-layers "
                + "(see `camkit layers` for the model's layers)"
        case .noClassifierHead(let layer, let reason):
            return "classic CAM needs layer '\(layer)' to feed global average pooling then a fully connected layer, "
                + "but \(reason); use GradCAM (identical up to scale on such models) or pick the pooled layer"
        case .unsupportedTarget(let method, let target):
            return "\(method) cannot explain the target \(target): use a class target (.classScore, .softmax, .topPrediction)"
        case .invalidOption(let name, let value, let reason):
            return "invalid \(name) \(value): \(reason)"
        case .invalidCustomTarget(let name, let reason):
            return "custom target '\(name)': \(reason)"
        case .layerNotOnPath(let layer, let reason):
            return "layer '\(layer)' cannot be explained: \(reason); choose a layer between the input and the output"
        case .channelOutOfRange(let layer, let channel, let count):
            return "channel \(channel) is out of range: layer '\(layer)' has \(count) channels (0...\(max(count - 1, 0)))"
        case .noConvolutionKernels(let layer, let reason):
            return "layer '\(layer)' has no convolution kernels to show (\(reason)); name a Conv layer "
                + "(see `camkit layers`), or none for the model's first convolution"
        case .shapeMismatch(let name, let shape, let expected):
            return "\(name) has shape \(shape), but \(expected)"
        }
    }
}
