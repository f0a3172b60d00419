import ONNXGraph
import TensorCore

// Pixel attributions: the shared protocol, the driver that batches rows through the model's cached
// plans, the result type and the public entry point (``Attributor``).
//
// Semantics follow Captum 0.9 (`captum/attr/_core/*.py`): every method explains one scalar per
// image, the target score (by default the raw logit of the top class, like Captum with an explicit
// `target=argmax`), and returns attributions shaped like the input. Each method's file names the
// paper and the Captum source it matches.

/// A pixel attribution method: given a batch of images and the engine, their attributions.
///
/// Conforming types are small value types with their settings as `init` parameters
/// (``Saliency``, ``InputXGradient``, ``GuidedBackprop``, ``Deconvolution``, ``GuidedGradCAM``,
/// ``IntegratedGradients``, ``NoiseTunnel``, ``Occlusion``). Methods never run the model
/// themselves: they ask the ``AttributionContext`` for gradients or scores of rows, which it runs in
/// internal batches of ``AttributionOptions/batchSize`` rows through the model's cached plans.
public protocol AttributionMethod: Sendable {
    /// The method's name as Captum spells its class (`"Saliency"`, `"IntegratedGradients"`).
    var name: String { get }

    /// The attributions of `images` (N, ...) for the targets the context holds (one per image).
    ///
    /// - Parameters:
    ///   - images: the images to explain, in the model's input layout.
    ///   - context: the engine: gradients and scores of rows, each image's target.
    /// - Returns: attributions shaped like `images`, and for path methods the completeness error.
    /// - Throws: ``ExplainError`` for invalid settings, ``ONNXGraph/ONNXGraphError`` from the model.
    func attributions(of images: Tensor, context: AttributionContext) throws -> MethodAttributions
}

/// What one ``AttributionMethod`` call returns.
public struct MethodAttributions: Sendable {
    /// Attributions shaped like the images, Float32.
    public var attributions: Tensor
    /// Per image `Σ attributions − (f(x) − f(baseline))` (Integrated Gradients; `nil` for others).
    public var completenessError: [Float]?
    /// Per image `f(x) − f(baseline)`, the quantity the completeness error is relative to.
    public var scoreDifference: [Float]?

    /// Creates a method result.
    public init(attributions: Tensor, completenessError: [Float]? = nil, scoreDifference: [Float]? = nil) {
        self.attributions = attributions
        self.completenessError = completenessError
        self.scoreDifference = scoreDifference
    }
}

/// Settings of an ``Attributor`` shared by every method.
public struct AttributionOptions: Sendable {
    /// The default number of rows per network pass (``batchSize``).
    public static let defaultBatchSize = 16

    /// How many rows (interpolation steps, noisy samples, occluded copies, images) at most go through
    /// the network in one pass. Memory grows linearly with it (a forward and reverse pass keep every
    /// activation of the batch); speed improves up to ~16 rows and then flattens. Default 16. The
    /// passes may take fewer rows, all the same number where a divisor of the row count allows
    /// (50 steps at 16: five passes of 10). For a
    /// model whose graph fixes the batch dimension, that size is used instead (results do not depend
    /// on it). Captum's `internal_batch_size` / `perturbations_per_eval` / `nt_samples_batch_size`.
    public var batchSize: Int
    /// Which model output holds the class scores. Default 0.
    public var outputIndex: Int
    /// The input's layout, used by methods with spatial settings (a blurred baseline); `nil`
    /// (default) detects it from the shape (``InputLayout/detect(_:)``).
    public var inputLayout: InputLayout?

    /// Creates options; every parameter has the default documented on its property.
    public init(batchSize: Int = AttributionOptions.defaultBatchSize, outputIndex: Int = 0,
                inputLayout: InputLayout? = nil) {
        self.batchSize = batchSize
        self.outputIndex = outputIndex
        self.inputLayout = inputLayout
    }
}

