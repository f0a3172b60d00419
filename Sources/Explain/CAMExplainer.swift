import ONNXGraph
import Synchronization
import TensorCore

/// The memory layout of an image batch.
public enum InputLayout: Sendable, Equatable {
    /// (B, C, H, W), PyTorch's layout.
    case nchw
    /// (B, H, W, C), TensorFlow's layout.
    case nhwc

    /// Guesses the layout of a rank-4 shape: NCHW when dim 1 has 1, 3 or 4 channels, else NHWC
    /// when the last dim does, else NCHW.
    public static func detect(_ shape: [Int]) -> InputLayout {
        guard shape.count == 4 else { return .nchw }
        if [1, 3, 4].contains(shape[1]) { return .nchw }
        if [1, 3, 4].contains(shape[3]) { return .nhwc }
        return .nchw
    }
}

/// Settings of a ``CAMExplainer``. Method-specific settings (batch sizes, ε) are parameters of the
/// method types themselves (``ScoreCAM/init(batchSize:epsilon:)``, ``AblationCAM/init(batchSize:ablationOffset:)``).
public struct CAMOptions: Sendable {
    /// Test-time augmentation smoothing (pytorch-grad-cam `aug_smooth`): the 6 combinations of
    /// {no flip, horizontal flip} × input multiplied by {0.9, 1, 1.1}, each map flipped back, the
    /// 6 maps averaged **without** renormalisation. Default `false`.
    public var augSmooth: Bool
    /// Replace each layer's channel sum by its first principal component (pytorch-grad-cam
    /// `eigen_smooth`), with CAMKit's deterministic sign. Default `false`.
    public var eigenSmooth: Bool
    /// How target layer outputs become (B, K, H, W) maps. Default ``ReshapeTransform/automatic``.
    public var reshape: ReshapeTransform
    /// Which model output holds the class scores. Default 0.
    public var outputIndex: Int
    /// The input's layout; `nil` (default) detects it from the shape (``InputLayout/detect(_:)``).
    public var inputLayout: InputLayout?
    /// Called after each batch of the many-forward methods (ScoreCAM, AblationCAM) with the
    /// forward passes completed and the total for the whole call. Default `nil`.
    public var progress: (@Sendable (_ completed: Int, _ total: Int) -> Void)?

    /// Creates options; every parameter has the default documented on its property.
    public init(augSmooth: Bool = false, eigenSmooth: Bool = false, reshape: ReshapeTransform = .automatic,
                outputIndex: Int = 0, inputLayout: InputLayout? = nil,
                progress: (@Sendable (_ completed: Int, _ total: Int) -> Void)? = nil) {
        self.augSmooth = augSmooth
        self.eigenSmooth = eigenSmooth
        self.reshape = reshape
        self.outputIndex = outputIndex
        self.inputLayout = inputLayout
        self.progress = progress
    }
}

/// A layer an explanation used.
public struct ExplainedLayer: Sendable, Equatable, CustomStringConvertible {
    /// The name as requested, or the module path of a default layer.
    public var name: String
    /// The ONNX tensor name.
    public var tensor: String
    /// The raw output shape (before the reshape transform).
    public var shape: [Int]
    /// How the raw output was rearranged to (B, K, H, W).
    public var reshape: AppliedReshape
    /// Whether CAMKit chose the layer (no target layer was given); ``rule`` says why.
    public var isDefault: Bool
    /// For a default layer, the rule that chose it.
    public var rule: String?

    /// Creates a description of a layer.
    public init(name: String, tensor: String, shape: [Int], reshape: AppliedReshape, isDefault: Bool = false,
                rule: String? = nil) {
        self.name = name
        self.tensor = tensor
        self.shape = shape
        self.reshape = reshape
        self.isDefault = isDefault
        self.rule = rule
    }

    public var description: String {
        "\(name) (\(tensor), \(shape), \(reshape))" + (isDefault ? " [default: \(rule ?? "")]" : "")
    }
}

/// The result of ``CAMExplainer/explain(_:targets:)``.
public struct Explanation: Sendable {
    /// The maps, (B, H, W) Float32 in [0, 1] at the input's resolution, never NaN.
    public var maps: Tensor
    /// The model's output for the (un-augmented) input, (B, classes).
    public var logits: Tensor
    /// The class each image's map explains (`nil` for a custom target).
    public var targetClasses: [Int?]
    /// The layers used (for FullGrad: every biased layer).
    public var layers: [ExplainedLayer]
    /// Things the caller should know (flat maps, NaN replaced, ignored settings).
    public var warnings: [ExplanationWarning]
    /// The method's name.
    public var method: String

