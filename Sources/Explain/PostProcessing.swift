import TensorCore

/// Something an explanation noticed that the caller should know; the maps are still valid
/// (never NaN). Reported in ``Explanation/warnings``, never printed.
public enum ExplanationWarning: Sendable, Equatable, CustomStringConvertible {
    /// A layer's map for an image held NaN or infinite values (an overflowing score, a degenerate
    /// layer); they were replaced by 0.
    case nonFiniteValues(image: Int, layer: String)
    /// The final map of an image is constant (every channel weight ≤ 0, a dead layer, or a score
    /// that does not depend on the layer): it is returned as zeros.
    case flatMap(image: Int)
    /// Other information (e.g. target layers a method ignores).
    case note(String)

    public var description: String {
        switch self {
        case .nonFiniteValues(let image, let layer):
            return "image \(image): the map of layer '\(layer)' had NaN or infinite values, replaced by 0"
        case .flatMap(let image):
            return "image \(image): the map is flat (the score does not vary with the layer's positions); returned as zeros"
        case .note(let text):
            return text
        }
    }
}

/// The post-processing shared by every CAM method, written once.
///
/// Reference: pytorch-grad-cam `base_cam.py` (`compute_cam_per_layer`, `aggregate_multi_layers`)
/// and `utils/image.py` (`scale_cam_image`, `scale_accross_batch_and_channels`):
/// 1. per layer: `cam = Σ_k w_k A_k` (or a per-position map), `max(cam, 0)`;
/// 2. per image: `x −= min(x)`, `x /= (1e-7 + max(x))` — **before** resizing — then OpenCV
///    `cv2.resize(INTER_LINEAR)` to the input size (half-pixel centres, borders clamped, no
///    antialias: ``TensorCore/resizedBilinear(_:height:width:alignCorners:)`` with
///    `alignCorners: false`);
/// 3. stack the layers, `max(·, 0)`, **mean** over layers, min-max again (no resize).
/// All arithmetic is Float32 like the reference's NumPy arrays.
public enum CAMPostProcessing {
    /// The ε of the reference's min-max normalisation (`x / (1e-7 + max(x))`).
    public static let normalisationEpsilon: Float = 1e-7

    /// Per-image min-max normalisation of (B, ...) in place: `x −= min`, `x /= (1e-7 + max)`.
    public static func minMaxNormalize(_ x: inout Tensor) {
        let batch = x.shape.first ?? 1
        let n = x.count / max(batch, 1)
        x.withUnsafeMutableBufferPointer { p in
            for b in 0..<batch {
                let s = UnsafeMutableBufferPointer(rebasing: p[(b * n)..<((b + 1) * n)])
                normalize(s)
            }
        }
    }

    /// `x −= min(x)`, `x /= (1e-7 + max(x))` over one buffer.
    static func normalize(_ s: UnsafeMutableBufferPointer<Float>) {
        guard !s.isEmpty else { return }
        var lo = s[0]
        for v in s where v < lo { lo = v }
        var hi = -Float.infinity
        for i in 0..<s.count {
            s[i] -= lo
            if s[i] > hi { hi = s[i] }
        }
        let d = normalisationEpsilon + hi
        for i in 0..<s.count { s[i] /= d }
    }

    /// `scale_cam_image`: per-image min-max, then a bilinear (OpenCV INTER_LINEAR) resize of each
    /// (h, w) map to `height × width`.
    /// - Parameter cams: (B, h, w). - Returns: (B, height, width).
    public static func scaled(_ cams: Tensor, height: Int, width: Int) -> Tensor {
        precondition(cams.rank == 3, "scaled expects (B, h, w), got \(cams.shape)")
        var x = cams
        minMaxNormalize(&x)
        if x.shape[1] == height && x.shape[2] == width { return x }
        let b = x.shape[0]
        let r = resizedBilinear(x.reshaped(to: [b, 1, x.shape[1], x.shape[2]]), height: height, width: width,
                                alignCorners: false)
        return r.reshaped(to: [b, height, width])
    }

    /// `scale_accross_batch_and_channels`: every (b, k) map min-max normalised and resized.
    /// - Parameter x: (B, K, h, w). - Returns: (B, K, height, width).
    public static func scaledPerChannel(_ x: Tensor, height: Int, width: Int) -> Tensor {
        precondition(x.rank == 4, "scaledPerChannel expects (B, K, h, w), got \(x.shape)")
        let (b, k) = (x.shape[0], x.shape[1])
        let r = scaled(x.reshaped(to: [b * k, x.shape[2], x.shape[3]]), height: height, width: width)
        return r.reshaped(to: [b, k, height, width])
    }