/// The result of ``Attributor/attribute(_:targets:)``.
public struct AttributionResult: Sendable {
    /// The attributions, shaped like the input ((B, C, H, W) for NCHW), Float32, signed unless the
    /// method says otherwise (``Saliency`` takes absolute values by default).
    public var attributions: Tensor
    /// The model's output for the input, (B, classes).
    public var logits: Tensor
    /// The class each image's attribution explains (`nil` for a custom target).
    public var targetClasses: [Int?]
    /// For Integrated Gradients (also under a noise tunnel, averaged over samples): per image
    /// `Σ attributions − (f(x) − f(baseline))` (Captum's convergence delta); `nil` for other methods.
    public var completenessError: [Float]?
    /// Per image `f(x) − f(baseline)` when ``completenessError`` is set.
    public var scoreDifference: [Float]?
    /// Things the caller should know (non-finite values replaced, ...).
    public var warnings: [ExplanationWarning]
    /// The method's name.
    public var method: String

    /// The attributions of image `b`, shaped like one input sample ((C, H, W) for NCHW).
    public func attributions(ofImage b: Int) -> Tensor {
        attributions.sliced(starts: [b], ends: [b + 1], axes: [0]).reshaped(to: Array(attributions.shape.dropFirst()))
    }
}

/// Computes pixel attributions of an ONNX image classifier, reproducing Captum 0.9's numbers.
///
/// ```swift
/// let graph = try ModelGraph(contentsOf: URL(fileURLWithPath: "resnet50.onnx"))
/// // Integrated Gradients, 50 steps (Gauss–Legendre), zero baseline, 16 rows per network pass:
/// let ig = try Attributor(model: graph, method: IntegratedGradients(steps: 50))
/// let result = try ig.attribute(input, targets: [.classScore(281)])   // input: (1, 3, 224, 224)
/// let map = result.attributions                                        // (1, 3, 224, 224), signed
/// print(result.completenessError!, result.scoreDifference!)           // Σattr − (f(x) − f(0))
///
/// // SmoothGrad over saliency, 50 samples, noise σ = 15 % of each image's value range:
/// let sg = try Attributor(model: graph, method: NoiseTunnel(wrapping: Saliency(), kind: .smoothGrad,
///                                                           samples: 50, noise: .gaussian(.fractionOfRange(0.15), seed: 7)))
/// // Occlusion with 16×16 windows, stride 8, occluded with 0:
/// let occ = try Attributor(model: graph, method: Occlusion(window: 16, stride: 8),
///                          options: AttributionOptions(batchSize: 32))
/// ```
///
/// Targets are resolved on the model's output for the clean input (one per image; `nil` explains
/// each image's top class) and kept for every interpolated, noisy or occluded copy of that image.
/// Plans are cached per input shape by the ``ONNXGraph/ModelGraph``.
public final class Attributor: Sendable {
    /// The model.
    public let model: ModelGraph
    /// The method.
    public let method: any AttributionMethod
    /// The settings.
    public let options: AttributionOptions

    /// Creates an attributor.
    ///
    /// - Parameters:
    ///   - model: the classifier (one input).
    ///   - method: e.g. ``Saliency``, ``IntegratedGradients``, ``NoiseTunnel``, ``Occlusion``.
    ///   - options: see ``AttributionOptions``.
    /// - Throws: ``ExplainError/unsupportedModel(reason:)`` for a model with several inputs,
    ///   ``ExplainError/invalidOption(name:value:reason:)`` for a batch size below 1.
    public init(model: ModelGraph, method: any AttributionMethod, options: AttributionOptions = AttributionOptions()) throws {
        guard model.inputs.count == 1 else {
            throw ExplainError.unsupportedModel(
                reason: "it has \(model.inputs.count) inputs (\(model.inputs.map(\.name).joined(separator: ", "))); CAMKit explains single-input image models")
        }
        guard options.batchSize >= 1 else {
            throw ExplainError.invalidOption(name: "batch size", value: "\(options.batchSize)",
                                             reason: "must be at least 1 (rows per network pass)")
        }
        self.model = model
        self.method = method
        self.options = options
    }

