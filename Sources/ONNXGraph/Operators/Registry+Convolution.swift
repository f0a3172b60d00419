import TensorCore

extension OperatorRegistry {
    /// The operators of the Convolution family, by ONNX op type.
    static let convolutionOperators: [String: any ONNXOperator.Type] = [
        "Conv": ConvOperator.self,
        "MaxPool": MaxPoolOperator.self,
        "AveragePool": AveragePoolOperator.self,
        "GlobalAveragePool": GlobalAveragePoolOperator.self,
        "GlobalMaxPool": GlobalMaxPoolOperator.self,
    ]
}

// MARK: - Attributes shared by Conv, MaxPool and AveragePool

/// The sliding-window attributes of Conv / MaxPool / AveragePool (`kernel_shape`, `strides`,
/// `dilations`, `pads`, `auto_pad`), validated once in `init(node:opset:)` and resolved against the
/// input's spatial shape. CAMKit supports 1-D (`[N, C, L]`, computed as `H = 1`) and 2-D
/// (`[N, C, H, W]`) windows.
struct WindowAttributes: Sendable {
    /// ONNX `auto_pad`.
    enum AutoPad: String, Sendable {
        case notSet = "NOTSET", sameUpper = "SAME_UPPER", sameLower = "SAME_LOWER", valid = "VALID"
    }

    var kernelShape: [Int]?
    var strides: [Int]?
    var dilations: [Int]?
    var pads: [Int]?
    var autoPad: AutoPad

    /// The resolved 2-D window (1-D windows get height 1).
    struct Window: Sendable {
        var kernel: (Int, Int)
        var strides: (Int, Int)
        var dilations: (Int, Int)
        var padding: Padding2D
    }

    init(node: Node, kernelRequired: Bool) throws {
        kernelShape = try node.ints("kernel_shape")
        if kernelRequired && kernelShape == nil { throw OperatorError("missing attribute 'kernel_shape'") }
        strides = try node.ints("strides")
        dilations = try node.ints("dilations")
        pads = try node.ints("pads")
        let raw = try node.string("auto_pad", default: "NOTSET")
        guard let mode = AutoPad(rawValue: raw.isEmpty ? "NOTSET" : raw) else {
            throw OperatorError("unknown auto_pad '\(raw)' (expected NOTSET, SAME_UPPER, SAME_LOWER or VALID)")
        }
        autoPad = mode
        if let k = kernelShape, k.contains(where: { $0 < 1 }) { throw OperatorError("kernel_shape \(k) must be positive") }
        if let s = strides, s.contains(where: { $0 < 1 }) { throw OperatorError("strides \(s) must be positive") }
        if let d = dilations, d.contains(where: { $0 < 1 }) { throw OperatorError("dilations \(d) must be positive") }
        if let p = pads, p.contains(where: { $0 < 0 }) { throw OperatorError("pads \(p) must be non-negative") }
    }

    /// Resolves the window for `spatial` (the input's spatial extents, 1 or 2 of them) and a
    /// kernel of extents `kernel` (from the filter or `kernel_shape`).
    func resolve(spatial: [Int], kernel: [Int]) throws -> Window {
        let r = spatial.count
        guard r == 1 || r == 2 else {
            throw OperatorError("only 1-D and 2-D windows are supported (input has \(r) spatial axes)")
        }
        guard kernel.count == r else {
            throw OperatorError("kernel has \(kernel.count) axes for \(r) spatial axes")
        }
        if let k = kernelShape, k != kernel {
            throw OperatorError("kernel_shape \(k) does not match the kernel \(kernel)")
        }
        let s = strides ?? Array(repeating: 1, count: r)
        let d = dilations ?? Array(repeating: 1, count: r)
        guard s.count == r else { throw OperatorError("strides \(s) must have \(r) values") }
        guard d.count == r else { throw OperatorError("dilations \(d) must have \(r) values") }
        var begin = Array(repeating: 0, count: r), end = Array(repeating: 0, count: r)
        switch autoPad {
        case .notSet:
            if let p = pads {
                guard p.count == 2 * r else { throw OperatorError("pads \(p) must have \(2 * r) values") }
                begin = Array(p[0..<r])
                end = Array(p[r..<(2 * r)])
            }
        case .valid:
            break
        case .sameUpper, .sameLower:
            for i in 0..<r {
                let out = (spatial[i] + s[i] - 1) / s[i]
                let total = max(0, (out - 1) * s[i] + (kernel[i] - 1) * d[i] + 1 - spatial[i])
                let small = total / 2, large = total - small
                (begin[i], end[i]) = autoPad == .sameUpper ? (small, large) : (large, small)
            }
        }
        if r == 1 {
            return Window(kernel: (1, kernel[0]), strides: (1, s[0]), dilations: (1, d[0]),
                          padding: Padding2D(top: 0, left: begin[0], bottom: 0, right: end[0]))
        }
        return Window(kernel: (kernel[0], kernel[1]), strides: (s[0], s[1]), dilations: (d[0], d[1]),
                      padding: Padding2D(top: begin[0], left: begin[1], bottom: end[0], right: end[1]))
    }
}

/// Views a rank-3 `[N, C, L]` tensor as `[N, C, 1, L]` (rank-4 tensors are returned unchanged).
func asImageBatch(_ t: Tensor) -> Tensor {
    t.rank == 3 ? t.reshaped(to: [t.shape[0], t.shape[1], 1, t.shape[2]]) : t
}

/// Restores a rank-4 result to the rank of the original input (`[N, C, 1, L]` → `[N, C, L]`).
func restoringRank(_ t: Tensor, rank: Int) -> Tensor {
    rank == 3 ? t.reshaped(to: [t.shape[0], t.shape[1], t.shape[3]]) : t
}

/// Validates a Float32 `[N, C, spatial...]` input with one or two spatial axes.
func windowedInput(_ info: ValueInfo, _ what: String) throws -> ValueInfo {
    guard info.dtype == .float32 else { throw OperatorError("\(what) must be float32, got \(info.dtype)") }
    guard info.shape.count == 3 || info.shape.count == 4 else {
        throw OperatorError("\(what) must be [N, C, L] or [N, C, H, W], got shape \(info.shape) (3-D windows are not supported)")
    }
    return info
}
