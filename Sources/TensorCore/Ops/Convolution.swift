import CKernels
import Foundation
import Synchronization
#if canImport(CDNNL)
import CDNNL
#endif

// 2-D convolution (cross-correlation, as in ONNX Conv and PyTorch `conv2d`) over NCHW tensors with
// OIHW filters, and its pullbacks.
//
// How it is computed (see `docs/performance.md` for measurements):
// - depthwise (`groups == C`, one input channel per group): a direct SIMD kernel in CKernels
//   (AVX-512 / AVX2+FMA / portable, chosen at run time), specialised for 3×3 and 5×5;
// - 1×1, stride 1, no padding: one GEMM per image and group, `W (O×C) · X (C×HW)`, no im2col;
// - everything else: im2col of a tile of output positions (so that the column buffer stays in
//   cache) followed by a GEMM into the output tile.
// Work items (image, group, output-channel block, position tile) are spread over
// ``ComputeSettings/threadCount`` threads with ``parallelFor``; each item calls a single-threaded
// BLAS call (see ``BLAS``: OpenBLAS never runs threads of its own).
// Bias and an optional activation are fused into the write of each output tile.
//
// A convolution whose filter is known in advance (a model's plan) can instead be prepared once
// with ``PreparedConvolution``: on Linux it runs oneDNN (Debian's libdnnl, JIT kernels on a blocked
// nChw16c layout, with NCHW ⇄ blocked reorders around each call) for k×k and small depthwise
// convolutions, where it measured 1.5–7× faster than the kernels above (Benchmarks/conv_layers;
// see ``PreparedConvolution``). Its backward-data primitives compute the input gradients of k×k
// convolutions and of strided / small-plane depthwise ones (``PreparedConvolution/inputGradient(_:)``,
// used by the graph's fused convolutions). The kernels above do the rest, are the fallback and
// compute every other pullback: the depthwise input gradient in gather form (the forward plane
// kernel on the rotated filter at stride 1, polyphase otherwise), im2col inputs by column tiles.

// MARK: - Parameters

/// Explicit zero padding of the two spatial dimensions (H, W) of an NCHW tensor; may be
/// asymmetric (ONNX `pads = [top, left, bottom, right]`).
public struct Padding2D: Sendable, Hashable {
    /// Rows of zeros added above the input.
    public var top: Int
    /// Columns of zeros added left of the input.
    public var left: Int
    /// Rows of zeros added below the input.
    public var bottom: Int
    /// Columns of zeros added right of the input.
    public var right: Int

    /// Creates a padding. - Precondition: every amount is non-negative.
    public init(top: Int, left: Int, bottom: Int, right: Int) {
        precondition(top >= 0 && left >= 0 && bottom >= 0 && right >= 0, "negative padding")
        self.top = top
        self.left = left
        self.bottom = bottom
        self.right = right
    }

    /// No padding.
    public static let zero = Padding2D(top: 0, left: 0, bottom: 0, right: 0)

    /// The same padding on both sides: `height` rows above and below, `width` columns left and right.
    public static func symmetric(height: Int, width: Int) -> Padding2D {
        Padding2D(top: height, left: width, bottom: height, right: width)
    }

    /// The padding of ONNX `auto_pad = SAME_UPPER` / `SAME_LOWER` (TensorFlow "SAME"): the output
    /// has `ceil(input / stride)` positions along each axis; the total padding
    /// `max(0, (out − 1)·stride + (kernel − 1)·dilation + 1 − input)` is split in half, the odd
    /// element going to the end (`lower == false`, SAME_UPPER) or to the beginning (SAME_LOWER).
    public static func same(
        inputSize: (height: Int, width: Int), kernelSize: (height: Int, width: Int),
        strides: (Int, Int) = (1, 1), dilations: (Int, Int) = (1, 1), lower: Bool = false
    ) -> Padding2D {
        func split(_ input: Int, _ k: Int, _ s: Int, _ d: Int) -> (Int, Int) {
            let out = (input + s - 1) / s
            let total = max(0, (out - 1) * s + (k - 1) * d + 1 - input)
            let small = total / 2, large = total - small
            return lower ? (large, small) : (small, large)
        }
        let (t, b) = split(inputSize.height, kernelSize.height, strides.0, dilations.0)
        let (l, r) = split(inputSize.width, kernelSize.width, strides.1, dilations.1)
        return Padding2D(top: t, left: l, bottom: b, right: r)
    }
}

/// An elementwise activation fused into the output write of a convolution (a hook for graph-level
/// fusion of `Conv → Relu` / `Conv → Clip`; the ONNX `Conv` operator itself uses `.none`).
public enum FusedActivation: Sendable, Hashable {
    /// The identity.
    case none
    /// `max(x, 0)`.
    case relu
    /// `min(max(x, min), max)` (ReLU6 is `.clip(min: 0, max: 6)`).
    case clip(min: Float, max: Float)

    /// The C kernels' encoding: (clamp?, lo, hi).
    var clampParameters: (Int32, Float, Float) {
        switch self {
        case .none: return (0, 0, 0)
        case .relu: return (1, 0, .infinity)
        case .clip(let lo, let hi): return (1, lo, hi)
        }
    }
}

/// The number of output positions along one axis of a convolution or pooling window:
/// `floor((input + padBegin + padEnd − ((kernel − 1)·dilation + 1)) / stride) + 1`, or 0 when the
/// padded input is smaller than the dilated kernel.
public func convolutionOutputSize(input: Int, kernel: Int, stride: Int, dilation: Int,
                                  padBegin: Int, padEnd: Int) -> Int {
    let span = input + padBegin + padEnd - ((kernel - 1) * dilation + 1)
    return span < 0 ? 0 : span / stride + 1
}

// MARK: - Geometry

/// Everything a convolution kernel needs to know about the shapes (internal).
struct Conv2DGeometry {
    let n, c, h, w: Int
    let o, kh, kw: Int
    let sh, sw, dh, dw: Int
    let padding: Padding2D
    let groups: Int
    let oh, ow: Int