    /// Attributes one target per image.
    ///
    /// - Parameters:
    ///   - input: the preprocessed batch, (B, C, H, W) (or (B, H, W, C)), Float32.
    ///   - targets: one per image; `nil` explains each image's top prediction.
    /// - Returns: attributions shaped like `input`, with the logits, classes and, for Integrated
    ///   Gradients, the completeness error.
    /// - Throws: ``ExplainError`` for a target count that differs from the batch, a class out of
    ///   range, invalid method settings (zero steps, a baseline of the wrong shape...);
    ///   ``ONNXGraph/ONNXGraphError`` from the model (e.g. an operator without a gradient).
    public func attribute(_ input: Tensor, targets: [CAMTarget]? = nil) throws -> AttributionResult {
        guard input.rank >= 2 else {
            throw ExplainError.unsupportedInput(shape: input.shape, reason: "expected an image batch (B, C, H, W)")
        }
        guard input.dtype == .float32 else {
            throw ExplainError.unsupportedInput(shape: input.shape, reason: "expected Float32 values, got \(input.dtype)")
        }
        guard input.shape.allSatisfy({ $0 > 0 }) else {
            throw ExplainError.unsupportedInput(shape: input.shape, reason: "every dimension must be positive")
        }
        let batch = input.shape[0]
        let targets = targets ?? Array(repeating: .topPrediction, count: batch)
        guard targets.count == batch else { throw ExplainError.targetCountMismatch(targets: targets.count, batch: batch) }
        let layout = options.inputLayout ?? (input.rank == 4 ? InputLayout.detect(input.shape) : .nchw)

        // The clean forward pass: logits and resolved targets.
        var base = AttributionContext(model: model, batchSize: options.batchSize, outputIndex: options.outputIndex,
                                      inputLayout: layout, targets: [])
        let logits = try base.logits(of: input)
        let resolved = try resolveTargets(targets, logits: logits, batch: batch)
        base.targets = resolved
        base.inputBatch = batch

        var out = try method.attributions(of: input, context: base)
        guard out.attributions.shape == input.shape else {
            throw ExplainError.invalidOption(name: "method", value: method.name,
                                             reason: "returned attributions of shape \(out.attributions.shape) for an input of shape \(input.shape)")
        }
        var warnings: [ExplanationWarning] = []
        let perImage = input.count / batch
        var bad = Set<Int>()
        out.attributions.withUnsafeMutableBufferPointer { p in
            for i in 0..<p.count where !p[i].isFinite {
                p[i] = 0
                bad.insert(i / perImage)
            }
        }
        for b in bad.sorted() {
            warnings.append(.note("image \(b): the attributions had NaN or infinite values, replaced by 0"))
        }
        return AttributionResult(attributions: out.attributions, logits: logits, targetClasses: resolved.map(\.classIndex),
                                 completenessError: out.completenessError, scoreDifference: out.scoreDifference,
                                 warnings: warnings, method: method.name)
    }
}

/// What an ``AttributionMethod`` may ask of the model: gradients and scores of rows built on the
/// fly, in internal batches of ``batchSize`` rows, each row explained with the target of the image
/// it derives from.
///
/// A "row" is one model input sample (an interpolated image, a noisy copy, an occluded copy);
/// `fill` writes it, `imageOfRow` says which image's target scores it. At most ``batchSize`` rows
/// exist at once, so memory is bounded by the batch size whatever the number of steps or samples.
public struct AttributionContext: Sendable {
    /// The model.
    public let model: ModelGraph
    /// Rows per network pass.
    public let batchSize: Int
    let outputIndex: Int
    /// The layout of the images.
    public let inputLayout: InputLayout
    /// One resolved target per image of the current call.
    var targets: [ResolvedTarget] {
        didSet { if origins.count != targets.count { origins = Array(targets.indices) } }
    }
    /// For each image of the current call, the index of the input image it derives from.
    public internal(set) var origins: [Int]
    /// The number of images of the input given to ``Attributor/attribute(_:targets:)``.
    public internal(set) var inputBatch: Int

    init(model: ModelGraph, batchSize: Int, outputIndex: Int, inputLayout: InputLayout, targets: [ResolvedTarget]) {
        self.model = model
        self.batchSize = batchSize
        self.outputIndex = outputIndex
        self.inputLayout = inputLayout
        self.targets = targets
        self.origins = Array(targets.indices)
        self.inputBatch = targets.count
    }

    /// The number of images the context holds targets for.
    public var imageCount: Int { targets.count }

    /// The graph input's name (the value gradients are taken with respect to).
    var inputName: String { model.inputs[0].name }

