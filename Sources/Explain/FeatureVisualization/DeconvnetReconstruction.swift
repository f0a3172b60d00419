// Deconvnet reconstruction: Zeiler & Fergus 2014, "Visualizing and Understanding Convolutional
// Networks" (ECCV), §2.1. "To examine a given convnet activation, we set all other activations in
// the layer to zero and pass the feature maps as input to the attached deconvnet layer", which
// unpools with the max-pooling switches, rectifies, and filters with the transposed filters, down
// to pixel space.
//
// Unpooling with switches is exactly the gradient of max pooling and filtering with the transposed
// (flipped) filters is the gradient of the convolution, so the reconstruction is the reverse pass
// from that single activation to the input with every ReLU's pullback replaced by
// `relu(incoming gradient)` (``ONNXGraph/ActivationGradientRule/deconvnet``) — Captum's
// `NeuronDeconvolution(model, layer).attribute(x, neuron_selector=(c, i, j))` (which overrides
// the backward of `nn.ReLU` modules only: ReLU6/Clip, SiLU, … keep their true derivative, and so
// do they here). Tested against it with relative L2 ≤ 1e-3
// (Scripts/fixtures/make_featvis_fixtures.py).
//
// The activation is channel `c`'s strongest one, per image: the first maximum over (H, W) in
// row-major order (`torch.argmax` of the flattened map). The seed placed on it is, by default,
// the activation's value (the paper keeps the activation and zeroes the others); ``unit`` seeds 1,
// which is Captum's gradient of the neuron. The reconstruction is linear in the seed, so the two
// differ by that one factor per image (and are identical after display normalisation).

import ONNXGraph
import TensorCore

/// The Zeiler & Fergus deconvnet projection of one channel's strongest activation back to the
/// input pixels.
///
/// ```swift
/// let deconv = try DeconvnetReconstruction(model: model, layer: "layer3", channel: 42)
/// let result = try deconv.reconstruct(input)
/// result.reconstruction      // like the input: (B, 3, H, W)
/// result.positions[0]        // where channel 42 peaked in image 0 (layer grid coordinates)
/// ```
public struct DeconvnetReconstruction: Sendable {
    /// What is placed on the chosen activation before the reverse pass.
    public enum Seed: Sendable, Hashable {
        /// The activation's own value, all others zero (Zeiler & Fergus 2014).
        case activation
        /// 1 (the gradient of the activation: Captum's `NeuronDeconvolution`).
        case unit
    }

    /// The model.
    public let model: ModelGraph
    /// The layer as requested.
    public let layerName: String
    /// The ONNX tensor the layer resolved to.
    public let tensor: String
    /// The channel (after the reshape transform: the C of (B, C, H, W)).
    public let channel: Int
    /// The seed (default ``Seed/activation``).
    public let seed: Seed
    /// How the raw layer output becomes (B, C, H, W).
    public let reshape: ReshapeTransform

    /// Prepares the reconstruction of `channel` of `layer`.
    /// - Throws: ``ONNXGraph/ONNXGraphError/unknownLayer(_:suggestions:)`` for an unknown layer
    ///   name; ``ExplainError/channelOutOfRange(layer:channel:channelCount:)`` for a negative channel
    ///   (a channel beyond the layer's count is reported by ``reconstruct(_:)``, which knows the shape).
    public init(model: ModelGraph, layer: String, channel: Int, seed: Seed = .activation,
                reshape: ReshapeTransform = .automatic) throws {
        self.model = model
        self.layerName = layer
        self.tensor = try model.resolveLayer(layer)
        guard channel >= 0 else {
            throw ExplainError.channelOutOfRange(layer: layer, channel: channel, channelCount: 0)
        }
        self.channel = channel
        self.seed = seed
        self.reshape = reshape
    }