    var cg: Int { c / groups }
    var og: Int { o / groups }
    /// Rows of the im2col matrix of one group.
    var k: Int { cg * kh * kw }
    /// Output positions per plane.
    var p: Int { oh * ow }
    var isDepthwise: Bool { groups == c && groups > 1 && o % c == 0 }
    var isPointwise: Bool {
        kh == 1 && kw == 1 && sh == 1 && sw == 1 && padding == .zero
    }

    init(input: [Int], filter: [Int], strides: (Int, Int), padding: Padding2D, dilations: (Int, Int),
         groups: Int) {
        precondition(input.count == 4, "conv2D input must be NCHW, got shape \(input)")
        precondition(filter.count == 4, "conv2D filter must be OIHW, got shape \(filter)")
        precondition(groups >= 1 && input[1] % groups == 0 && filter[0] % groups == 0,
                     "groups \(groups) must divide input channels \(input[1]) and output channels \(filter[0])")
        precondition(filter[1] * groups == input[1],
                     "filter \(filter) expects \(filter[1] * groups) input channels, input has \(input[1])")
        precondition(strides.0 >= 1 && strides.1 >= 1 && dilations.0 >= 1 && dilations.1 >= 1,
                     "strides and dilations must be positive")
        n = input[0]; c = input[1]; h = input[2]; w = input[3]
        o = filter[0]; kh = filter[2]; kw = filter[3]
        sh = strides.0; sw = strides.1; dh = dilations.0; dw = dilations.1
        self.padding = padding
        self.groups = groups
        oh = convolutionOutputSize(input: h, kernel: kh, stride: sh, dilation: dh,
                                   padBegin: padding.top, padEnd: padding.bottom)
        ow = convolutionOutputSize(input: w, kernel: kw, stride: sw, dilation: dw,
                                   padBegin: padding.left, padEnd: padding.right)
        precondition(kh >= 1 && kw >= 1, "empty kernel \(filter)")
    }

    /// The C kernels' description of one group (`C` = channels per group for im2col, or all
    /// channels for the depthwise kernel).
    func cGeometry(channels: Int) -> ck_conv_geom {
        ck_conv_geom(C: Int32(channels), H: Int32(h), W: Int32(w), KH: Int32(kh), KW: Int32(kw),
                     SH: Int32(sh), SW: Int32(sw), DH: Int32(dh), DW: Int32(dw),
                     PT: Int32(padding.top), PL: Int32(padding.left), OH: Int32(oh), OW: Int32(ow))
    }
}

// MARK: - BLAS threading

/// Tuning knobs of the convolution kernels (internal; tests and benchmarks change them).
enum ConvolutionTuning {
    /// The most Float32 elements of one im2col tile (256 K floats = 1 MiB).
    nonisolated(unsafe) static var columnTileElements = 1 << 18
    /// When true, a ``PreparedConvolution`` runs as one oneDNN primitive on OpenMP threads instead
    /// of parts on CAMKit's threads (for comparison; default from `CAMKIT_DNNL_OPENMP=1`).
    nonisolated(unsafe) static var dnnlUsesOpenMP = ProcessInfo.processInfo.environment["CAMKIT_DNNL_OPENMP"] == "1"
    /// When true, ``PreparedConvolution`` is made for every shape oneDNN accepts and uses oneDNN
    /// in both directions, not only where ``PreparedConvolution/prefersDNNL(_:)`` and
    /// ``PreparedConvolution/prefersDNNLBackward(_:)`` say it is faster (for benchmarks).
    nonisolated(unsafe) static var dnnlBackwardEverywhere = false
    /// When false, ``PreparedConvolution/inputGradient(_:)`` always returns `nil` (CAMKit's
    /// kernels compute every input gradient; for comparison; default from `CAMKIT_DNNL_BACKWARD=0`).
    nonisolated(unsafe) static var dnnlBackward = ProcessInfo.processInfo.environment["CAMKIT_DNNL_BACKWARD"] != "0"
    /// The instruction set of the C kernels: 3 = AVX-512F, 2 = AVX2+FMA, 0 = portable (lowered to
    /// what the CPU supports); -1 = detect automatically.
    static var kernelISA: Int {
        get { Int(ck_isa_level()) }
        set { ck_set_isa_level(Int32(newValue)) }
    }
}

/// Splits `items` work items over our threads (each item calls the BLAS, which then runs
/// single-threaded: see ``BLAS``).
private func runGEMMItems(_ items: Int, _ body: (Range<Int>) -> Void) {
    parallelFor(items, body)
}

// MARK: - Forward