    /// The context for derived images: image `j` of the new context uses the target of image
    /// `sources[j]` of this one (noise tunnels: each noisy copy keeps its image's target).
    func deriving(sources: [Int]) -> AttributionContext {
        var c = self
        c.origins = sources.map { origins[$0] }
        c.targets = sources.map { targets[$0] }
        return c
    }

    /// The rows per pass: the batch size, or the model's fixed batch dimension if it declares one.
    var fixedBatch: Int? {
        if case .fixed(let n)? = model.inputs.first?.dimensions.first, n > 0 { return n }
        return nil
    }

    /// The rows of each pass for `rowCount` rows, at most `batchSize`: the largest divisor of
    /// `rowCount` in `batchSize/2 ... batchSize` that is a multiple of `threads`, so that every pass
    /// has the same shape — one plan, one set of prepared kernels and buffers instead of two for a
    /// shorter last pass — and splits evenly over the threads (50 IG steps at 16: five passes of
    /// 10, not 16 + 16 + 16 + 2; the per-image cost of a pass does not depend on its rows). Without
    /// such a divisor, `batchSize` (the last pass takes the rest).
    static func rowsPerPass(rowCount: Int, batchSize: Int, threads: Int) -> Int {
        guard rowCount > batchSize else { return max(1, min(batchSize, rowCount)) }
        let step = max(1, threads)
        for m in stride(from: batchSize, through: max(1, (batchSize + 1) / 2), by: -1)
        where m % step == 0 && rowCount % m == 0 {
            return m
        }
        return batchSize
    }

    /// Runs `rowCount` rows in batches (``rowsPerPass(rowCount:batchSize:threads:)``): each batch
    /// is filled row by row and handed to `body` with the index of its first row and its number of
    /// real rows (a model with a fixed batch size gets padding rows, copies of the batch's first
    /// row, after them).
    func forEachBatch(rowCount: Int, sampleShape: [Int],
                      fill: (_ row: Int, _ sample: UnsafeMutableBufferPointer<Float>) -> Void,
                      body: (_ first: Int, _ rows: Int, _ batch: Tensor) throws -> Void) throws {
        let n = sampleShape.reduce(1, *)
        let step = fixedBatch ?? Self.rowsPerPass(rowCount: rowCount, batchSize: batchSize,
                                                  threads: ComputeSettings.threadCount)
        var start = 0
        while start < rowCount {
            let rows = min(step, rowCount - start)
            let passRows = fixedBatch ?? rows
            var batch = Tensor(uninitializedShape: [passRows] + sampleShape)
            batch.withUnsafeMutableBufferPointer { p in
                for r in 0..<rows {
                    fill(start + r, UnsafeMutableBufferPointer(rebasing: p[(r * n)..<((r + 1) * n)]))
                }
                for r in rows..<passRows {
                    for i in 0..<n { p[r * n + i] = p[i] }
                }
            }
            try body(start, rows, batch)
            start += rows
        }
    }

    /// The model's output `outputIndex` for `images` (N, ...), run in batches.
    func logits(of images: Tensor) throws -> Tensor {
        let sampleShape = Array(images.shape.dropFirst())
        let n = sampleShape.reduce(1, *)
        var parts: [Tensor] = []
        try images.withUnsafeBufferPointer { src in
            try forEachBatch(rowCount: images.shape[0], sampleShape: sampleShape, fill: { row, dst in
                for i in 0..<n { dst[i] = src[row * n + i] }
            }, body: { _, rows, batch in
                let plan = try model.plan(forInputShapes: [batch.shape])
                let outputs = try plan.run([batch]).outputs
                let logits = try checkedLogits(outputs, index: outputIndex, batch: batch.shape[0])
                parts.append(rows == batch.shape[0] ? logits : logits.sliced(starts: [0], ends: [rows], axes: [0]))
            })
        }
        return parts.count == 1 ? parts[0] : concatenated(parts, alongAxis: 0)
    }