    /// The map of image `b` as a (H, W) tensor.
    public func map(ofImage b: Int) -> Tensor {
        let (h, w) = (maps.shape[1], maps.shape[2])
        return maps.sliced(starts: [b], ends: [b + 1], axes: [0]).reshaped(to: [h, w])
    }
}

/// Explains an ONNX image classifier's predictions with a class activation mapping method,
/// reproducing pytorch-grad-cam 1.5.7's numbers.
///
/// ```swift
/// let graph = try ModelGraph(contentsOf: URL(fileURLWithPath: "resnet50.onnx"))
/// let explainer = try CAMExplainer(model: graph, method: GradCAM(), targetLayers: ["layer4"],
///                                  options: CAMOptions(augSmooth: false, eigenSmooth: false))
/// let explanation = try explainer.explain(input, targets: [.classScore(281)])  // input: (1, 3, 224, 224)
/// let heat = explanation.maps          // (1, 224, 224) in [0, 1]
/// print(explanation.targetClasses, explanation.layers, explanation.warnings)
///
/// // Gradient-free and many-forward methods take their settings in their initialisers:
/// let score = try CAMExplainer(model: graph, method: ScoreCAM(batchSize: 16),
///                              options: CAMOptions(progress: { done, total in print(done, total) }))
/// // Several classes for one image: one explanation per class.
/// let perClass = try explainer.explain(input, eachOf: [.classScore(281), .classScore(207)])
/// ```
///
/// The pipeline is pytorch-grad-cam's `BaseCAM`: forward with the target layers captured (after
/// the reshape transform), reverse pass from `Σ_b score_b` (one target per image), per layer
/// weights or per-position contributions from the method, then ``CAMPostProcessing``. Plans are
/// cached per input shape by the ``ONNXGraph/ModelGraph``, so repeated calls do not re-specialise.
public final class CAMExplainer: Sendable {
    /// The model.
    public let model: ModelGraph
    /// The method.
    public let method: any CAMMethod
    /// The target layers as requested (empty: CAMKit chooses, see ``DefaultTargetLayer``).
    public let targetLayers: [String]
    /// The settings.
    public let options: CAMOptions
    let resolvedLayers: [String]
    let modelHasLayerNorm: Bool
    /// ``layersToExplain(plan:)`` by plan (the model caches its plans for its lifetime, so a
    /// plan's identity is never reused while this explainer holds the model): finding the default
    /// layer walks the whole graph, a quarter of a small model's explain time when repeated.
    private let explainedLayers = Mutex<[ObjectIdentifier: [ExplainedLayer]]>([:])

    /// Creates an explainer.
    ///
    /// - Parameters:
    ///   - model: the classifier.
    ///   - method: e.g. ``GradCAM``, ``ScoreCAM``, ``FullGrad``.
    ///   - targetLayers: module paths, node names or tensor names (see
    ///     ``ONNXGraph/ModelGraph/resolveLayer(_:)``); empty for the default layer. With several
    ///     layers the maps are averaged after each is normalised.
    ///   - options: see ``CAMOptions``.
    /// - Throws: ``ONNXGraph/ONNXGraphError/unknownLayer(_:suggestions:)`` for a name the model does
    ///   not have (with suggestions), ``ExplainError/unsupportedModel(reason:)`` for a model with
    ///   several inputs, ``ExplainError/invalidOption(name:value:reason:)`` for a method of unknown kind.
    public init(model: ModelGraph, method: any CAMMethod, targetLayers: [String] = [],
                options: CAMOptions = CAMOptions()) throws {
        guard model.inputs.count == 1 else {
            throw ExplainError.unsupportedModel(
                reason: "it has \(model.inputs.count) inputs (\(model.inputs.map(\.name).joined(separator: ", "))); CAMKit explains single-input image models")
        }
        guard method is any GradientCAMMethod || method is any GradientFreeCAMMethod || method is any WholeModelCAMMethod else {
            throw ExplainError.invalidOption(
                name: "method", value: method.name,
                reason: "conform to GradientCAMMethod, GradientFreeCAMMethod or WholeModelCAMMethod")
        }
        self.model = model
        self.method = method
        self.targetLayers = targetLayers
        self.options = options
        self.resolvedLayers = try targetLayers.map { try model.resolveLayer($0) }
        self.modelHasLayerNorm = model.nodes.contains { $0.opType == "LayerNormalization" }
    }

