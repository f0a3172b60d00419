import TensorCore

/// How a target layer's output (and its gradient, transformed identically) becomes the
/// (B, K, H, W) channel maps the CAM methods work on.
///
/// Reference: pytorch-grad-cam's `reshape_transform` argument (`utils/reshape_transforms.py`,
/// tutorials `vit_example.py`, `swinT_example.py`) and MMPretrain `vis_cam.py` (`--vit-like`,
/// `--num-extra-tokens`).
public enum ReshapeTransform: Sendable, Equatable, CustomStringConvertible {
    /// Rank 4: NCHW as is — except that, when the model has `LayerNormalization` nodes and the
    /// shape reads (B, H, H, C) with C ≠ H, it is taken as a channels-last Swin stage output.
    /// Rank 3: a ViT token sequence with the extra tokens detected (see ``vit(extraTokens:)``).
    /// Anything else is an ``ExplainError/noSpatialStructure(layer:shape:reason:)``.
    case automatic
    /// NCHW only: every other rank is an error.
    case channelsFirst
    /// Vision transformer tokens (B, extra + N, C) → drop the first `extraTokens` (class token;
    /// 2 for DeiT's class + distillation tokens) → (B, √N, √N, C) → (B, C, √N, √N).
    /// `nil` detects the count: 1 if T − 1 is a perfect square, else 2 if T − 2 is, else 0 if T is.
    case vit(extraTokens: Int? = nil)
    /// Swin-style channels-last maps (B, H, W, C) → (B, C, H, W); (B, L, C) token maps with L a
    /// perfect square are handled like ``vit(extraTokens:)`` with 0 extra tokens.
    case channelsLast

    public var description: String {
        switch self {
        case .automatic: return "automatic"
        case .channelsFirst: return "NCHW"
        case .vit(let n): return n.map { "ViT tokens (\($0) extra)" } ?? "ViT tokens (extra tokens detected)"
        case .channelsLast: return "channels-last (Swin)"
        }
    }
}

/// The concrete rearrangement chosen for one layer.
public enum AppliedReshape: Sendable, Equatable, CustomStringConvertible {
    /// (B, C, H, W) used as is.
    case identity
    /// (B, extra + h·w, C) → (B, C, h, w).
    case tokens(extra: Int, height: Int, width: Int)
    /// (B, H, W, C) → (B, C, H, W).
    case channelsLast

    public var description: String {
        switch self {
        case .identity: return "NCHW"
        case .tokens(let e, let h, let w): return "tokens: \(e) extra dropped, \(h)×\(w) grid"
        case .channelsLast: return "NHWC → NCHW"
        }
    }

    /// The axis of the raw layer output that holds the channels.
    public var rawChannelAxis: Int {
        switch self {
        case .identity: return 1
        case .tokens: return 2
        case .channelsLast: return 3
        }
    }

    /// Applies the rearrangement to a raw (B, ...) tensor.
    public func apply(_ t: Tensor) -> Tensor {
        switch self {
        case .identity:
            return t
        case .tokens(let extra, let h, let w):
            let (b, tokens, c) = (t.shape[0], t.shape[1], t.shape[2])
            let kept = extra == 0 ? t : t.sliced(starts: [extra], ends: [tokens], axes: [1])
            return kept.reshaped(to: [b, h, w, c]).transposed(permutation: [0, 3, 1, 2])
        case .channelsLast:
            return t.transposed(permutation: [0, 3, 1, 2])
        }
    }
}

extension ReshapeTransform {
    /// Chooses the rearrangement for a layer output of `shape`.
    /// - Parameter modelHasLayerNorm: whether the graph has `LayerNormalization` nodes (a hint that
    ///   rank-4 outputs may be channels-last).
    /// - Throws: ``ExplainError/noSpatialStructure(layer:shape:reason:)``.
    func resolve(shape: [Int], layer: String, modelHasLayerNorm: Bool) throws -> AppliedReshape {
        func tokens(extra: Int?) throws -> AppliedReshape {
            guard shape.count == 3 else {
                throw ExplainError.noSpatialStructure(layer: layer, shape: shape,
                                                      reason: "a ViT reshape needs a (B, tokens, C) output")
            }
            let t = shape[1]
            let candidates = extra.map { [$0] } ?? [1, 2, 0]
            for e in candidates where e >= 0 && e < t {
                let n = t - e
                let side = Int(Double(n).squareRoot().rounded())
                if side * side == n && side > 0 {
                    return .tokens(extra: e, height: side, width: side)
                }
            }
            let reason = extra.map { "\(t) tokens minus \($0) extra tokens is not a perfect square" }
                ?? "\(t) tokens: neither \(t - 1), \(t - 2) nor \(t) is a perfect square"
            throw ExplainError.noSpatialStructure(layer: layer, shape: shape, reason: reason)
        }
        switch self {
        case .channelsFirst:
            guard shape.count == 4 else {
                throw ExplainError.noSpatialStructure(layer: layer, shape: shape, reason: "rank \(shape.count), not (B, C, H, W)")
            }
            return .identity
        case .vit(let extra):
            return try tokens(extra: extra)
        case .channelsLast:
            if shape.count == 3 { return try tokens(extra: 0) }
            guard shape.count == 4 else {
                throw ExplainError.noSpatialStructure(layer: layer, shape: shape, reason: "rank \(shape.count), not (B, H, W, C)")
            }
            return .channelsLast
        case .automatic:
            switch shape.count {
            case 4:
                if modelHasLayerNorm && shape[1] == shape[2] && shape[3] != shape[1] { return .channelsLast }
                return .identity
            case 3:
                return try tokens(extra: nil)
            default:
                throw ExplainError.noSpatialStructure(layer: layer, shape: shape,
                                                      reason: "rank \(shape.count): no height and width axes")
            }
        }
    }
}