/// 2-D convolution (cross-correlation) of an NCHW batch with an OIHW filter bank.
///
/// `y[n, o, oy, ox] = bias[o] + Σ_{c, ki, kj} x[n, g·C/G + c, oy·sh + ki·dh − top, ox·sw + kj·dw − left]
/// · filter[o, c, ki, kj]` with `g = o / (O/G)` the group of `o`; taps in the padding read zero.
///
/// - Parameters:
///   - input: `[N, C, H, W]`, Float32.
///   - filter: `[O, C/groups, KH, KW]`.
///   - bias: `[O]`, or `nil`.
///   - strides: (vertical, horizontal) steps between windows.
///   - padding: explicit zero padding (resolve ONNX `auto_pad` with ``Padding2D/same(inputSize:kernelSize:strides:dilations:lower:)``).
///   - dilations: (vertical, horizontal) spacing of the kernel taps.
///   - groups: channel groups; `groups == C` with `O` a multiple of `C` is a depthwise convolution.
///   - activation: applied to each output element after the bias (fusion hook).
/// - Returns: `[N, O, OH, OW]` with `OH = ⌊(H + top + bottom − (KH − 1)·dh − 1) / sh⌋ + 1` (same for W).
/// - Precondition: ranks, channel counts and groups agree; the padded input is at least as large as
///   the dilated kernel; `bias` has `O` elements.
public func conv2D(
    _ input: Tensor, filter: Tensor, bias: Tensor? = nil, strides: (Int, Int) = (1, 1),
    padding: Padding2D = .zero, dilations: (Int, Int) = (1, 1), groups: Int = 1,
    activation: FusedActivation = .none
) -> Tensor {
    let geo = Conv2DGeometry(input: input.shape, filter: filter.shape, strides: strides, padding: padding,
                             dilations: dilations, groups: groups)
    precondition(geo.oh > 0 && geo.ow > 0, "conv2D: kernel larger than the padded input \(input.shape)")
    if let bias { precondition(bias.count == geo.o, "conv2D: bias has \(bias.count) elements, expected \(geo.o)") }
    var output = Tensor(uninitializedShape: [geo.n, geo.o, geo.oh, geo.ow])
    if output.count == 0 { return output }
    if geo.k == 0 {
        // No input channels: every output is the bias (through the activation).
        output.withUnsafeMutableBufferPointer { y in
            y.update(repeating: 0)
            withOptionalPointer(bias) { b in
                let (clamp, lo, hi) = activation.clampParameters
                for i in 0..<(geo.n * geo.o) {
                    ck_bias_activation(y.baseAddress! + i * geo.p, 1, Int32(geo.p), geo.p,
                                       b.map { $0 + i % geo.o }, clamp, lo, hi)
                }
            }
        }
        return output
    }
    input.withUnsafeBufferPointer { x in
        filter.withUnsafeBufferPointer { f in
            withOptionalPointer(bias) { b in
                output.withUnsafeMutableBufferPointer { y in
                    if geo.isDepthwise {
                        depthwiseForward(geo, x.baseAddress!, f.baseAddress!, b, y.baseAddress!, activation)
                    } else {
                        gemmForward(geo, x.baseAddress!, f.baseAddress!, b, y.baseAddress!, activation)
                    }
                }
            }
        }
    }
    return output
}

/// Calls `body` with the Float32 elements of `tensor`, or with `nil`.
private func withOptionalPointer<R>(_ tensor: Tensor?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let tensor else { return body(nil) }
    return tensor.withUnsafeBufferPointer { body($0.baseAddress) }
}

private func depthwiseForward(_ geo: Conv2DGeometry, _ x: UnsafePointer<Float>, _ f: UnsafePointer<Float>,
                              _ b: UnsafePointer<Float>?, _ y: UnsafeMutablePointer<Float>,
                              _ activation: FusedActivation) {
    let multiplier = Int32(geo.o / geo.c)
    let (clamp, lo, hi) = activation.clampParameters
    let planes = geo.n * geo.o
    let perPlane = max(1, geo.p * geo.kh * geo.kw)
    let minimumChunk = max(1, 32_768 / perPlane)
    withUnsafePointer(to: geo.cGeometry(channels: geo.c)) { cg in
        parallelFor(planes, minimumChunk: minimumChunk) { range in
            let status = ck_depthwise_conv2d(x, f, b, y, cg, multiplier, Int32(range.lowerBound),
                                             Int32(range.upperBound), clamp, lo, hi)
            precondition(status == 0, "conv2D: out of memory in the depthwise kernel")
        }
    }
}

/// How the GEMM formulation splits its work.
private struct GEMMPlan {
    /// Output positions per tile, and the number of tiles.
    var tileP: Int
    var pTiles: Int
    /// Output channels per block (within a group), and the number of blocks.
    var tileM: Int
    var mTiles: Int
    var items: Int
}

private func makeGEMMPlan(_ geo: Conv2DGeometry, needsColumns: Bool) -> GEMMPlan {
    let threads = ComputeSettings.threadCount
    let p = geo.p, og = geo.og
    var tileP = p
    if needsColumns {
        tileP = min(p, max(64, ConvolutionTuning.columnTileElements / max(1, geo.k)))
    } else {
        tileP = min(p, max(256, ConvolutionTuning.columnTileElements / max(1, geo.k)))
    }
    var pTiles = (p + tileP - 1) / tileP
    var mTiles = 1
    let base = geo.n * geo.groups
    if threads > 1 {
        if base * pTiles < threads {
            if og >= p {
                // Weight-heavy (late layers): split the output channels, so each thread reads only
                // its share of the filter.
                mTiles = min(max(1, og / 16), (threads + base * pTiles - 1) / (base * pTiles))
            } else {
                pTiles = min(max(1, p / 32), (threads + base - 1) / base)
            }
        }
        // Balance: make the item count a multiple of the thread count when items are few.
        var total = base * pTiles * mTiles
        if total % threads != 0 && total < 8 * threads {
            var candidate = pTiles
            while candidate < pTiles + threads && (base * candidate * mTiles) % threads != 0 { candidate += 1 }
            if (base * candidate * mTiles) % threads == 0 && p / candidate >= 16 { pTiles = candidate }
            total = base * pTiles * mTiles
        }
        tileP = (p + pTiles - 1) / pTiles
        pTiles = (p + tileP - 1) / tileP
    }
    let tileM = (og + mTiles - 1) / mTiles
    mTiles = (og + tileM - 1) / tileM
    return GEMMPlan(tileP: tileP, pTiles: pTiles, tileM: tileM, mTiles: mTiles,
                    items: base * pTiles * mTiles)
}

