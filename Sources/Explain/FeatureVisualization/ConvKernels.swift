// Convolution kernels as images: the first layer's (O, 3, kh, kw) filters as RGB tiles (Krizhevsky
// et al. 2012, "ImageNet Classification with Deep Convolutional Neural Networks", fig. 3; Zeiler &
// Fergus 2014, fig. 5), deeper filters as one grey tile per input channel.
//
// The weights are the Conv node's `W` input (ONNX Operators, Conv: (M, C/group, kH, kW)) as the
// plan folds it — an initializer, possibly behind the Identity nodes PyTorch's exporter adds for
// de-duplicated parameters, or a Constant. Eval-mode BatchNorm is folded into these weights by the
// exporter (so they are what the network computes with, not the training-time parameters); the
// plan's Pad→Conv fusion leaves the weights untouched.
//
// Scaling (checked against NumPy on the PyTorch weights, Scripts/fixtures/make_featvis_fixtures.py):
// per output kernel, `(w − min) / (max − min)` over its (C, kH, kW) values in Float32 (a flat
// kernel becomes zeros), or per (kH, kW) tile with ``KernelNormalization/perTile``.

import ONNXGraph
import TensorCore

/// How kernel tiles are scaled to [0, 1].
public enum KernelNormalization: Sendable, Hashable {
    /// One min–max over each output kernel's (C, kH, kW) values: the tiles of one kernel stay
    /// comparable (the usual display of first-layer filters).
    case perKernel
    /// One min–max per (kH, kW) tile: every tile uses the full range.
    case perTile
}

/// The kernels of one convolution of a model.
///
/// ```swift
/// let kernels = try ConvKernels(model: model)            // the first Conv of the graph
/// let rgb = try kernels.rgbTiles()                       // (64, 3, 7, 7) in [0, 1]
/// let deep = try ConvKernels(model: model, layer: "layer1.0.conv1").greyTiles(outputChannels: 0..<4)
/// ```
public struct ConvKernels: Sendable {
    /// The layer as requested (or the Conv node's name when none was given).
    public let layerName: String
    /// The name of the Conv node the layer resolved to.
    public let nodeName: String
    /// The weights, (O, C/group, kH, kW) Float32, as the model computes with them.
    public let weights: Tensor
    /// The convolution's group count (depthwise convolutions: one input channel per kernel).
    public let groups: Int

    /// Finds the kernels of a layer.
    ///
    /// The layer name (module path, node or tensor name) is resolved like a CAM target layer; if
    /// the node producing it is not a Conv, single-input activations and normalisations
    /// (`Relu`, `Clip`, `BatchNormalization`, `Identity`, …) are walked back to the Conv that
    /// feeds them, so `"features.1"` (a ReLU module) shows the kernels of `"features.0"`.
    ///
    /// - Parameters:
    ///   - model: the model.
    ///   - layer: the layer; `nil` for the first Conv node of the graph (in graph order).
    ///   - inputShape: the input shape to specialise the graph for when the model's declares free
    ///     dimensions other than the batch (the weights do not depend on it). Default: the declared
    ///     shape with a batch of 1.
    /// - Throws: ``ExplainError/noConvolutionKernels(layer:reason:)`` when there is no Conv (or its
    ///   weights are not constant or not 2-D kernels); ``ONNXGraph/ONNXGraphError/unknownLayer(_:suggestions:)``.
    public init(model: ModelGraph, layer: String? = nil, inputShape: [Int]? = nil) throws {
        let nodes = model.nodes
        let convIndex: Int
        if let layer {
            let tensor = try model.resolveLayer(layer)
            convIndex = try Self.convProducing(tensor, layer: layer, nodes: nodes)
        } else {
            guard let i = nodes.firstIndex(where: { $0.opType == "Conv" }) else {
                throw ExplainError.noConvolutionKernels(layer: "(first convolution)", reason: "the model has no Conv node")
            }
            convIndex = i
        }
        let conv = nodes[convIndex]
        let name = layer ?? conv.name
        guard conv.inputs.count >= 2, !conv.inputs[1].isEmpty else {
            throw ExplainError.noConvolutionKernels(layer: name, reason: "the Conv '\(conv.name)' has no weight input")
        }
        let plan = try model.plan(forInputShapes: [try Self.specialisationShape(model, inputShape, layer: name)])
        guard let w = plan.info(ofValue: conv.inputs[1])?.constant else {
            throw ExplainError.noConvolutionKernels(
                layer: name, reason: "the weights of Conv '\(conv.name)' are computed from the input, not stored")
        }
        guard w.rank == 4, w.dtype == .float32, w.count > 0 else {
            throw ExplainError.noConvolutionKernels(
                layer: name, reason: "Conv '\(conv.name)' has \(w.dtype) weights of shape \(w.shape), not (O, C, kH, kW) Float32")
        }
        var groups = 1
        if case .int(let g)? = conv.attributes["group"] { groups = g }
        self.layerName = name
        self.nodeName = conv.name
        self.weights = w
        self.groups = groups
    }

    /// The number of output channels (kernels), O.
    public var outputChannels: Int { weights.shape[0] }
    /// The number of input channels of each kernel, C/group.
    public var inputChannelsPerKernel: Int { weights.shape[1] }