    /// Runs the model once forward and once in reverse (deconvnet rule) from the strongest
    /// activation of the channel in each image.
    ///
    /// - Parameter input: the model input batch (single-input models).
    /// - Returns: the reconstruction, shaped like `input`, and where and how strongly the channel
    ///   fired in each image.
    /// - Throws: ``ExplainError/channelOutOfRange(layer:channel:channelCount:)``, the layer errors
    ///   of ``FeatureMaps/activations(of:)``, and ``ONNXGraph/ONNXGraphError`` when a node between
    ///   the input and the layer has no pullback.
    public func reconstruct(_ input: Tensor) throws -> DeconvnetResult {
        guard model.inputs.count == 1 else {
            throw ExplainError.unsupportedModel(reason: "deconvnet reconstruction needs a single-input model; this one has \(model.inputs.count)")
        }
        let plan = try model.plan(for: [input], preserving: [tensor])
        let layer = try featureLayer(layerName, tensor: tensor, in: model, plan: plan, reshape: reshape)
        let rawShape = layer.shape
        let mapShape = layer.reshape.mappedShape(of: rawShape)
        let (batch, channels, height, width) = (mapShape[0], mapShape[1], mapShape[2], mapShape[3])
        guard channel < channels else {
            throw ExplainError.channelOutOfRange(layer: layerName, channel: channel, channelCount: channels)
        }
        guard height * width > 0 else {
            throw ExplainError.noSpatialStructure(layer: layerName, shape: rawShape, reason: "its maps are empty")
        }
        let inputName = model.inputs[0].name
        let (tensor, channel, seedKind) = (self.tensor, self.channel, self.seed)
        var positions: [FeaturePosition] = []
        var values: [Float] = []
        let result = try plan.gradients([input], capturing: [tensor], withRespectTo: [inputName],
                                        context: PullbackContext(reluRule: .deconvnet)) { forward in
            guard let raw = forward.captures[tensor] else {
                throw ExplainError.layerNotOnPath(layer: layer.name, reason: "the forward pass did not produce it")
            }
            let maps = layer.reshape.apply(raw)
            var seed = Tensor(zeros: rawShape)
            maps.withUnsafeBufferPointer { m in
                seed.withUnsafeMutableBufferPointer { s in
                    for b in 0..<batch {
                        let base = (b * channels + channel) * height * width
                        var best = 0
                        for i in 1..<(height * width) where m[base + i] > m[base + best] { best = i }
                        let value = m[base + best]
                        let position = FeaturePosition(row: best / width, column: best % width)
                        positions.append(position)
                        values.append(value)
                        let index = layer.reshape.rawIndex(image: b, channel: channel, row: position.row,
                                                           column: position.column, rawShape: rawShape)
                        s[index] = seedKind == .unit ? 1 : value
                    }
                }
            }
            return [tensor: seed]
        }
        guard let reconstruction = result.gradients[inputName] else {
            throw ExplainError.layerNotOnPath(layer: layerName, reason: "no gradient reached the input")
        }
        return DeconvnetResult(layer: layer, channel: channel, reconstruction: reconstruction,
                               positions: positions, activations: values)
    }
}

/// A position on a layer's (H, W) grid.
public struct FeaturePosition: Sendable, Hashable, CustomStringConvertible {
    /// The row (0 at the top).
    public var row: Int
    /// The column (0 at the left).
    public var column: Int
    /// Creates a position.
    public init(row: Int, column: Int) {
        self.row = row
        self.column = column
    }
    public var description: String { "(\(row), \(column))" }
}

/// The result of ``DeconvnetReconstruction/reconstruct(_:)``.
public struct DeconvnetResult: Sendable {
    /// The layer (name, tensor, raw shape, rearrangement).
    public var layer: ExplainedLayer
    /// The channel reconstructed.
    public var channel: Int
    /// The projection to pixel space, shaped (and laid out) like the model input. Signed: render
    /// it with a signed or absolute-value attribution map (Imaging's `AttributionRendering`).
    public var reconstruction: Tensor
    /// Per image, where the channel's strongest activation is.
    public var positions: [FeaturePosition]
    /// Per image, that activation's value.
    public var activations: [Float]
}

extension AppliedReshape {
    /// The (B, C, H, W) shape this rearrangement makes of a raw output shape.
    func mappedShape(of raw: [Int]) -> [Int] {
        switch self {
        case .identity: return raw
        case .tokens(_, let h, let w): return [raw[0], raw[2], h, w]
        case .channelsLast: return [raw[0], raw[3], raw[1], raw[2]]
        }
    }

    /// The flat index in the raw output of element (image, channel, row, column) of the
    /// rearranged (B, C, H, W) map.
    func rawIndex(image b: Int, channel c: Int, row i: Int, column j: Int, rawShape s: [Int]) -> Int {
        switch self {
        case .identity: return ((b * s[1] + c) * s[2] + i) * s[3] + j
        case .tokens(let extra, _, let w): return (b * s[1] + extra + i * w + j) * s[2] + c
        case .channelsLast: return ((b * s[1] + i) * s[2] + j) * s[3] + c
        }
    }
}