private func gemmForward(_ geo: Conv2DGeometry, _ x: UnsafePointer<Float>, _ f: UnsafePointer<Float>,
                         _ b: UnsafePointer<Float>?, _ y: UnsafeMutablePointer<Float>,
                         _ activation: FusedActivation) {
    let pointwise = geo.isPointwise
    let plan = makeGEMMPlan(geo, needsColumns: !pointwise)
    let (clamp, lo, hi) = activation.clampParameters
    let hw = geo.h * geo.w, p = geo.p, k = geo.k, og = geo.og
    withUnsafePointer(to: geo.cGeometry(channels: geo.cg)) { cg in
    runGEMMItems(plan.items) { range in
        let column = pointwise ? nil : UnsafeMutablePointer<Float>.allocate(capacity: k * plan.tileP)
        defer { column?.deallocate() }
        for item in range {
            let pt = item % plan.pTiles
            let mt = (item / plan.pTiles) % plan.mTiles
            let ng = item / (plan.pTiles * plan.mTiles)
            let g = ng % geo.groups, n = ng / geo.groups
            let p0 = pt * plan.tileP, p1 = min(p, p0 + plan.tileP)
            let m0 = mt * plan.tileM, m1 = min(og, m0 + plan.tileM)
            let image = x + (n * geo.c + g * geo.cg) * hw
            let bMatrix: UnsafePointer<Float>
            let ldb: Int
            if let column {
                ck_im2col(image, cg, 0, Int32(geo.cg), Int32(p0), Int32(p1), column, p1 - p0)
                bMatrix = UnsafePointer(column)
                ldb = p1 - p0
            } else {
                bMatrix = image + p0
                ldb = hw
            }
            let out = y + (n * geo.o + g * og + m0) * p + p0
            BLAS.sgemm(m: m1 - m0, n: p1 - p0, k: k, a: f + (g * og + m0) * k, lda: k,
                       b: bMatrix, ldb: ldb, c: out, ldc: p)
            if b != nil || clamp != 0 {
                ck_bias_activation(out, Int32(m1 - m0), Int32(p1 - p0), p, b.map { $0 + g * og + m0 },
                                   clamp, lo, hi)
            }
        }
    }
    }
}

// MARK: - Pullbacks

/// The gradients of ``conv2D(_:filter:bias:strides:padding:dilations:groups:activation:)`` (without
/// activation) with respect to its input, filter and bias, given the gradient of the output.
///
/// - Parameters:
///   - input, filter: the forward pass's operands (`input` is only read when the filter gradient is
///     needed; `filter` only for the input gradient).
///   - outputGradient: `[N, O, OH, OW]`.
///   - strides, padding, dilations, groups: as in the forward pass.
///   - needInput, needFilter, needBias: which gradients to compute; the others are `nil`.
/// - Returns: `input` `[N, C, H, W]`, `filter` `[O, C/groups, KH, KW]`, `bias` `[O]`.
public func conv2DPullback(
    _ input: Tensor, filter: Tensor, outputGradient: Tensor, strides: (Int, Int) = (1, 1),
    padding: Padding2D = .zero, dilations: (Int, Int) = (1, 1), groups: Int = 1,
    needInput: Bool = true, needFilter: Bool = true, needBias: Bool = true
) -> (input: Tensor?, filter: Tensor?, bias: Tensor?) {
    let geo = Conv2DGeometry(input: input.shape, filter: filter.shape, strides: strides, padding: padding,
                             dilations: dilations, groups: groups)
    precondition(outputGradient.shape == [geo.n, geo.o, geo.oh, geo.ow],
                 "conv2DPullback: output gradient \(outputGradient.shape), expected \([geo.n, geo.o, geo.oh, geo.ow])")
    let dx = needInput ? conv2DInputGradient(geo, filter: filter, outputGradient: outputGradient) : nil
    let df = needFilter ? conv2DFilterGradient(geo, input: input, outputGradient: outputGradient) : nil
    let db = needBias ? conv2DBiasGradient(outputGradient) : nil
    return (dx, df, db)
}

/// The bias gradient of a convolution: the output gradient `[N, O, ...]` summed over the batch and
/// every spatial position, `[O]`.
public func conv2DBiasGradient(_ outputGradient: Tensor) -> Tensor {
    precondition(outputGradient.rank >= 2, "conv2DBiasGradient: rank \(outputGradient.rank)")
    let n = outputGradient.shape[0], o = outputGradient.shape[1]
    let p = outputGradient.count / max(1, n * o)
    var db = Tensor(zeros: [o])
    outputGradient.withUnsafeBufferPointer { g in
        db.withUnsafeMutableBufferPointer { d in
            let gp = g.baseAddress, dp = d.baseAddress!
            parallelFor(o, minimumChunk: max(1, 65_536 / max(1, n * p))) { range in
                guard let gp else { return }
                for ch in range {
                    var total: Float = 0
                    for i in 0..<n {
                        let plane = gp + (i * o + ch) * p
                        var s: Float = 0
                        for j in 0..<p { s += plane[j] }
                        total += s
                    }
                    dp[ch] = total
                }
            }
        }
    }
    return db
}

