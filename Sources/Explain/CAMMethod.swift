import ONNXGraph
import TensorCore

/// A class activation mapping method. Conform through one of the refining protocols:
/// ``GradientCAMMethod`` (channel weights or a per-position map from activations and gradients),
/// ``GradientFreeCAMMethod`` (activations plus extra forward passes) or ``WholeModelCAMMethod``
/// (methods that ignore the target layers, such as FullGrad).
public protocol CAMMethod: Sendable {
    /// The method's name as pytorch-grad-cam spells its class (`"GradCAM"`, `"ScoreCAM"`).
    var name: String { get }
}

/// What a method contributes for one target layer; the shared post-processing turns it into a map.
///
/// All tensors are in the transformed layout: activations (B, K, H, W), weights (B, K).
public enum LayerContribution: Sendable {
    /// Channel weights `w` (B, K): `cam = Σ_k w_k A_k`; with `eigenSmooth`, the first principal
    /// component of `w · A` (pytorch-grad-cam `BaseCAM.get_cam_image`).
    case channelWeights(Tensor)
    /// Per-position contributions `X` (B, K, H, W): `cam = Σ_k X_k`; with `eigenSmooth`, the first
    /// principal component of `X` (HiResCAM, GradCAMElementWise, LayerCAM).
    case weightedActivations(Tensor)
    /// Always the first principal component of `X` (B, K, H, W), whatever `eigenSmooth` says
    /// (EigenCAM, EigenGradCAM).
    case principalComponent(Tensor)
}

/// A method that weighs a layer's activations with the gradient of the score.
///
/// The explainer runs one forward and one reverse pass over the model's plan and hands over the
/// target layer's activations `A` and gradients `G = ∂score/∂A`, both (B, K, H, W) after the
/// reshape transform.
public protocol GradientCAMMethod: CAMMethod {
    /// The layer's contribution from `activations` and `gradients` (both (B, K, H, W)).
    func contribution(activations: Tensor, gradients: Tensor) throws -> LayerContribution
}

/// A method that needs no gradient: it reads the activations and, if it wants, scores modified
/// inputs or modified layer outputs through the ``LayerProbe``.
public protocol GradientFreeCAMMethod: CAMMethod {
    /// The layer's contribution from its `activations` (B, K, H, W) and the probe.
    func contribution(activations: Tensor, probe: LayerProbe) throws -> LayerContribution

    /// How many extra forward passes (one per sample) the method makes for one image and a layer
    /// with `channels` channels, for progress reporting. Default 0.
    func forwardPassCount(channels: Int) -> Int
}

extension GradientFreeCAMMethod {
    public func forwardPassCount(channels: Int) -> Int { 0 }
}

/// A method that computes the whole map from the model itself, ignoring the target layers
/// (FullGrad). It returns the map **before** the final min-max normalisation; the explainer
/// applies that, the NaN checks and the augmentation smoothing.
public protocol WholeModelCAMMethod: CAMMethod {
    /// The (B, H, W) map before the final normalisation, plus the layers it used.
    func map(probe: ModelProbe, eigenSmooth: Bool) throws -> (map: Tensor, layers: [ExplainedLayer])
}

/// Counts the forward passes of the many-forward methods and reports them.
final class ProgressCounter: @unchecked Sendable {
    var completed = 0
    var total = 0
    let callback: (@Sendable (_ completed: Int, _ total: Int) -> Void)?
    init(callback: (@Sendable (_ completed: Int, _ total: Int) -> Void)?) { self.callback = callback }
    func advance(by n: Int) {
        completed += n
        callback?(completed, max(total, completed))
    }
}

/// What a ``GradientFreeCAMMethod`` may ask of the model while explaining one target layer:
/// scores of modified inputs (ScoreCAM) or of modified layer outputs (AblationCAM), always with
/// the image's resolved target, in batches through the model's cached plans.
public struct LayerProbe: Sendable {
    /// The model.
    public let model: ModelGraph
    /// The model input (B, C, H, W) (or (B, H, W, C), see ``inputLayout``).
    public let input: Tensor
    /// The layout of ``input``.
    public let inputLayout: InputLayout
    /// The layer being explained.
    public let layer: ExplainedLayer
    /// The layer's raw output (before the reshape transform), (B, ...).
    public let rawActivations: Tensor
    /// The rearrangement from the raw output to (B, K, H, W).
    public let reshape: AppliedReshape
    /// Each image's target score on the unmodified input.
    public let originalScores: [Float]
    /// Each image's target class (`nil` for custom targets).
    public let targetClasses: [Int?]
    let targets: [ResolvedTarget]
    let outputIndex: Int
    let progress: ProgressCounter

    /// The target score of image `image` for `count` modified copies of that image, built row by
    /// row by `fill` (which receives the row index and a buffer of one sample, in the input's
    /// layout, to overwrite completely). Runs in batches of `batchSize` (or of the model's fixed
    /// batch size, if it declares one); the last batch is padded so that one plan serves every batch.
    public func scoresOfInputs(count: Int, image: Int, batchSize: Int,
                               fill: (_ row: Int, _ sample: UnsafeMutableBufferPointer<Float>) -> Void) throws -> [Float] {
        let sampleShape = Array(input.shape.dropFirst())
        let batchSize = effectiveBatchSize(batchSize)
        let plan = try model.plan(forInputShapes: [[batchSize] + sampleShape])
        return try batched(count: count, image: image, batchSize: batchSize, sampleShape: sampleShape, fill: fill) { batch in
            try plan.run([batch]).outputs
        }
    }