    /// Explains one target per image.
    ///
    /// - Parameters:
    ///   - input: the preprocessed batch, (B, C, H, W) (or (B, H, W, C), see ``CAMOptions/inputLayout``).
    ///   - targets: one per image; `nil` explains each image's top prediction.
    /// - Returns: (B, H, W) maps in [0, 1] with the logits, the classes, the layers and any warnings.
    /// - Throws: ``ExplainError`` for a target count that differs from the batch, a class out of range,
    ///   a layer without spatial structure...; ``ONNXGraph/ONNXGraphError`` from the model (e.g. an
    ///   operator without a gradient between the layer and the output).
    public func explain(_ input: Tensor, targets: [CAMTarget]? = nil) throws -> Explanation {
        let layout = try checkInput(input)
        let batch = input.shape[0]
        let targets = targets ?? Array(repeating: .topPrediction, count: batch)
        guard targets.count == batch else { throw ExplainError.targetCountMismatch(targets: targets.count, batch: batch) }
        let plan = try model.plan(forInputShapes: [input.shape])
        let layers = try layersToExplain(plan: plan)
        let progress = ProgressCounter(callback: options.progress)
        if let m = method as? any GradientFreeCAMMethod {
            let passes = options.augSmooth ? 6 : 1
            progress.total = passes * batch * layers.reduce(0) { total, layer in
                let k = layer.shape[layer.reshape.rawChannelAxis]
                return total + m.forwardPassCount(channels: k)
            }
        }
        var warnings: [ExplanationWarning] = []
        if method is any WholeModelCAMMethod && !targetLayers.isEmpty {
            warnings.append(.note("\(method.name) ignores the target layers (\(targetLayers.joined(separator: ", "))): it uses every biased layer"))
        }

        var result: PassResult
        if !options.augSmooth {
            result = try pass(input, layout: layout, targets: targets, layers: layers, progress: progress)
        } else {
            // ttach Compose([HorizontalFlip(), Multiply([0.9, 1, 1.1])]) in product order.
            var sum: Tensor?
            var plain: PassResult?
            for flip in [false, true] {
                for factor: Float in [0.9, 1, 1.1] {
                    var x = flip ? flippedHorizontally(input, layout: layout) : input
                    if factor != 1 {
                        x.withUnsafeMutableBufferPointer { p in for i in 0..<p.count { p[i] *= factor } }
                    }
                    let r = try pass(x, layout: layout, targets: targets, layers: layers, progress: progress)
                    let maps = flip ? flippedHorizontally(r.maps, layout: .nchw, rank3: true) : r.maps
                    if var s = sum {
                        s.withUnsafeMutableBufferPointer { sp in
                            maps.withUnsafeBufferPointer { mp in for i in 0..<sp.count { sp[i] += mp[i] } }
                        }
                        sum = s
                    } else {
                        sum = maps
                    }
                    for w in r.warnings where !warnings.contains(w) { warnings.append(w) }
                    if !flip && factor == 1 { plain = r }
                }
            }
            var mean = sum!
            mean.withUnsafeMutableBufferPointer { p in for i in 0..<p.count { p[i] /= 6 } }
            result = plain!
            result.maps = mean
        }
        for w in result.warnings where !warnings.contains(w) { warnings.append(w) }
        for b in CAMPostProcessing.flatImages(result.maps) {
            warnings.append(.flatMap(image: b))
            result.maps.withUnsafeMutableBufferPointer { p in
                let n = p.count / batch
                for i in (b * n)..<((b + 1) * n) { p[i] = 0 }
            }
        }
        return Explanation(maps: result.maps, logits: result.logits, targetClasses: result.classes,
                           layers: result.layers, warnings: warnings, method: method.name)
    }

    /// Explains several targets for every image: one ``Explanation`` per target, in order (MMPretrain's
    /// `--target-category 281 282`).
    /// - Throws: as ``explain(_:targets:)``.
    public func explain(_ input: Tensor, eachOf targets: [CAMTarget]) throws -> [Explanation] {
        let batch = input.shape.first ?? 0
        return try targets.map { try explain(input, targets: Array(repeating: $0, count: batch)) }
    }

    // MARK: Internals

