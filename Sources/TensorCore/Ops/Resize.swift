// Resizing (ONNX `Resize`, https://onnx.ai/onnx/operators/onnx__Resize.html): nearest and linear
// interpolation with the ONNX coordinate transformation modes, plus the NCHW bilinear resize that
// CAM post-processing uses (PyTorch `F.interpolate(mode="bilinear")`, OpenCV `INTER_LINEAR`).
//
// Coordinates are computed in Float like ONNX Runtime's CPU kernels, so outputs match it bit for
// bit in the index choices. Linear interpolation is applied one axis at a time (separably); that is
// the same multilinear interpolation as ONNX Runtime's 2-D kernel up to rounding.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How an output coordinate maps to an input coordinate (ONNX `coordinate_transformation_mode`).
public enum ResizeCoordinateTransformation: String, Sendable, CaseIterable {
    /// `(x + 0.5) / scale − 0.5` (ONNX default; PyTorch `align_corners=False`, OpenCV).
    case halfPixel = "half_pixel"
    /// Like ``halfPixel`` but 0 when the output extent is 1 (PyTorch's export of `align_corners=False`).
    case pytorchHalfPixel = "pytorch_half_pixel"
    /// `x · (in − 1) / (out − 1)` (PyTorch `align_corners=True`).
    case alignCorners = "align_corners"
    /// `x / scale`.
    case asymmetric
    /// Half-pixel centred on the middle of the input (ONNX opset 19).
    case halfPixelSymmetric = "half_pixel_symmetric"
}

/// How nearest-neighbour resizing rounds an input coordinate (ONNX `nearest_mode`).
public enum NearestRounding: String, Sendable, CaseIterable {
    /// Round to nearest, halves down (ONNX default).
    case roundPreferFloor = "round_prefer_floor"
    /// Round to nearest, halves up.
    case roundPreferCeil = "round_prefer_ceil"
    /// Round down (PyTorch `mode="nearest"` exports this with ``ResizeCoordinateTransformation/asymmetric``).
    case floor
    /// Round up.
    case ceil
}

/// The interpolation of ``resized(_:toShape:scales:mode:coordinateTransformation:)``.
public enum ResizeMode: Sendable, Equatable {
    /// Nearest neighbour with the given rounding (any dtype).
    case nearest(NearestRounding)
    /// Multilinear interpolation over every resized axis (Float32 only).
    case linear
}

/// The input coordinate of output index `x` along one axis (ONNX Runtime's float arithmetic).
@inline(__always)
private func sourceCoordinate(_ x: Int, scale: Float, inCount: Int, outCount: Int,
                              _ mode: ResizeCoordinateTransformation) -> Float {
    let xr = Float(x)
    switch mode {
    case .halfPixel:
        return (xr + 0.5) / scale - 0.5
    case .pytorchHalfPixel:
        return outCount > 1 ? (xr + 0.5) / scale - 0.5 : 0
    case .alignCorners:
        return outCount == 1 ? 0 : xr * Float(inCount - 1) / Float(outCount - 1)
    case .asymmetric:
        return xr / scale
    case .halfPixelSymmetric:
        let adjustment = Float(outCount) / (scale * Float(inCount))
        let center = Float(inCount) / 2
        let offset = center * (1 - adjustment)
        return offset + (xr + 0.5) / scale - 0.5
    }
}

/// The nearest-neighbour source index of each output index along one axis.
private func nearestMap(inCount n: Int, outCount m: Int, scale: Float, _ ct: ResizeCoordinateTransformation,
                        _ rounding: NearestRounding) -> [Int] {
    (0..<m).map { i in
        let x = sourceCoordinate(i, scale: scale, inCount: n, outCount: m, ct)
        let r: Float
        switch rounding {
        case .roundPreferFloor: r = x == Float(Int(x)) + 0.5 ? x.rounded(.down) : x.rounded(.toNearestOrAwayFromZero)
        case .roundPreferCeil: r = x.rounded(.toNearestOrAwayFromZero)
        case .floor: r = x.rounded(.down)
        case .ceil: r = x.rounded(.up)
        }
        guard r.isFinite else { return 0 }
        return min(max(Int(r), 0), n - 1)
    }
}

/// One axis of linear interpolation as a small filter: output `i` is
/// `Σ_t weight[i·taps + t] · input[index[i·taps + t]]` along `axis`.
private struct LinearAxis {
    var axis: Int
    var inCount: Int
    var outCount: Int
    var taps: Int
    var index: [Int]
    var weight: [Float]