    /// The target score of each of `rowCount` rows (forward passes only).
    ///
    /// - Parameters:
    ///   - sampleShape: the shape of one row (one image without the batch axis).
    ///   - imageOfRow: which image's target scores the row.
    ///   - fill: writes row `row` completely.
    public func scores(rowCount: Int, sampleShape: [Int], imageOfRow: (Int) -> Int,
                       fill: (_ row: Int, _ sample: UnsafeMutableBufferPointer<Float>) -> Void) throws -> [Float] {
        var scores = [Float](repeating: 0, count: rowCount)
        try forEachBatch(rowCount: rowCount, sampleShape: sampleShape, fill: fill) { first, rows, batch in
            let plan = try model.plan(forInputShapes: [batch.shape])
            let outputs = try plan.run([batch]).outputs
            let logits = try checkedLogits(outputs, index: outputIndex, batch: batch.shape[0])
            let length = logits.count / batch.shape[0]
            logits.withUnsafeBufferPointer { q in
                for r in 0..<rows {
                    scores[first + r] = targets[imageOfRow(first + r)].score(
                        UnsafeBufferPointer(rebasing: q[(r * length)..<((r + 1) * length)]))
                }
            }
        }
        return scores
    }

    /// The gradient of each row's target score with respect to the row, for `rowCount` rows.
    ///
    /// - Parameters:
    ///   - sampleShape: the shape of one row.
    ///   - rule: the ReLU gradient rule (``ONNXGraph/ActivationGradientRule``; other activations,
    ///     including `Clip`/ReLU6, always keep their true derivative, as in Captum).
    ///   - imageOfRow: which image's target scores the row.
    ///   - fill: writes row `row` completely.
    ///   - consume: receives each row's gradient (shaped like `sampleShape`, valid only during the
    ///     call) and its target score.
    public func inputGradients(rowCount: Int, sampleShape: [Int], rule: ActivationGradientRule = .standard,
                               imageOfRow: (Int) -> Int,
                               fill: (_ row: Int, _ sample: UnsafeMutableBufferPointer<Float>) -> Void,
                               consume: (_ row: Int, _ gradient: UnsafeBufferPointer<Float>, _ score: Float) throws -> Void) throws {
        let n = sampleShape.reduce(1, *)
        let name = inputName
        try forEachBatch(rowCount: rowCount, sampleShape: sampleShape, fill: fill) { first, rows, batch in
            let pass = try gradientPass(batch, rows: rows, firstImage: { imageOfRow(first + $0) }, rule: rule,
                                        withRespectTo: [name], capturing: [])
            guard let g = pass.gradients[name] else { return }
            try g.withUnsafeBufferPointer { gp in
                for r in 0..<rows {
                    try consume(first + r, UnsafeBufferPointer(rebasing: gp[(r * n)..<((r + 1) * n)]), pass.scores[r])
                }
            }
        }
    }

    /// One forward and reverse pass over a prepared batch: the first `rows` rows are seeded with
    /// their image's target (`imageOf(r)`), padding rows with zero.
    func gradientPass(_ batch: Tensor, rows: Int, firstImage imageOf: (Int) -> Int, rule: ActivationGradientRule,
                      withRespectTo values: [String], capturing: [String])
        throws -> (gradients: [String: Tensor], captures: [String: Tensor], scores: [Float]) {
        let preserve = Set(values + capturing).subtracting([inputName])
        let plan = try model.plan(forInputShapes: [batch.shape], preserving: preserve)
        let passRows = batch.shape[0]
        let index = outputIndex
        let rowTargets = (0..<rows).map { targets[imageOf($0)] }
        var scores = [Float](repeating: 0, count: rows)
        let result = try plan.gradients([batch], capturing: capturing, withRespectTo: values,
                                        context: PullbackContext(reluRule: rule), seed: { (outputs: [Tensor]) throws -> [Tensor?] in
            let logits = try checkedLogits(outputs, index: index, batch: passRows)
            let length = logits.count / passRows
            var seed = Tensor(zeros: logits.shape)
            try logits.withUnsafeBufferPointer { p in
                try seed.withUnsafeMutableBufferPointer { s in
                    for r in 0..<rows {
                        let row = UnsafeBufferPointer(rebasing: p[(r * length)..<((r + 1) * length)])
                        scores[r] = rowTargets[r].score(row)
                        try rowTargets[r].writeGradient(row, into: UnsafeMutableBufferPointer(rebasing: s[(r * length)..<((r + 1) * length)]))
                    }
                }
            }
            var seeds = [Tensor?](repeating: nil, count: outputs.count)
            seeds[index] = seed
            return seeds
        })
        return (result.gradients, result.forward.captures, scores)
    }
}