    struct PassResult {
        var maps: Tensor
        var logits: Tensor
        var classes: [Int?]
        var layers: [ExplainedLayer]
        var warnings: [ExplanationWarning]
    }

    func checkInput(_ input: Tensor) throws -> InputLayout {
        guard input.rank == 4 else {
            throw ExplainError.unsupportedInput(shape: input.shape, reason: "expected a rank-4 image batch (B, C, H, W)")
        }
        guard input.dtype == .float32 else {
            throw ExplainError.unsupportedInput(shape: input.shape, reason: "expected Float32 values, got \(input.dtype)")
        }
        guard input.shape.allSatisfy({ $0 > 0 }) else {
            throw ExplainError.unsupportedInput(shape: input.shape, reason: "every dimension must be positive")
        }
        return options.inputLayout ?? InputLayout.detect(input.shape)
    }

    /// The layers to explain with their shapes and rearrangements (worked out once per plan).
    func layersToExplain(plan: ExecutionPlan) throws -> [ExplainedLayer] {
        if let known = explainedLayers.withLock({ $0[ObjectIdentifier(plan)] }) { return known }
        let layers = try findLayersToExplain(plan: plan)
        explainedLayers.withLock { $0[ObjectIdentifier(plan)] = layers }
        return layers
    }

    private func findLayersToExplain(plan: ExecutionPlan) throws -> [ExplainedLayer] {
        if method is any WholeModelCAMMethod { return [] }
        var requests: [(name: String, tensor: String, isDefault: Bool, rule: String?, reshape: ReshapeTransform)] = []
        if resolvedLayers.isEmpty {
            let d = try DefaultTargetLayer.find(in: model, plan: plan)
            let reshape = options.reshape == .automatic ? d.reshape : options.reshape
            requests.append((d.name, d.tensor, true, d.rule, reshape))
        } else {
            for (name, tensor) in zip(targetLayers, resolvedLayers) {
                requests.append((name, tensor, false, nil, options.reshape))
            }
        }
        return try requests.map { r in
            guard let info = plan.info(ofValue: r.tensor) else {
                throw ExplainError.layerNotOnPath(layer: r.name, reason: "the model's outputs do not depend on it")
            }
            guard info.constant == nil else {
                throw ExplainError.layerNotOnPath(layer: r.name, reason: "its value does not depend on the input")
            }
            guard info.dtype == .float32 else {
                throw ExplainError.noSpatialStructure(layer: r.name, shape: info.shape, reason: "its values are \(info.dtype)")
            }
            let applied = try r.reshape.resolve(shape: info.shape, layer: r.name, modelHasLayerNorm: modelHasLayerNorm)
            return ExplainedLayer(name: r.name, tensor: r.tensor, shape: info.shape, reshape: applied,
                                  isDefault: r.isDefault, rule: r.rule)
        }
    }