    /// `aggregate_multi_layers`: stack the per-layer maps, `max(·, 0)`, mean over layers, min-max.
    /// - Parameter layers: one (B, H, W) map per layer. - Returns: (B, H, W) in [0, 1].
    public static func aggregated(_ layers: [Tensor]) -> Tensor {
        precondition(!layers.isEmpty, "no layer maps to aggregate")
        var total = Tensor(zeros: layers[0].shape)
        total.withUnsafeMutableBufferPointer { t in
            for layer in layers {
                precondition(layer.shape == layers[0].shape, "layer maps \(layer.shape) and \(layers[0].shape) differ")
                layer.withUnsafeBufferPointer { l in
                    for i in 0..<t.count { t[i] += max(l[i], 0) }
                }
            }
            let n = Float(layers.count)
            for i in 0..<t.count { t[i] /= n }
        }
        minMaxNormalize(&total)
        return total
    }

    /// `Σ_k w_k A_k`: (B, K) weights and (B, K, H, W) activations → (B, H, W).
    public static func weightedChannelSum(weights: Tensor, activations: Tensor) -> Tensor {
        precondition(activations.rank == 4 && weights.shape == Array(activations.shape.prefix(2)),
                     "weights \(weights.shape) for activations \(activations.shape)")
        let (b, k, h, w) = (activations.shape[0], activations.shape[1], activations.shape[2], activations.shape[3])
        let hw = h * w
        var out = Tensor(zeros: [b, h, w])
        weights.withUnsafeBufferPointer { wp in
            activations.withUnsafeBufferPointer { a in
                out.withUnsafeMutableBufferPointer { o in
                    for i in 0..<b {
                        for c in 0..<k {
                            let wk = wp[i * k + c]
                            let base = (i * k + c) * hw
                            for p in 0..<hw { o[i * hw + p] += wk * a[base + p] }
                        }
                    }
                }
            }
        }
        return out
    }

    /// `w[:, :, None, None] * A`: (B, K) weights times (B, K, H, W) activations.
    public static func weightedActivations(weights: Tensor, activations: Tensor) -> Tensor {
        let (b, k) = (activations.shape[0], activations.shape[1])
        let hw = activations.count / max(b * k, 1)
        var out = activations
        weights.withUnsafeBufferPointer { wp in
            out.withUnsafeMutableBufferPointer { o in
                for i in 0..<(b * k) {
                    let wk = wp[i]
                    for p in 0..<hw { o[i * hw + p] *= wk }
                }
            }
        }
        return out
    }

    /// `X.sum(axis=1)`: (B, K, H, W) → (B, H, W).
    public static func channelSum(_ x: Tensor) -> Tensor {
        let (b, k, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let hw = h * w
        var out = Tensor(zeros: [b, h, w])
        x.withUnsafeBufferPointer { a in
            out.withUnsafeMutableBufferPointer { o in
                for i in 0..<b {
                    for c in 0..<k {
                        let base = (i * k + c) * hw
                        for p in 0..<hw { o[i * hw + p] += a[base + p] }
                    }
                }
            }
        }
        return out
    }

    /// Replaces NaN and infinite values of each image's map by 0, returning the images that had any.
    static func sanitize(_ x: inout Tensor) -> [Int] {
        let batch = x.shape.first ?? 1
        let n = x.count / max(batch, 1)
        var bad: [Int] = []
        x.withUnsafeMutableBufferPointer { p in
            for b in 0..<batch {
                var found = false
                for i in (b * n)..<((b + 1) * n) where !p[i].isFinite {
                    p[i] = 0
                    found = true
                }
                if found { bad.append(b) }
            }
        }
        return bad
    }

    /// The images whose map is constant (hence all zeros after normalisation).
    static func flatImages(_ x: Tensor) -> [Int] {
        let batch = x.shape.first ?? 1
        let n = x.count / max(batch, 1)
        return x.withUnsafeBufferPointer { p in
            (0..<batch).filter { b in
                let s = p[(b * n)..<((b + 1) * n)]
                guard let first = s.first else { return true }
                return s.allSatisfy { $0 == first }
            }
        }
    }
}