private func conv2DInputGradient(_ geo: Conv2DGeometry, filter: Tensor, outputGradient: Tensor) -> Tensor {
    var dx = Tensor(uninitializedShape: [geo.n, geo.c, geo.h, geo.w])
    if dx.count == 0 { return dx }
    let hw = geo.h * geo.w, p = geo.p, k = geo.k, og = geo.og, cgCount = geo.cg
    if k == 0 || p == 0 {
        return Tensor(zeros: dx.shape)
    }
    filter.withUnsafeBufferPointer { fb in
        outputGradient.withUnsafeBufferPointer { gb in
            dx.withUnsafeMutableBufferPointer { db in
                let f = fb.baseAddress!, dy = gb.baseAddress!, d = db.baseAddress!
                if geo.isDepthwise {
                    let cgeo = GeometryBox(geo.cGeometry(channels: geo.c))
                    let multiplier = Int32(geo.o / geo.c)
                    let minimumChunk = max(1, 32_768 / max(1, p * geo.kh * geo.kw))
                    parallelFor(geo.n * geo.c, minimumChunk: minimumChunk) { range in
                        let status = ck_depthwise_conv2d_backward_input(
                            dy, f, d, cgeo.pointer, multiplier, Int32(range.lowerBound), Int32(range.upperBound))
                        precondition(status == 0, "conv2DPullback: out of memory in the depthwise kernel")
                    }
                    return
                }
                let cgeo = GeometryBox(geo.cGeometry(channels: cgCount))
                let pointwise = geo.isPointwise
                let units = geo.n * geo.groups
                // One unit per (image, group): dcol = W_gᵀ · dY_g, then col2im (overlapping windows
                // make units the finest independent split). The column is made one tile of output
                // positions at a time (as in the forward), so it stays in cache and its buffer is
                // small (a fresh multi-megabyte buffer per call cost page faults).
                let tileP = pointwise ? p : min(p, max(64, ConvolutionTuning.columnTileElements / max(1, k)))
                let perUnit = { (unit: Int, column: UnsafeMutablePointer<Float>?, parallelCol2im: Bool) in
                    let g = unit % geo.groups, n = unit / geo.groups
                    let dyg = dy + (n * geo.o + g * og) * p
                    let dxg = d + (n * geo.c + g * cgCount) * hw
                    let wg = f + g * og * k
                    guard let column else {
                        BLAS.sgemm(transposeA: true, m: k, n: p, k: og, a: wg, lda: k, b: dyg, ldb: p,
                                   c: dxg, ldc: hw)
                        return
                    }
                    let planes = UnsafeMutableBufferPointer(start: dxg, count: cgCount * hw)
                    let chunk = max(1, 16_384 / max(1, tileP * geo.kh * geo.kw))
                    if parallelCol2im {
                        parallelFor(cgCount, minimumChunk: chunk) { r in
                            UnsafeMutableBufferPointer(rebasing: planes[(r.lowerBound * hw)..<(r.upperBound * hw)])
                                .update(repeating: 0)
                        }
                    } else {
                        planes.update(repeating: 0)
                    }
                    for p0 in stride(from: 0, to: p, by: tileP) {
                        let p1 = min(p, p0 + tileP), n = p1 - p0
                        BLAS.sgemm(transposeA: true, m: k, n: n, k: og, a: wg, lda: k, b: dyg + p0, ldb: p,
                                   c: column, ldc: n)
                        if parallelCol2im {
                            parallelFor(cgCount, minimumChunk: chunk) { r in
                                ck_col2im(column + r.lowerBound * geo.kh * geo.kw * n, n, cgeo.pointer,
                                          Int32(r.lowerBound), Int32(r.upperBound), Int32(p0), Int32(p1), dxg)
                            }
                        } else {
                            ck_col2im(column, n, cgeo.pointer, 0, Int32(cgCount), Int32(p0), Int32(p1), dxg)
                        }
                    }
                }
                if units >= ComputeSettings.threadCount && ComputeSettings.threadCount > 1 {
                    runGEMMItems(units) { range in
                        let column = pointwise ? nil : UnsafeMutablePointer<Float>.allocate(capacity: k * tileP)
                        defer { column?.deallocate() }
                        for unit in range { perUnit(unit, column, false) }
                    }
                } else {
                    let column = pointwise ? nil : UnsafeMutablePointer<Float>.allocate(capacity: k * tileP)
                    defer { column?.deallocate() }
                    for unit in 0..<units { perUnit(unit, column, true) }
                }
            }
        }
    }
    return dx
}

private func conv2DFilterGradient(_ geo: Conv2DGeometry, input: Tensor, outputGradient: Tensor) -> Tensor {
    var df = Tensor(zeros: [geo.o, geo.cg, geo.kh, geo.kw])
    let hw = geo.h * geo.w, p = geo.p, k = geo.k, og = geo.og, cgCount = geo.cg
    if df.count == 0 || geo.n == 0 || p == 0 { return df }
    input.withUnsafeBufferPointer { xb in
        outputGradient.withUnsafeBufferPointer { gb in
            df.withUnsafeMutableBufferPointer { fb in
                let x = xb.baseAddress!, dy = gb.baseAddress!, dw = fb.baseAddress!
                if geo.isDepthwise {
                    let cgeo = GeometryBox(geo.cGeometry(channels: geo.c))
                    let multiplier = Int32(geo.o / geo.c)
                    parallelFor(geo.o) { range in
                        let status = ck_depthwise_conv2d_backward_filter(
                            x, dy, dw, cgeo.pointer, multiplier, Int32(geo.n),
                            Int32(range.lowerBound), Int32(range.upperBound))
                        precondition(status == 0, "conv2DPullback: out of memory in the depthwise kernel")
                    }
                    return
                }
                let cgeo = GeometryBox(geo.cGeometry(channels: cgCount))
                let pointwise = geo.isPointwise
                // dW_g (Og×K) = Σ_n dY_g[n] (Og×P) · col_g[n]ᵀ (P×K). Groups are independent.
                let perGroup = { (g: Int, column: UnsafeMutablePointer<Float>?, parallelIm2col: Bool) in
                    for n in 0..<geo.n {
                        let image = x + (n * geo.c + g * cgCount) * hw
                        let dyg = dy + (n * geo.o + g * og) * p
                        let bMatrix: UnsafePointer<Float>
                        let ldb: Int
                        if let column {
                            if parallelIm2col {
                                parallelFor(cgCount, minimumChunk: max(1, 16_384 / max(1, p * geo.kh * geo.kw))) { r in
                                    ck_im2col(image, cgeo.pointer, Int32(r.lowerBound), Int32(r.upperBound), 0, Int32(p),
                                              column + r.lowerBound * geo.kh * geo.kw * p, p)
                                }
                            } else {
                                ck_im2col(image, cgeo.pointer, 0, Int32(cgCount), 0, Int32(p), column, p)
                            }
                            bMatrix = UnsafePointer(column)
                            ldb = p
                        } else {
                            bMatrix = image
                            ldb = hw
                        }
                        BLAS.sgemm(transposeB: true, m: og, n: k, k: p, a: dyg, lda: p, b: bMatrix, ldb: ldb,
                                   beta: n == 0 ? 0 : 1, c: dw + g * og * k, ldc: k)
                    }
                }
                if geo.groups >= ComputeSettings.threadCount && ComputeSettings.threadCount > 1 {
                    runGEMMItems(geo.groups) { range in
                        let column = pointwise ? nil : UnsafeMutablePointer<Float>.allocate(capacity: k * p)
                        defer { column?.deallocate() }
                        for g in range { perGroup(g, column, false) }
                    }
                } else {
                    let column = pointwise ? nil : UnsafeMutablePointer<Float>.allocate(capacity: k * p)
                    defer { column?.deallocate() }
                    for g in 0..<geo.groups { perGroup(g, column, true) }
                }
            }
        }
    }
    return df
}