    /// One forward (and reverse) pass and the normalised (B, H, W) maps.
    func pass(_ x: Tensor, layout: InputLayout, targets: [CAMTarget], layers: [ExplainedLayer],
              progress: ProgressCounter) throws -> PassResult {
        let batch = x.shape[0]
        let (height, width) = layout == .nchw ? (x.shape[2], x.shape[3]) : (x.shape[1], x.shape[2])
        let index = options.outputIndex
        var warnings: [ExplanationWarning] = []

        if let m = method as? any WholeModelCAMMethod {
            let probe = ModelProbe(model: model, plan: try model.plan(forInputShapes: [x.shape]), input: x,
                                   inputLayout: layout, targets: targets, outputIndex: index, record: ProbeRecord())
            let (raw, used) = try m.map(probe: probe, eigenSmooth: options.eigenSmooth)
            var map = raw
            for b in CAMPostProcessing.sanitize(&map) { warnings.append(.nonFiniteValues(image: b, layer: m.name)) }
            CAMPostProcessing.minMaxNormalize(&map)
            guard let logits = probe.record.logits else {
                throw ExplainError.invalidOption(name: "method", value: m.name, reason: "it never ran the model")
            }
            return PassResult(maps: map, logits: logits, classes: probe.record.classes, layers: used, warnings: warnings)
        }

        let tensors = layers.map(\.tensor)
        // The plan keeps the target layers observable (kernel fusion would merge them away).
        let plan = try model.plan(forInputShapes: [x.shape], preserving: Set(tensors))
        var resolved: [ResolvedTarget] = []
        var logits: Tensor
        var activations: [Tensor] = []
        var gradients: [Tensor] = []
        if method is any GradientCAMMethod {
            let result = try plan.gradients([x], capturing: tensors, withRespectTo: tensors) { outputs in
                let l = try checkedLogits(outputs, index: index, batch: batch)
                resolved = try resolveTargets(targets, logits: l, batch: batch)
                var seeds = [Tensor?](repeating: nil, count: outputs.count)
                seeds[index] = try seedGradient(resolved, logits: l)
                return seeds
            }
            logits = result.forward.outputs[index]
            for (layer, t) in zip(layers, tensors) {
                activations.append(layer.reshape.apply(result.forward.captures[t]!))
                gradients.append(layer.reshape.apply(result.gradients[t]!))
            }
        } else {
            let result = try plan.run([x], capturing: tensors)
            logits = try checkedLogits(result.outputs, index: index, batch: batch)
            resolved = try resolveTargets(targets, logits: logits, batch: batch)
            for (layer, t) in zip(layers, tensors) { activations.append(layer.reshape.apply(result.captures[t]!)) }
            // Keep the raw captures for the probe.
            gradients = tensors.map { result.captures[$0]! }
        }

        var perLayer: [Tensor] = []
        for (l, layer) in layers.enumerated() {
            let a = activations[l]
            let contribution: LayerContribution
            switch method {
            case let m as any GradientCAMMethod:
                contribution = try m.contribution(activations: a, gradients: gradients[l])
            case let m as any GradientFreeCAMMethod:
                let originalScores = logits.withUnsafeBufferPointer { p -> [Float] in
                    let n = p.count / batch
                    return (0..<batch).map { resolved[$0].score(UnsafeBufferPointer(rebasing: p[($0 * n)..<(($0 + 1) * n)])) }
                }
                let probe = LayerProbe(model: model, input: x, inputLayout: layout, layer: layer,
                                       rawActivations: gradients[l], reshape: layer.reshape,
                                       originalScores: originalScores, targetClasses: resolved.map(\.classIndex),
                                       targets: resolved, outputIndex: index, progress: progress)
                contribution = try m.contribution(activations: a, probe: probe)
            default:
                preconditionFailure("checked in init")
            }
            var cam = camFromContribution(contribution, activations: a)
            for b in CAMPostProcessing.sanitize(&cam) { warnings.append(.nonFiniteValues(image: b, layer: layer.name)) }
            cam = relu(cam)
            perLayer.append(CAMPostProcessing.scaled(cam, height: height, width: width))
        }
        return PassResult(maps: CAMPostProcessing.aggregated(perLayer), logits: logits,
                          classes: resolved.map(\.classIndex), layers: layers, warnings: warnings)
    }

    /// The (B, h, w) map of one layer before ReLU and normalisation.
    func camFromContribution(_ c: LayerContribution, activations a: Tensor) -> Tensor {
        switch c {
        case .channelWeights(let w):
            return options.eigenSmooth
                ? EigenDecomposition.firstComponentProjection(CAMPostProcessing.weightedActivations(weights: w, activations: a))
                : CAMPostProcessing.weightedChannelSum(weights: w, activations: a)
        case .weightedActivations(let x):
            return options.eigenSmooth ? EigenDecomposition.firstComponentProjection(x) : CAMPostProcessing.channelSum(x)
        case .principalComponent(let x):
            return EigenDecomposition.firstComponentProjection(x)
        }
    }
}

/// Reverses the width axis of an image batch (or of (B, H, W) maps when `rank3`).
func flippedHorizontally(_ t: Tensor, layout: InputLayout, rank3: Bool = false) -> Tensor {
    let shape = t.shape
    // Split as (outer, width, inner): width elements of `inner` contiguous values.
    let widthAxis = rank3 ? 2 : (layout == .nchw ? 3 : 2)
    let width = shape[widthAxis]
    let inner = shape[(widthAxis + 1)...].reduce(1, *)
    let outer = shape[..<widthAxis].reduce(1, *)
    var out = Tensor(uninitializedShape: shape)
    t.withUnsafeBufferPointer { src in
        out.withUnsafeMutableBufferPointer { dst in
            for o in 0..<outer {
                for x in 0..<width {
                    let s = (o * width + x) * inner, d = (o * width + (width - 1 - x)) * inner
                    for i in 0..<inner { dst[d + i] = src[s + i] }
                }
            }
        }
    }
    return out
}
