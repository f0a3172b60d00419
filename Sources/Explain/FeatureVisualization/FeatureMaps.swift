// Activation maps of a layer, strongest channels first — the "what does this layer respond to"
// view of Zeiler & Fergus 2014 ("Visualizing and Understanding Convolutional Networks", ECCV,
// §4 feature visualisation) and of the hand-written feature-map grids of the Keras / PyTorch
// tutorials (e.g. F. Chollet, "Deep Learning with Python", §5.4.1: every channel of an
// activation shown as its own grey/colour tile).
//
// CAMKit's selection and scaling, checked against NumPy on PyTorch activations
// (Scripts/fixtures/make_featvis_fixtures.py, Tests/ExplainTests/Fixtures/featvis):
//   mean_k      = mean over (h, w) of channel k (Float32)
//   order       = channels by mean, descending; ties by ascending channel index (a stable sort)
//   map_k       = (A_k − min A_k) / (max A_k − min A_k), per channel, in Float32; a flat channel
//                 (max == min, e.g. a dead ReLU channel) becomes zeros
// Per-channel scaling shows each channel's pattern, not its strength: compare strengths with
// `meanActivations`.

import ONNXGraph
import TensorCore

/// The activation maps of one layer: capture the layer, rank its channels by mean activation and
/// return the strongest ones as min–max normalised maps.
///
/// ```swift
/// let maps = try FeatureMaps(model: model, layer: "layer2").top(16, of: input)
/// maps.channels            // [37, 5, 112, …], strongest first
/// maps.maps                // (16, 28, 28), each in [0, 1]
/// ```
///
/// Token layers of vision transformers are rearranged with ``ReshapeTransform`` first (class and
/// distillation tokens dropped), as for the CAM methods.
public struct FeatureMaps: Sendable {
    /// The model.
    public let model: ModelGraph
    /// The layer as requested.
    public let layerName: String
    /// The ONNX tensor the layer name resolved to.
    public let tensor: String
    /// How the raw layer output becomes (B, K, H, W).
    public let reshape: ReshapeTransform

    /// Prepares the view of one layer.
    /// - Parameters:
    ///   - model: the model.
    ///   - layer: a module path (`"layer2"`), node name or tensor name.
    ///   - reshape: how the layer output becomes (B, K, H, W); default ``ReshapeTransform/automatic``.
    /// - Throws: ``ONNXGraph/ONNXGraphError/unknownLayer(_:suggestions:)`` for an unknown name.
    public init(model: ModelGraph, layer: String, reshape: ReshapeTransform = .automatic) throws {
        self.model = model
        self.layerName = layer
        self.tensor = try model.resolveLayer(layer)
        self.reshape = reshape
    }

    /// The layer's activations for `input`, rearranged to (B, K, H, W).
    /// - Parameter input: the model input (one tensor; the model must have one input).
    /// - Returns: the layer description and its (B, K, H, W) activations.
    /// - Throws: ``ExplainError`` when the layer has no spatial layout or does not depend on the
    ///   input; ``ONNXGraph/ONNXGraphError`` for inputs the model rejects.
    public func activations(of input: Tensor) throws -> (layer: ExplainedLayer, activations: Tensor) {
        let plan = try model.plan(for: [input], preserving: [tensor])
        let layer = try featureLayer(layerName, tensor: tensor, in: model, plan: plan, reshape: reshape)
        let result = try plan.run([input], capturing: [tensor])
        guard let raw = result.captures[tensor] else {
            throw ExplainError.layerNotOnPath(layer: layerName, reason: "the forward pass did not produce it")
        }
        return (layer, layer.reshape.apply(raw))
    }

    /// The `count` channels of image `image` with the largest mean activation, strongest first,
    /// each min–max normalised on its own.
    ///
    /// - Parameters:
    ///   - count: how many channels (default 16); fewer are returned when the layer has fewer.
    ///   - input: the model input batch.
    ///   - image: the batch item to show (default 0).
    /// - Returns: the selection; ``FeatureMapSelection/maps`` is (N, H, W) Float32 in [0, 1].
    /// - Throws: ``ExplainError/invalidOption(name:value:reason:)`` for `count < 1` or a bad image
    ///   index, and the errors of ``activations(of:)``.
    public func top(_ count: Int = 16, of input: Tensor, image: Int = 0) throws -> FeatureMapSelection {
        guard count >= 1 else {
            throw ExplainError.invalidOption(name: "feature map count", value: "\(count)", reason: "must be at least 1")
        }
        try checkImageIndex(image, of: input)
        let (layer, a) = try activations(of: input)
        let means = channelMeans(a, image: image)
        let order = means.indices.sorted { means[$0] != means[$1] ? means[$0] > means[$1] : $0 < $1 }
        return selection(Array(order.prefix(count)), means: means, activations: a, layer: layer, image: image)
    }

    /// Chosen channels of image `image`, in the order given, each min–max normalised on its own.
    /// - Throws: ``ExplainError/channelOutOfRange(layer:channel:channelCount:)`` for a channel the
    ///   layer does not have; the errors of ``top(_:of:image:)``.
    public func channels(_ channels: [Int], of input: Tensor, image: Int = 0) throws -> FeatureMapSelection {
        try checkImageIndex(image, of: input)
        let (layer, a) = try activations(of: input)
        for c in channels where c < 0 || c >= a.shape[1] {
            throw ExplainError.channelOutOfRange(layer: layerName, channel: c, channelCount: a.shape[1])
        }
        return selection(channels, means: channelMeans(a, image: image), activations: a, layer: layer, image: image)
    }

    /// Mean over (H, W) of every channel of one image of (B, K, H, W) activations.
    private func channelMeans(_ a: Tensor, image: Int) -> [Float] {
        let (k, plane) = (a.shape[1], a.shape[2] * a.shape[3])
        return a.withUnsafeBufferPointer { p in
            (0..<k).map { c in
                let base = (image * k + c) * plane
                var total: Float = 0
                for i in 0..<plane { total += p[base + i] }
                return total / Float(plane)
            }
        }
    }

    private func selection(_ channels: [Int], means: [Float], activations a: Tensor, layer: ExplainedLayer,
                           image: Int) -> FeatureMapSelection {
        let (k, h, w) = (a.shape[1], a.shape[2], a.shape[3])
        let plane = h * w
        var maps = Tensor(uninitializedShape: [channels.count, h, w])
        a.withUnsafeBufferPointer { src in
            maps.withUnsafeMutableBufferPointer { dst in
                guard let s = src.baseAddress, let d = dst.baseAddress else { return }
                for (n, c) in channels.enumerated() {
                    minMaxNormalize(s + (image * k + c) * plane, count: plane, into: d + n * plane)
                }
            }
        }
        return FeatureMapSelection(layer: layer, image: image, channels: channels,
                                   meanActivations: channels.map { means[$0] }, maps: maps)
    }
}

/// Channels of one layer for one image, as returned by ``FeatureMaps``.
public struct FeatureMapSelection: Sendable {
    /// The layer (name, tensor, raw shape, rearrangement).
    public var layer: ExplainedLayer
    /// The batch item shown.
    public var image: Int
    /// The channel indices, in the order of ``maps`` (strongest first for ``FeatureMaps/top(_:of:image:)``).
    public var channels: [Int]
    /// Each channel's mean activation over (H, W), before normalisation.
    public var meanActivations: [Float]
    /// (N, H, W) Float32: each channel min–max normalised to [0, 1] on its own (flat channels: 0).
    public var maps: Tensor

    /// One caption per map: the channel number (`"#37"`), for labelling tiles.
    public var captions: [String] { channels.map { "#\($0)" } }
}