    var isIdentity: Bool {
        guard outCount == inCount else { return false }
        for i in 0..<outCount {
            for t in 0..<taps {
                let w = weight[i * taps + t], j = index[i * taps + t]
                if w != 0 && !(j == i && w == 1) { return false }
            }
        }
        return true
    }
}

/// Two-tap linear interpolation with the input coordinate clamped to `[0, n − 1]` (ONNX Runtime,
/// PyTorch, OpenCV).
private func linearAxis(_ axis: Int, inCount n: Int, outCount m: Int, scale: Float,
                        _ ct: ResizeCoordinateTransformation) -> LinearAxis {
    var index = [Int](repeating: 0, count: 2 * m), weight = [Float](repeating: 0, count: 2 * m)
    for i in 0..<m {
        var x = sourceCoordinate(i, scale: scale, inCount: n, outCount: m, ct)
        x = max(0, min(x, Float(n - 1)))
        if !x.isFinite { x = 0 }
        let a = min(Int(x), n - 1)
        let b = min(a + 1, n - 1)
        let w = b == a ? 0 : x - Float(a)
        index[2 * i] = a
        index[2 * i + 1] = b
        weight[2 * i] = 1 - w
        weight[2 * i + 1] = w
    }
    return LinearAxis(axis: axis, inCount: n, outCount: m, taps: 2, index: index, weight: weight)
}

/// Antialiased linear interpolation (ONNX `antialias = 1`, as ONNX Runtime and Pillow compute it):
/// a triangle filter widened by the downscaling factor, centred on the transformed coordinate;
/// taps outside the input fold onto the edge element, weights are normalised to sum to 1.
private func antialiasedLinearAxis(_ axis: Int, inCount n: Int, outCount m: Int, scale rscale: Float,
                                   _ ct: ResizeCoordinateTransformation) -> LinearAxis {
    let scale = 1 / rscale
    let support: Float = scale >= 1 ? scale : 1
    let invScale: Float = scale >= 1 ? 1 / scale : 1
    let taps = Int(support.rounded(.up)) * 2 + 1
    var index = [Int](repeating: 0, count: taps * m), weight = [Float](repeating: 0, count: taps * m)
    for i in 0..<m {
        let center = 0.5 + (scale == 1 ? Float(i) : sourceCoordinate(i, scale: rscale, inCount: n, outCount: m, ct))
        let xmin = Int((center - support + 0.5).rounded(.down))
        let xmax = Int((center + support + 0.5).rounded(.down))
        var total: Float = 0
        var t = 0
        for x in xmin..<max(xmin, xmax) where t < taps {
            let w = max(0, 1 - abs((Float(x) - center + 0.5) * invScale))
            index[i * taps + t] = min(max(x, 0), n - 1)
            weight[i * taps + t] = w
            total += w
            t += 1
        }
        let inv: Float = total == 0 ? 1 : 1 / total
        for k in 0..<taps { weight[i * taps + k] *= inv }
    }
    return LinearAxis(axis: axis, inCount: n, outCount: m, taps: taps, index: index, weight: weight)
}