/// A heap copy of a C geometry whose address can be shared by concurrent kernel calls.
private final class GeometryBox {
    let pointer: UnsafeMutablePointer<ck_conv_geom>
    init(_ value: ck_conv_geom) {
        pointer = .allocate(capacity: 1)
        pointer.initialize(to: value)
    }
    deinit { pointer.deallocate() }
}

// MARK: - Prepared (oneDNN) convolution

/// Which kernels ``PreparedConvolution`` may use.
public enum ConvolutionBackend: String, Sendable {
    /// oneDNN where it is available and supports the shape, CAMKit's own kernels otherwise.
    case automatic
    /// CAMKit's own kernels only (for comparisons and debugging).
    case builtin

    /// The process-wide choice: `.automatic` unless the environment variable
    /// `CAMKIT_CONV_BACKEND=builtin` is set (read once).
    public static let current: ConvolutionBackend = {
        let value = ProcessInfo.processInfo.environment["CAMKIT_CONV_BACKEND"] ?? ""
        return ConvolutionBackend(rawValue: value.lowercased()) ?? .automatic
    }()
}

/// A 2-D convolution prepared once for a fixed input shape, filter and bias (what a specialised
/// plan knows): the oneDNN primitives are made and the filter reordered into their layout at
/// initialisation, so a call only converts the NCHW input and output.
///
/// Computes exactly what ``conv2D(_:filter:bias:strides:padding:dilations:groups:activation:)``
/// computes (up to floating-point summation order).
///
/// Threads: the work is split into ``ComputeSettings/threadCount`` parts (images, else channel
/// groups, else output rows, else output channels), each a single-threaded oneDNN primitive run on
/// CAMKit's own threads, so no OpenMP thread pool spins beside them (Debian's libdnnl uses
/// OpenMP; under load its spinning workers made single convolutions 10–100× slower here). Parts
/// for another thread count are made when the count changes.
public final class PreparedConvolution: Sendable {
    /// The `[N, C, H, W]` shape of the input this convolution was prepared for.
    public let inputShape: [Int]
    /// The `[N, O, OH, OW]` shape of its output.
    public let outputShape: [Int]
    #if canImport(CDNNL)
    private let params: cdnnl_conv_params
    private let filter: Tensor
    private let bias: Tensor?
    private let parts = Mutex<[Int: [DNNLConvolutionHandle]]>([:])
    /// Whether the forward pass uses oneDNN (else only the input gradient does).
    private let usesDNNLForward: Bool
    /// Whether the input gradient is better done by oneDNN (``prefersDNNLBackward(_:)``).
    private let backwardPrefersDNNL: Bool
    /// Backward-data parts by thread count (an empty array: oneDNN refused).
    private let backwardParts = Mutex<[Int: [DNNLConvolutionHandle]]>([:])
    #endif

    /// Prepares the convolution, or returns `nil` when no faster kernel than
    /// ``conv2D(_:filter:bias:strides:padding:dilations:groups:activation:)`` and
    /// ``conv2DPullback(_:filter:outputGradient:strides:padding:dilations:groups:needInput:needFilter:needBias:)``
    /// is available for it (no oneDNN on this platform, ``ConvolutionBackend/current`` is
    /// `.builtin`, or oneDNN refused the shape). A convolution may be prepared for its input
    /// gradient only (``inputGradient(_:)``); its forward call then returns `nil`.
    ///
    /// - Parameters: as ``conv2D(_:filter:bias:strides:padding:dilations:groups:activation:)``,
    ///   with `inputShape` the `[N, C, H, W]` shape of the inputs it will be called with.
    public init?(inputShape: [Int], filter: Tensor, bias: Tensor? = nil, strides: (Int, Int) = (1, 1),
                 padding: Padding2D = .zero, dilations: (Int, Int) = (1, 1), groups: Int = 1,
                 activation: FusedActivation = .none) {
        #if canImport(CDNNL)
        guard ConvolutionBackend.current == .automatic, dnnlAvailable,
              inputShape.count == 4, filter.rank == 4, filter.dtype == .float32,
              groups >= 1, inputShape[1] % groups == 0, filter.shape[0] % groups == 0,
              filter.shape[1] * groups == inputShape[1], bias.map({ $0.count == filter.shape[0] }) ?? true
        else { return nil }
        let geo = Conv2DGeometry(input: inputShape, filter: filter.shape, strides: strides, padding: padding,
                                 dilations: dilations, groups: groups)
        let forward = PreparedConvolution.prefersDNNL(geo) || ConvolutionTuning.dnnlBackwardEverywhere
        let backward = PreparedConvolution.prefersDNNLBackward(geo)
        guard geo.oh > 0, geo.ow > 0, geo.k > 0, geo.n * geo.o * geo.p > 0, forward || backward else { return nil }
        let (clamp, lo, hi) = activation.clampParameters
        let kind: Int32 = clamp == 0 ? 0 : (activation == .relu ? 1 : 2)
        params = cdnnl_conv_params(
            n: Int64(geo.n), c: Int64(geo.c), h: Int64(geo.h), w: Int64(geo.w), o: Int64(geo.o),
            kh: Int64(geo.kh), kw: Int64(geo.kw), sh: Int64(geo.sh), sw: Int64(geo.sw),
            dh: Int64(geo.dh), dw: Int64(geo.dw), pt: Int64(padding.top), pl: Int64(padding.left),
            pb: Int64(padding.bottom), pr: Int64(padding.right), groups: Int64(groups),
            n0: 0, n1: Int64(geo.n), oh0: 0, oh1: Int64(geo.oh), o0: 0, o1: Int64(geo.o),
            c0: 0, c1: Int64(geo.c), activation: kind, lo: lo, hi: hi, threads: 1)
        self.filter = filter
        self.bias = bias
        self.inputShape = inputShape
        self.outputShape = [geo.n, geo.o, geo.oh, geo.ow]
        usesDNNLForward = forward
        backwardPrefersDNNL = backward
        if forward {
            guard handles(threads: ComputeSettings.threadCount) != nil else { return nil }
        } else {
            guard backwardHandles(threads: ComputeSettings.threadCount) != nil else { return nil }
        }
        #else
        return nil
        #endif
    }