    /// Every kernel as an RGB tile: (O, 3, kH, kW), each kernel min–max normalised over its
    /// (3, kH, kW) values; channel 0 is red (the model's first input channel: RGB order for
    /// torchvision-style models, check the preprocessing of BGR-trained ones).
    /// - Throws: ``ExplainError/noConvolutionKernels(layer:reason:)`` when the kernels do not have
    ///   exactly 3 input channels (use ``greyTiles(outputChannels:normalization:)``).
    public func rgbTiles() throws -> KernelTiles {
        guard inputChannelsPerKernel == 3 else {
            throw ExplainError.noConvolutionKernels(
                layer: layerName,
                reason: "RGB tiles need kernels over 3 input channels; Conv '\(nodeName)' kernels have \(inputChannelsPerKernel): use grey tiles per input channel")
        }
        let per = weights.shape.dropFirst().reduce(1, *)
        return KernelTiles(tiles: minMaxNormalizedBlocks(weights, blockSize: per),
                           outputChannels: Array(0..<outputChannels), normalization: .perKernel)
    }

    /// Kernels `outputChannels` as grey tiles, one per input channel: (n, C/group, kH, kW) in
    /// [0, 1].
    /// - Parameters:
    ///   - outputChannels: which kernels (default: all).
    ///   - normalization: per kernel (default) or per tile.
    /// - Throws: ``ExplainError/channelOutOfRange(layer:channel:channelCount:)`` when the range is
    ///   empty or leaves `0..<O`.
    public func greyTiles(outputChannels range: Range<Int>? = nil,
                          normalization: KernelNormalization = .perKernel) throws -> KernelTiles {
        let range = range ?? 0..<outputChannels
        guard !range.isEmpty else {
            throw ExplainError.channelOutOfRange(layer: layerName, channel: range.lowerBound, channelCount: outputChannels)
        }
        for c in [range.lowerBound, range.upperBound - 1] where c < 0 || c >= outputChannels {
            throw ExplainError.channelOutOfRange(layer: layerName, channel: c, channelCount: outputChannels)
        }
        let (c, kh, kw) = (weights.shape[1], weights.shape[2], weights.shape[3])
        let per = c * kh * kw
        let selected = weights.sliced(starts: [range.lowerBound], ends: [range.upperBound], axes: [0])
        let block = normalization == .perKernel ? per : kh * kw
        return KernelTiles(tiles: minMaxNormalizedBlocks(selected, blockSize: block),
                           outputChannels: Array(range), normalization: normalization)
    }

    /// The Conv node producing `tensor`, walking back through single-input activations.
    static func convProducing(_ tensor: String, layer: String, nodes: [Node]) throws -> Int {
        let passThrough: Set<String> = ["Relu", "Clip", "LeakyRelu", "HardSwish", "HardSigmoid", "Sigmoid", "Tanh",
                                        "BatchNormalization", "Identity", "Dropout", "Elu", "Selu", "Gelu"]
        var t = tensor
        for _ in 0..<8 {
            guard let i = nodes.firstIndex(where: { $0.outputs.contains(t) }) else {
                throw ExplainError.noConvolutionKernels(layer: layer, reason: "it is a graph input, produced by no node")
            }
            let node = nodes[i]
            if node.opType == "Conv" { return i }
            guard passThrough.contains(node.opType), let input = node.inputs.first else {
                throw ExplainError.noConvolutionKernels(layer: layer, reason: "it is produced by \(node.opType) '\(node.name)'")
            }
            t = input
        }
        throw ExplainError.noConvolutionKernels(layer: layer, reason: "no Conv within 8 activation nodes before it")
    }

    /// The declared input shape with a batch of 1, or `given`.
    static func specialisationShape(_ model: ModelGraph, _ given: [Int]?, layer: String) throws -> [Int] {
        if let given { return given }
        guard model.inputs.count == 1, let input = model.inputs.first, !input.dimensions.isEmpty else {
            throw ExplainError.unsupportedModel(reason: "kernel visualisation needs a single-input model with a declared input shape; pass inputShape")
        }
        return try input.dimensions.enumerated().map { axis, d in
            switch d {
            case .fixed(let n): return n
            case .symbolic, .unknown:
                guard axis == 0 else {
                    throw ExplainError.invalidOption(name: "input shape", value: "\(input.dimensions)",
                                                     reason: "dimension \(axis) is free: pass inputShape to ConvKernels")
                }
                return 1
            }
        }
    }
}

/// Kernel tiles from ``ConvKernels``.
public struct KernelTiles: Sendable {
    /// (n, C, kH, kW) Float32 in [0, 1]: RGB tiles when C = 3 (``ConvKernels/rgbTiles()``), else one
    /// grey tile per input channel.
    public var tiles: Tensor
    /// The output channel (kernel) of each row of ``tiles``.
    public var outputChannels: [Int]
    /// How the values were scaled.
    public var normalization: KernelNormalization

    /// One caption per kernel: its output channel (`"#5"`).
    public var captions: [String] { outputChannels.map { "#\($0)" } }
}