/// Applies one linear axis to a Float32 tensor (forward).
private func applyLinear(_ x: Tensor, _ ax: LinearAxis) -> Tensor {
    let n = ax.inCount, m = ax.outCount, taps = ax.taps
    var outShape = x.shape
    outShape[ax.axis] = m
    var out = Tensor(uninitializedShape: outShape)
    let outer = x.shape[..<ax.axis].reduce(1, *), inner = x.shape[(ax.axis + 1)...].reduce(1, *)
    if out.count == 0 { return out }
    x.withUnsafeBufferPointer { xb in
        out.withUnsafeMutableBufferPointer { ob in
            ax.index.withUnsafeBufferPointer { ib in
                ax.weight.withUnsafeBufferPointer { wb in
                    let s = UncheckedSendable(xb.baseAddress!), d = UncheckedSendable(ob.baseAddress!)
                    let pi = UncheckedSendable(ib.baseAddress!), pw = UncheckedSendable(wb.baseAddress!)
                    parallelFor(outer, minimumChunk: max(1, (1 << 14) / max(1, m * inner * taps))) { range in
                        let idx = pi.value, w = pw.value
                        for o in range {
                            let sp = s.value + o * n * inner, dp = d.value + o * m * inner
                            if inner == 1 {
                                if taps == 2 {
                                    for i in 0..<m {
                                        dp[i] = w[2 * i] * sp[idx[2 * i]] + w[2 * i + 1] * sp[idx[2 * i + 1]]
                                    }
                                } else {
                                    for i in 0..<m {
                                        var acc: Float = 0
                                        for t in 0..<taps { acc += w[i * taps + t] * sp[idx[i * taps + t]] }
                                        dp[i] = acc
                                    }
                                }
                            } else {
                                for i in 0..<m {
                                    let row = dp + i * inner
                                    let w0 = w[i * taps], a = sp + idx[i * taps] * inner
                                    for k in 0..<inner { row[k] = w0 * a[k] }
                                    for t in 1..<taps {
                                        let wt = w[i * taps + t]
                                        if wt == 0 { continue }
                                        let b = sp + idx[i * taps + t] * inner
                                        for k in 0..<inner { row[k] += wt * b[k] }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    return out
}

/// The adjoint of ``applyLinear(_:_:)``: from a gradient of the pass's output to its input.
private func applyLinearAdjoint(_ g: Tensor, _ ax: LinearAxis) -> Tensor {
    let n = ax.inCount, m = ax.outCount, taps = ax.taps
    var inShape = g.shape
    inShape[ax.axis] = n
    var out = Tensor(zeros: inShape)
    let outer = g.shape[..<ax.axis].reduce(1, *), inner = g.shape[(ax.axis + 1)...].reduce(1, *)
    if g.count == 0 || out.count == 0 { return out }
    g.withUnsafeBufferPointer { gb in
        out.withUnsafeMutableBufferPointer { ob in
            ax.index.withUnsafeBufferPointer { ib in
                ax.weight.withUnsafeBufferPointer { wb in
                    let s = UncheckedSendable(gb.baseAddress!), d = UncheckedSendable(ob.baseAddress!)
                    let pi = UncheckedSendable(ib.baseAddress!), pw = UncheckedSendable(wb.baseAddress!)
                    parallelFor(outer, minimumChunk: max(1, (1 << 14) / max(1, m * inner * taps))) { range in
                        let idx = pi.value, w = pw.value
                        for o in range {
                            let gp = s.value + o * m * inner, dp = d.value + o * n * inner
                            for i in 0..<m {
                                let row = gp + i * inner
                                for t in 0..<taps {
                                    let wt = w[i * taps + t]
                                    if wt == 0 { continue }
                                    let a = dp + idx[i * taps + t] * inner
                                    for k in 0..<inner { a[k] += wt * row[k] }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    return out
}

/// The linear passes of a resize, in the order they run (shrinking axes first, to keep the
/// intermediate small), without identity axes.
private func linearPlan(inputShape: [Int], outputShape: [Int], scales: [Float],
                        _ ct: ResizeCoordinateTransformation, antialias: Bool) -> [LinearAxis] {
    let axes = (0..<inputShape.count).compactMap { d -> LinearAxis? in
        if inputShape[d] == outputShape[d] && scales[d] == 1 { return nil }
        let ax = antialias
            ? antialiasedLinearAxis(d, inCount: inputShape[d], outCount: outputShape[d], scale: scales[d], ct)
            : linearAxis(d, inCount: inputShape[d], outCount: outputShape[d], scale: scales[d], ct)
        return ax.isIdentity ? nil : ax
    }
    return axes.sorted {
        Double($0.outCount) / Double(max(1, $0.inCount)) < Double($1.outCount) / Double(max(1, $1.inCount))
    }
}

/// Resizes a tensor to `outputShape` (ONNX `Resize` without a region of interest).
///
/// - Parameters:
///   - x: the input; Float32 for `.linear`, any dtype for `.nearest`.
///   - outputShape: the output extents, one per dim.
///   - scales: the per-dim scale the coordinate transformation divides by — the `scales` input
///     when the ONNX node gives scales, else `output / input` (ONNX semantics).
///   - mode: nearest (with rounding) or linear.
///   - coordinateTransformation: how output coordinates map to input coordinates; linear
///     interpolation clamps the input coordinate to `[0, n − 1]`, nearest clamps the index.
///   - antialias: for `.linear`, widen the triangle filter by the downscaling factor (ONNX
///     `antialias = 1`, Pillow's and ONNX Runtime's antialiased bilinear); ignored for nearest.
/// - Precondition: matching ranks, positive scales; a dim of extent 0 only resizes to 0.
public func resized(_ x: Tensor, toShape outputShape: [Int], scales: [Float], mode: ResizeMode,
                    coordinateTransformation ct: ResizeCoordinateTransformation, antialias: Bool = false) -> Tensor {
    precondition(outputShape.count == x.rank && scales.count == x.rank, "resize to \(outputShape) from rank \(x.rank)")
    precondition((0..<x.rank).allSatisfy { x.shape[$0] > 0 || outputShape[$0] == 0 }, "resizing an empty dim of \(x.shape)")
    switch mode {
    case .nearest(let rounding):
        if outputShape == x.shape && scales.allSatisfy({ $0 == 1 }) { return x }
        let maps = (0..<x.rank).map {
            nearestMap(inCount: x.shape[$0], outCount: outputShape[$0], scale: scales[$0], ct, rounding)
        }
        return x.gatheredByAxisMaps(maps)
    case .linear:
        precondition(x.dtype == .float32, "linear resize of a \(x.dtype) tensor")
        if outputShape.contains(0) { return Tensor(zeros: outputShape) }
        var y = x
        for ax in linearPlan(inputShape: x.shape, outputShape: outputShape, scales: scales, ct, antialias: antialias) {
            y = applyLinear(y, ax)
        }
        return y
    }
}

/// Pullback of ``resized(_:toShape:scales:mode:coordinateTransformation:)`` for Float32: the
/// adjoint of the interpolation (each input element receives the output gradient times the weight
/// it contributed with; nearest sums the gradient of every output that copied it).
public func resizePullback(_ gradient: Tensor, inputShape: [Int], scales: [Float], mode: ResizeMode,
                           coordinateTransformation ct: ResizeCoordinateTransformation, antialias: Bool = false) -> Tensor {
    let outputShape = gradient.shape
    precondition(outputShape.count == inputShape.count && scales.count == inputShape.count)
    switch mode {
    case .nearest(let rounding):
        if outputShape == inputShape && scales.allSatisfy({ $0 == 1 }) { return gradient }
        let maps = (0..<inputShape.count).map {
            nearestMap(inCount: inputShape[$0], outCount: outputShape[$0], scale: scales[$0], ct, rounding)
        }
        var out = Tensor(zeros: inputShape)
        gradient.withUnsafeBufferPointer { g in
            out.withUnsafeMutableBufferPointer { o in
                guard let gp = g.baseAddress, let op = o.baseAddress, !g.isEmpty else { return }
                scatterAddByAxisMaps(gp, inShape: inputShape, maps: maps, op)
            }
        }
        return out
    case .linear:
        if outputShape.contains(0) || inputShape.contains(0) { return Tensor(zeros: inputShape) }
        var g = gradient
        for ax in linearPlan(inputShape: inputShape, outputShape: outputShape, scales: scales, ct,
                             antialias: antialias).reversed() {
            g = applyLinearAdjoint(g, ax)
        }
        return g
    }
}

/// Bilinear resize of an NCHW Float32 tensor to `height × width`.
///
/// With `alignCorners == false` this is half-pixel sampling with clamping at the borders, the
/// same as PyTorch's `F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)`
/// and OpenCV's `cv2.resize(..., interpolation=INTER_LINEAR)` when upsampling (neither
/// antialiases); with `alignCorners == true` it matches `align_corners=True`
/// (`nn.UpsamplingBilinear2d`, used by ScoreCAM).
/// - Precondition: `x` is rank 4, Float32, with non-empty spatial dims; `height, width > 0`.
public func resizedBilinear(_ x: Tensor, height: Int, width: Int, alignCorners: Bool) -> Tensor {
    precondition(x.rank == 4 && x.dtype == .float32, "resizedBilinear expects an NCHW Float32 tensor, got \(x.shape)")
    precondition(height > 0 && width > 0 && x.shape[2] > 0 && x.shape[3] > 0, "resizedBilinear of \(x.shape) to \(height)×\(width)")
    let scales: [Float] = [1, 1, Float(height) / Float(x.shape[2]), Float(width) / Float(x.shape[3])]
    return resized(x, toShape: [x.shape[0], x.shape[1], height, width], scales: scales, mode: .linear,
                   coordinateTransformation: alignCorners ? .alignCorners : .halfPixel)
}

/// Pullback of ``resizedBilinear(_:height:width:alignCorners:)``.
public func resizedBilinearPullback(_ gradient: Tensor, inputShape: [Int], alignCorners: Bool) -> Tensor {
    precondition(inputShape.count == 4 && gradient.rank == 4)
    let scales: [Float] = [1, 1, Float(gradient.shape[2]) / Float(inputShape[2]),
                           Float(gradient.shape[3]) / Float(inputShape[3])]
    return resizePullback(gradient, inputShape: inputShape, scales: scales, mode: .linear,
                          coordinateTransformation: alignCorners ? .alignCorners : .halfPixel)
}