    /// The target score of image `image` when the layer's raw output is replaced, for `count`
    /// variants built row by row by `fill` (one raw sample of the layer, e.g. (K, H, W), to
    /// overwrite completely); only the part of the network after the layer runs. Batches of
    /// `batchSize` (or the model's fixed batch size), the last one padded.
    public func scoresReplacingLayer(count: Int, image: Int, batchSize: Int,
                                     fill: (_ row: Int, _ sample: UnsafeMutableBufferPointer<Float>) -> Void) throws -> [Float] {
        let sampleShape = Array(input.shape.dropFirst())
        let batchSize = effectiveBatchSize(batchSize)
        let plan = try model.plan(forInputShapes: [[batchSize] + sampleShape], preserving: [layer.tensor])
        let rawSample = Array(rawActivations.shape.dropFirst())
        // The input rows are the image itself (steps that still read the input, if any, see it).
        var inputs = Tensor(uninitializedShape: [batchSize] + sampleShape)
        let n = sampleShape.reduce(1, *)
        input.withUnsafeBufferPointer { src in
            inputs.withUnsafeMutableBufferPointer { dst in
                for r in 0..<batchSize {
                    for i in 0..<n { dst[r * n + i] = src[image * n + i] }
                }
            }
        }
        let tensor = layer.tensor
        return try batched(count: count, image: image, batchSize: batchSize, sampleShape: rawSample, fill: fill) { batch in
            try plan.run([inputs], overriding: [tensor: batch]).outputs
        }
    }

    /// `requested`, unless the model declares a fixed batch size: then that one (an exported graph
    /// with a fixed batch cannot be specialised for another; results do not depend on it).
    func effectiveBatchSize(_ requested: Int) -> Int {
        if case .fixed(let n)? = model.inputs.first?.dimensions.first, n > 0 { return n }
        return requested
    }

    private func batched(count: Int, image: Int, batchSize: Int, sampleShape: [Int],
                         fill: (Int, UnsafeMutableBufferPointer<Float>) -> Void,
                         run: (Tensor) throws -> [Tensor]) throws -> [Float] {
        guard batchSize > 0 else {
            throw ExplainError.invalidOption(name: "batch size", value: "\(batchSize)", reason: "must be at least 1")
        }
        let n = sampleShape.reduce(1, *)
        var scores: [Float] = []
        scores.reserveCapacity(count)
        var start = 0
        while start < count {
            let rows = min(batchSize, count - start)
            var batch = Tensor(zeros: [batchSize] + sampleShape)
            batch.withUnsafeMutableBufferPointer { p in
                for r in 0..<rows {
                    fill(start + r, UnsafeMutableBufferPointer(rebasing: p[(r * n)..<((r + 1) * n)]))
                }
                // Padding rows repeat the first row (any valid values would do).
                for r in rows..<batchSize {
                    for i in 0..<n { p[r * n + i] = p[i] }
                }
            }
            let outputs = try run(batch)
            let logits = outputs[outputIndex]
            let length = logits.count / batchSize
            logits.withUnsafeBufferPointer { q in
                for r in 0..<rows {
                    scores.append(targets[image].score(UnsafeBufferPointer(rebasing: q[(r * length)..<((r + 1) * length)])))
                }
            }
            progress.advance(by: rows)
            start += rows
        }
        return scores
    }
}

/// What a ``WholeModelCAMMethod`` may ask of the model: a reverse pass from the images' targets to
/// any values of the plan (including the input).
public struct ModelProbe: Sendable {
    /// The model.
    public let model: ModelGraph
    /// The plan for the input's shape (without preserved values: use it for shapes and constants;
    /// ``gradients(withRespectTo:)`` makes the plan that keeps the requested values).
    public let plan: ExecutionPlan
    /// The model input.
    public let input: Tensor
    /// The layout of ``input``.
    public let inputLayout: InputLayout
    let targets: [CAMTarget]
    let outputIndex: Int
    let record: ProbeRecord

    /// Runs forward and back from the sum over images of each image's target score to `values`.
    /// - Returns: the gradients by name, the logits, and the resolved targets' classes.
    public func gradients(withRespectTo values: [String]) throws
        -> (gradients: [String: Tensor], logits: Tensor, targetClasses: [Int?]) {
        var resolved: [ResolvedTarget] = []
        let batch = input.shape[0]
        let index = outputIndex
        let targets = self.targets
        let plan = try model.plan(forInputShapes: [input.shape], preserving: Set(values))
        let result = try plan.gradients([input], withRespectTo: values) { outputs in
            let logits = try checkedLogits(outputs, index: index, batch: batch)
            resolved = try resolveTargets(targets, logits: logits, batch: batch)
            var seeds = [Tensor?](repeating: nil, count: outputs.count)
            seeds[index] = try seedGradient(resolved, logits: logits)
            return seeds
        }
        let logits = result.forward.outputs[index]
        record.logits = logits
        record.classes = resolved.map(\.classIndex)
        return (result.gradients, logits, resolved.map(\.classIndex))
    }
}

/// What a ``ModelProbe`` saw (the explainer reports it).
final class ProbeRecord: @unchecked Sendable {
    var logits: Tensor?
    var classes: [Int?] = []
}

/// Checks that output `index` is a (batch, ...) tensor and returns it.
func checkedLogits(_ outputs: [Tensor], index: Int, batch: Int) throws -> Tensor {
    guard index >= 0 && index < outputs.count else {
        throw ExplainError.invalidOption(name: "outputIndex", value: "\(index)", reason: "the model has \(outputs.count) outputs")
    }
    let t = outputs[index]
    guard t.dtype == .float32, t.rank >= 1, t.shape[0] == batch, t.count / max(batch, 1) >= 1 else {
        throw ExplainError.unsupportedOutput(index: index, shape: t.shape, batch: batch)
    }
    return t
}