    /// The convolution of `input`, or `nil` if oneDNN failed (out of memory) or this convolution
    /// was prepared for its input gradient only; the caller then falls back to
    /// ``conv2D(_:filter:bias:strides:padding:dilations:groups:activation:)``.
    /// - Precondition: `input.shape == inputShape`.
    public func callAsFunction(_ input: Tensor) -> Tensor? {
        precondition(input.shape == inputShape, "PreparedConvolution: input \(input.shape), prepared for \(inputShape)")
        #if canImport(CDNNL)
        guard usesDNNLForward, let handles = handles(threads: ComputeSettings.threadCount) else { return nil }
        return PreparedConvolution.run(handles, on: input, outputShape: outputShape, cdnnl_conv_forward)
        #else
        return nil
        #endif
    }

    /// The input gradient of this convolution (without its activation: pass the gradient with
    /// respect to the pre-activation output), or `nil` when oneDNN has no backward-data primitive
    /// for it, it is not the faster choice (see ``prefersDNNLBackward(_:)``), or it failed; the caller
    /// then uses ``conv2DPullback(_:filter:outputGradient:strides:padding:dilations:groups:needInput:needFilter:needBias:)``.
    ///
    /// The backward-data primitives are made on first use (per thread count) and split like the
    /// forward: images, else channel groups, else input channels, each part single-threaded on
    /// CAMKit's threads.
    /// - Parameter outputGradient: `[N, O, OH, OW]`, shaped like ``outputShape``.
    /// - Returns: `[N, C, H, W]`, shaped like ``inputShape``.
    /// - Precondition: `outputGradient.shape == outputShape`.
    public func inputGradient(_ outputGradient: Tensor) -> Tensor? {
        precondition(outputGradient.shape == outputShape,
                     "PreparedConvolution: output gradient \(outputGradient.shape), prepared for \(outputShape)")
        #if canImport(CDNNL)
        guard usesDNNLBackward, let handles = backwardHandles(threads: ComputeSettings.threadCount) else { return nil }
        return PreparedConvolution.run(handles, on: outputGradient, outputShape: inputShape, cdnnl_conv_backward_data)
        #else
        return nil
        #endif
    }

    #if canImport(CDNNL)
    /// Runs `call` (a forward or backward-data execution) for every part, across threads, from
    /// `source` into a new tensor of `outputShape`; `nil` if a part failed.
    private static func run(_ handles: [DNNLConvolutionHandle], on source: Tensor, outputShape: [Int],
                            _ call: (OpaquePointer?, UnsafePointer<Float>?, UnsafeMutablePointer<Float>?) -> Int32) -> Tensor? {
        var output = Tensor(uninitializedShape: outputShape)
        let failed = Atomic<Bool>(false)
        source.withUnsafeBufferPointer { x in
            output.withUnsafeMutableBufferPointer { y in
                let xp = x.baseAddress, yp = y.baseAddress
                parallelFor(handles.count) { range in
                    for part in range where call(handles[part].pointer, xp, yp) != 0 {
                        failed.store(true, ordering: .relaxed)
                    }
                }
            }
        }
        return failed.load(ordering: .relaxed) ? nil : output
    }
    #endif

    /// The oneDNN implementation in use (e.g. `brgconv:avx512_core`) and the number of parts,
    /// or `nil` for none.
    public var implementationDescription: String? {
        #if canImport(CDNNL)
        guard usesDNNLForward, let h = handles(threads: ComputeSettings.threadCount), let first = h.first else { return nil }
        return String(cString: cdnnl_conv_impl(first.pointer)) + " × \(h.count)"
        #else
        return nil
        #endif
    }

    #if canImport(CDNNL)
    /// The shapes where oneDNN (with its NCHW ⇄ blocked reorders) beat CAMKit's own kernels in
    /// `Benchmarks/conv_layers` on the conv shapes of ResNet-50 and EfficientNet-Lite0 (2 threads,
    /// AVX-512, 2026-11-22): k×k convolutions (1.5–7× faster: the im2col/GEMM path is far from
    /// the GEMM peak there) and depthwise convolutions with small planes (≤ 28×28 outputs: 2–5×,
    /// the direct kernel's per-plane overhead dominates). 1×1 convolutions stay one OpenBLAS GEMM
    /// each: the two reorders cost more than oneDNN's faster kernel saves.
    static func prefersDNNL(_ geo: Conv2DGeometry) -> Bool {
        if geo.kh == 1 && geo.kw == 1 { return false }
        if geo.isDepthwise { return geo.p <= 28 * 28 }
        return true
    }

    /// The oneDNN backward-data implementation (e.g. `jit:avx512_core`) and the number of parts,
    /// or `nil` when the input gradient uses CAMKit's kernels.
    var backwardImplementationDescription: String? {
        guard usesDNNLBackward, let h = backwardHandles(threads: ComputeSettings.threadCount), let first = h.first else { return nil }
        return String(cString: cdnnl_conv_impl(first.pointer)) + " × \(h.count)"
    }

    /// Whether ``inputGradient(_:)`` uses oneDNN here (see ``prefersDNNLBackward(_:)``).
    private var usesDNNLBackward: Bool {
        ConvolutionTuning.dnnlBackward && (backwardPrefersDNNL || ConvolutionTuning.dnnlBackwardEverywhere)
    }

    /// The shapes where oneDNN's backward data (with its reorders) beat CAMKit's own input
    /// gradient in the `ConvolutionBackwardTests` benchmark on the conv shapes of ResNet-50 and
    /// EfficientNet-Lite0 (batch 16, 1 and 2 threads, AVX-512, 2026-11-22):
    /// - k×k convolutions with at least 16 input channels per group: ~2× (the im2col/GEMM/col2im
    ///   path is far from the GEMM peak); with 3 input channels (the stems) oneDNN was 2× slower;
    /// - depthwise convolutions with a stride > 1 (1.2–7×) or input planes of at most 28×28
    ///   (1.1–5×); on larger planes at stride 1 CAMKit's kernel (the forward plane kernel on the
    ///   rotated filter) is ~1.5–2× faster;
    /// - not 1×1 convolutions: with OpenBLAS's AVX-512 kernels the GEMM path matched or beat
    ///   oneDNN except on 7×7 planes (1.3–1.5×), not worth a second code path.
    static func prefersDNNLBackward(_ geo: Conv2DGeometry) -> Bool {
        if geo.kh == 1 && geo.kw == 1 { return false }
        if geo.isDepthwise { return geo.sh > 1 || geo.sw > 1 || geo.h * geo.w <= 28 * 28 }
        return geo.cg >= 16
    }

