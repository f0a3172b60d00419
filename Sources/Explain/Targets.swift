import Foundation
import TensorCore

/// What score of the model's output an explanation explains, for one image.
///
/// Matches pytorch-grad-cam's `utils/model_targets.py`: ``classScore(_:)`` is
/// `ClassifierOutputTarget` (the raw logit), ``softmax(_:)`` is `ClassifierOutputSoftmaxTarget`,
/// ``topPrediction`` is what `BaseCAM.forward` does when `targets is None` (the raw logit of the
/// arg-max class, the first on ties as `np.argmax`).
///
/// ```swift
/// let explanation = try explainer.explain(input, targets: [.classScore(281)])
/// let custom = CAMTarget.custom(CustomTarget(name: "cat minus dog",
///     score: { $0[281] - $0[207] },
///     gradient: { row in var g = [Float](repeating: 0, count: row.count); g[281] = 1; g[207] = -1; return g }))
/// ```
public enum CAMTarget: Sendable, CustomStringConvertible {
    /// The raw logit of the class with the highest output (the default).
    case topPrediction
    /// The raw output (logit) of a class.
    case classScore(Int)
    /// The softmax probability of a class (softmax over the whole output row).
    case softmax(Int)
    /// Any differentiable score of the output row.
    case custom(CustomTarget)

    public var description: String {
        switch self {
        case .topPrediction: return "top prediction"
        case .classScore(let c): return "class \(c) (logit)"
        case .softmax(let c): return "class \(c) (softmax)"
        case .custom(let t): return "custom '\(t.name)'"
        }
    }
}

/// A user-defined score of one image's output row and its gradient.
///
/// The gradient closure gives d(score)/d(output row); it seeds the reverse pass. Gradient-free
/// methods (ScoreCAM, AblationCAM) only call ``score``.
public struct CustomTarget: Sendable {
    /// A name for messages.
    public var name: String
    /// The score of one output row (the model's output for one image, flattened).
    public var score: @Sendable (_ outputRow: [Float]) -> Float
    /// d(score)/d(output row), of the row's length.
    public var gradient: @Sendable (_ outputRow: [Float]) -> [Float]

    /// Creates a custom target.
    public init(name: String, score: @escaping @Sendable (_ outputRow: [Float]) -> Float,
                gradient: @escaping @Sendable (_ outputRow: [Float]) -> [Float]) {
        self.name = name
        self.score = score
        self.gradient = gradient
    }

    /// The sum of every output (pytorch-grad-cam's `RawScoresOutputTarget` summed over classes).
    public static let rawScores = CustomTarget(
        name: "sum of raw scores", score: { $0.reduce(0, +) },
        gradient: { [Float](repeating: 1, count: $0.count) })
}

/// A target bound to one image's output row: class resolved, score and seed available.
struct ResolvedTarget: Sendable {
    enum Kind: Sendable {
        case logit(Int)
        case softmax(Int)
        case custom(CustomTarget)
    }
    let kind: Kind

    /// The class the score is about (`nil` for custom targets).
    var classIndex: Int? {
        switch kind {
        case .logit(let c), .softmax(let c): return c
        case .custom: return nil
        }
    }

    /// Binds `target` to an output row.
    /// - Throws: ``ExplainError/classOutOfRange(classIndex:classCount:)``.
    init(_ target: CAMTarget, row: UnsafeBufferPointer<Float>) throws {
        switch target {
        case .topPrediction:
            var best = 0
            for i in 0..<row.count where row[i] > row[best] { best = i }
            kind = .logit(best)
        case .classScore(let c):
            guard c >= 0 && c < row.count else { throw ExplainError.classOutOfRange(classIndex: c, classCount: row.count) }
            kind = .logit(c)
        case .softmax(let c):
            guard c >= 0 && c < row.count else { throw ExplainError.classOutOfRange(classIndex: c, classCount: row.count) }
            kind = .softmax(c)
        case .custom(let t):
            kind = .custom(t)
        }
    }

    /// The target as a fixed class target (used by the many-forward methods after resolution).
    init(kind: Kind) { self.kind = kind }

    /// The score of an output row.
    func score(_ row: UnsafeBufferPointer<Float>) -> Float {
        switch kind {
        case .logit(let c):
            return row[c]
        case .softmax(let c):
            let p = softmaxRow(row)
            return p[c]
        case .custom(let t):
            return t.score(Array(row))
        }
    }

    /// d(score)/d(row), written into `out` (same length as `row`).
    func writeGradient(_ row: UnsafeBufferPointer<Float>, into out: UnsafeMutableBufferPointer<Float>) throws {
        switch kind {
        case .logit(let c):
            for i in 0..<out.count { out[i] = 0 }
            out[c] = 1
        case .softmax(let c):
            // d p_c / d x_i = p_c (δ_ci − p_i)
            let p = softmaxRow(row)
            for i in 0..<out.count { out[i] = -p[c] * p[i] }
            out[c] += p[c]
        case .custom(let t):
            let g = t.gradient(Array(row))
            guard g.count == out.count else {
                throw ExplainError.invalidCustomTarget(
                    name: t.name, reason: "the gradient has \(g.count) values for an output row of \(out.count)")
            }
            for i in 0..<out.count { out[i] = g[i] }
        }
    }
}

/// Softmax of one row in Float32 (PyTorch's `torch.softmax`: subtract the maximum, exponentiate,
/// divide by the sum).
func softmaxRow(_ row: UnsafeBufferPointer<Float>) -> [Float] {
    guard let m = row.max() else { return [] }
    var e = row.map { Foundation.exp($0 - m) }
    let s = e.reduce(0, +)
    for i in e.indices { e[i] /= s }
    return e
}

/// Binds one target per image to the rows of `logits` (B, classes...).
/// - Throws: ``ExplainError/targetCountMismatch(targets:batch:)``, ``ExplainError/classOutOfRange(classIndex:classCount:)``.
func resolveTargets(_ targets: [CAMTarget], logits: Tensor, batch: Int) throws -> [ResolvedTarget] {
    guard targets.count == batch else { throw ExplainError.targetCountMismatch(targets: targets.count, batch: batch) }
    let length = logits.count / max(batch, 1)
    return try logits.withUnsafeBufferPointer { p in
        try (0..<batch).map { b in
            try ResolvedTarget(targets[b], row: UnsafeBufferPointer(rebasing: p[(b * length)..<((b + 1) * length)]))
        }
    }
}

/// The seed of the reverse pass: d(Σ_b score_b)/d(logits), shaped like `logits`.
func seedGradient(_ targets: [ResolvedTarget], logits: Tensor) throws -> Tensor {
    let batch = targets.count
    let length = logits.count / max(batch, 1)
    var seed = Tensor(zeros: logits.shape)
    try logits.withUnsafeBufferPointer { p in
        try seed.withUnsafeMutableBufferPointer { s in
            for b in 0..<batch {
                try targets[b].writeGradient(
                    UnsafeBufferPointer(rebasing: p[(b * length)..<((b + 1) * length)]),
                    into: UnsafeMutableBufferPointer(rebasing: s[(b * length)..<((b + 1) * length)]))
            }
        }
    }
    return seed
}