    /// The backward-data parts for `threads` threads, made on first use (`nil` if oneDNN refused).
    private func backwardHandles(threads: Int) -> [DNNLConvolutionHandle]? {
        let made = backwardParts.withLock { cache -> [DNNLConvolutionHandle] in
            if let h = cache[threads] { return h }
            var made: [DNNLConvolutionHandle] = []
            for var p in backwardPartition(threads: threads) {
                let handle = filter.withUnsafeBufferPointer { f in cdnnl_conv_bwd_create(&p, f.baseAddress!) }
                guard let handle else {
                    made = []
                    break
                }
                made.append(DNNLConvolutionHandle(handle))
            }
            cache[threads] = made
            return made
        }
        return made.isEmpty ? nil : made
    }

    /// Splits the input gradient into `threads` parts: images if there are enough, else channel
    /// groups, else input channels (whole blocks of 16 where possible); one part when the
    /// channels are too few (or with OpenMP threading, one part on `threads` OpenMP threads).
    private func backwardPartition(threads: Int) -> [cdnnl_conv_params] {
        var whole = params
        if threads <= 1 || ConvolutionTuning.dnnlUsesOpenMP {
            whole.threads = Int32(threads)
            return [whole]
        }
        func ranges(_ count: Int64, unit: Int64 = 1) -> [Range<Int64>] {
            PreparedConvolution.split(count, unit: unit, parts: threads)
        }
        let t = Int64(threads), cg = params.c / params.groups
        var result: [cdnnl_conv_params] = []
        if params.n >= t {
            for r in ranges(params.n) { var p = whole; p.n0 = r.lowerBound; p.n1 = r.upperBound; result.append(p) }
        } else if params.groups > 1 {
            for r in ranges(params.groups) {
                var p = whole; p.c0 = r.lowerBound * cg; p.c1 = r.upperBound * cg; result.append(p)
            }
        } else if params.c >= t {
            let unit: Int64 = params.c >= 16 * t ? 16 : 1
            for r in ranges(params.c, unit: unit) { var p = whole; p.c0 = r.lowerBound; p.c1 = r.upperBound; result.append(p) }
        } else {
            result = [whole]
        }
        return result
    }

    /// `0..<count` in at most `parts` contiguous ranges whose bounds are multiples of `unit`
    /// (the last range takes the remainder).
    private static func split(_ count: Int64, unit: Int64, parts: Int) -> [Range<Int64>] {
        let units = count / unit
        let parts = min(Int64(parts), units)
        return (0..<parts).map { i in (units * i / parts * unit)..<(i == parts - 1 ? count : units * (i + 1) / parts * unit) }
    }

    /// The parts for `threads` threads, made on first use.
    private func handles(threads: Int) -> [DNNLConvolutionHandle]? {
        parts.withLock { cache -> [DNNLConvolutionHandle]? in
            if let h = cache[threads] { return h }
            var made: [DNNLConvolutionHandle] = []
            for var p in partition(threads: threads) {
                let handle = filter.withUnsafeBufferPointer { f in
                    withOptionalPointer(bias) { b in cdnnl_conv_create(&p, f.baseAddress!, b) }
                }
                guard let handle else { return nil }
                made.append(DNNLConvolutionHandle(handle))
            }
            cache[threads] = made
            return made
        }
    }

    /// Splits the convolution into `threads` parts: images if there are enough, else channel
    /// groups (depthwise), else output rows (at least 4 per part, or any number for grouped
    /// filters), else output channels (whole blocks of 16 where possible). With OpenMP threading (`CAMKIT_DNNL_OPENMP=1`), one part
    /// on `threads` OpenMP threads.
    private func partition(threads: Int) -> [cdnnl_conv_params] {
        var whole = params
        if threads <= 1 || ConvolutionTuning.dnnlUsesOpenMP {
            whole.threads = Int32(threads)
            return [whole]
        }
        func ranges(_ count: Int64, unit: Int64 = 1) -> [Range<Int64>] {
            PreparedConvolution.split(count, unit: unit, parts: threads)
        }
        let t = Int64(threads)
        let oh = params.oh1, og = params.o / params.groups
        var result: [cdnnl_conv_params] = []
        if params.n >= t {
            for r in ranges(params.n) { var p = whole; p.n0 = r.lowerBound; p.n1 = r.upperBound; result.append(p) }
        } else if params.groups >= t {
            for r in ranges(params.groups, unit: 1) {
                var p = whole; p.o0 = r.lowerBound * og; p.o1 = r.upperBound * og; result.append(p)
            }
        } else if oh >= 4 * t || params.groups > 1 {  // parts of grouped filters must be whole groups
            for r in ranges(oh) { var p = whole; p.oh0 = r.lowerBound; p.oh1 = r.upperBound; result.append(p) }
        } else {
            let unit: Int64 = params.o >= 16 * t ? 16 : 1
            for r in ranges(params.o, unit: unit) { var p = whole; p.o0 = r.lowerBound; p.o1 = r.upperBound; result.append(p) }
        }
        return result
    }
    #endif
}

#if canImport(CDNNL)
/// oneDNN's CPU engine, made once.
private let dnnlAvailable: Bool = cdnnl_init() == 0

/// Owns one `cdnnl_conv` (a primitive, its reordered filter and its reorders).
private final class DNNLConvolutionHandle: @unchecked Sendable {
    // Immutable after creation; oneDNN primitives may be executed from several threads at once.
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
    deinit { cdnnl_conv_destroy(pointer) }
}
#endif
