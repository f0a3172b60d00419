import Foundation
import Synchronization
#if canImport(CDNNL)
import CDNNL
#endif
#if canImport(Accelerate)
import Accelerate
#else
import CBLAS
#endif

// The input gradient (backward data) of convolutions on channels-last (NHWC) activations, for the
// reverse pass through ONNXGraph's channels-last regions (see ChannelsLastConvolution.swift: the
// same layout, the same way of splitting work over CAMKit's threads).
//
// Semantics: the vector-Jacobian product of ONNX Conv (cross-correlation, OIHW filter, asymmetric
// zero padding, dilations, groups) with respect to its input:
//   dx[n, ih, iw, c] = Σ dy[n, oh, ow, o] · w[o, c − g·cg, kh, kw]
// over the output channels `o` of `c`'s group `g` and every (oh, ow, kh, kw) with
// ih = oh·sh − top + kh·dh and iw = ow·sw − left + kw·dw (taps in the padding receive nothing) —
// the same numbers as ``conv2DPullback(_:filter:outputGradient:strides:padding:dilations:groups:needInput:needFilter:needBias:)``
// on NCHW tensors, up to floating-point summation order.
//
// Three methods, chosen per shape by measurement (``ChannelsLastConvolutionGradient/preferredMethod(_:)``):
// - stride 1: the forward convolution of dy with the filter flipped in both spatial axes and
//   transposed within each group (a ``ChannelsLastConvolution``: oneDNN's brgemm forward kernels,
//   as fast as the forward itself; oneDNN 2.6's bwd_d `jit:avx512_core` ran 7–23 % slower on
//   ResNet's 3×3 layers); it accumulates with the forward's fused sum;
// - GEMM + col2im (Sources/CDNNL/cdnnl.c, "Channels-last (NHWC) backward data") for 1×1
//   convolutions and for few input channels per group, where oneDNN's kernels are slow (ResNet's
//   stem, C = 3, 7×7 stride 2: bwd_d ran at a quarter of the GEMM's speed): per chunk of output
//   rows `dcol = dy[P × O] · W[O × kh·kw·C]` (oneDNN's JIT sgemm), scattered into dx while it is
//   in cache; a 1×1 stride-1 convolution needs no col2im (dx = dy · W, β = 1 to accumulate);
// - oneDNN backward-data primitives (`jit:avx512_core`, `jit_1x1:avx512_core`) for the rest
//   (strided k×k, depthwise, 1×1 with few channels).
// Threads: the work is split into ``ComputeSettings/threadCount`` single-threaded parts (images
// when the batch has at least as many, else bands of input rows with the output rows that reach
// them, or positions of a 1×1 stride-1 convolution) run with ``parallelFor``; no OpenMP pool runs.
// Accumulating (`dx += …`, ResNet's residual gradients): oneDNN 2.6's bwd_d has no sum post-op, so
// its parts compute cache-sized tiles into a per-thread buffer and add each while it is warm; the
// GEMM paths add directly (β = 1 for 1×1 stride-1 convolutions); the flipped forward fuses the sum.

/// The input gradient (backward data) of a 2-D convolution on channels-last activations, prepared
/// once for a fixed input shape and filter.
///
/// For `dy` (`[N, OH, OW, O]`, the gradient of ``ChannelsLastConvolution``'s output) it computes
/// `dx` (`[N, H, W, C]`), the gradient with respect to the convolution's input, with ONNX Conv's
/// semantics (cross-correlation, OIHW filter, asymmetric padding, dilations, groups including
/// depthwise). A bias does not enter the input gradient.
public final class ChannelsLastConvolutionGradient: Sendable {
    /// The logical `[N, C, H, W]` shape of the convolution's input (the gradient returned is `[N, H, W, C]`).
    public let inputShape: [Int]
    /// The logical `[N, O, OH, OW]` shape of its output (the gradient passed in is `[N, OH, OW, O]`).
    public let outputShape: [Int]

    /// How the gradient is computed (internal: tests and benchmarks force one).
    enum Method: Int32, Sendable {
        /// oneDNN backward-data primitives.
        case dnnl = 0
        /// A GEMM per chunk of output rows and col2im (no col2im for 1×1 stride-1 convolutions).
        case gemm = 1
        /// Stride 1 only: the forward convolution (``ChannelsLastConvolution``, oneDNN's brgemm
        /// kernels) of dy with the flipped, transposed filter; accumulates with its fused sum.
        case flippedForward = 2
    }

    /// The GEMM of ``Method/gemm`` (internal).
    enum GEMMKernel: Sendable {
        /// oneDNN's `dnnl_sgemm` (its own JIT kernels and CPU detection).
        case oneDNN
        /// The system BLAS (OpenBLAS; honours `OPENBLAS_CORETYPE`).
        case blas
    }

    /// How the method is chosen, and the GEMM's sizes (measured single-threaded on
    /// ResNet-50's layers and MobileNet-like ones at batch 16; see ``preferredMethod(_:)``).
    enum Tuning {
        /// The most input channels per group for which ``Method/gemm`` is always chosen (oneDNN's
        /// bwd_d kernels vectorise over input channels: 3 or 4 channels waste most lanes).
        static let gemmChannelLimit = 4
        /// ``Method/gemm`` is also chosen when a group has at least this many times more output
        /// than input channels (a GEMM with a wide inner dimension).
        static let gemmExpansion = 4
        /// The fewest channels of a 1×1 convolution for which ``Method/gemm`` is chosen (the
        /// GEMM's result has that many columns).
        static let gemmPointwiseChannels = 32
        /// The GEMM kernel used by default: oneDNN's sgemm (JIT, AVX-512 here) ran 1.9–2.2× faster
        /// than OpenBLAS with `OPENBLAS_CORETYPE=Haswell` (this machine's setting).
        static let gemmKernel = GEMMKernel.oneDNN
        /// Floats of dx per accumulating oneDNN tile, and of the column buffer per GEMM chunk
        /// (0: the C glue's default, 65 536 = 256 KiB; 16 Ki–256 Ki measured within 5 %).
        static let tileElements = 0
    }

    #if canImport(CDNNL)
    private let params: cdnnl_nhwc_bwd_params
    private let preferred: Method
    private let forced: Bool
    private let kernel: GEMMKernel
    private let filter: Tensor
    private let parts = Mutex<[Int: ChannelsLastGradientHandle]>([:])
    /// ``Method/flippedForward``: the forward convolution (overwriting), and how to make its
    /// accumulating twin, made on the first accumulating call (most layers never accumulate, and
    /// each twin costs oneDNN primitives and a copy of the filter).
    private let flipped: FlippedForward?
    #endif

    /// Prepares the input gradient (parts for the current ``ComputeSettings/threadCount``), or
    /// returns `nil` when oneDNN is unavailable (``ChannelsLastConvolution/isAvailable`` is false),
    /// the shapes are inconsistent, or oneDNN refuses or offers only its reference kernels and the
    /// GEMM method does not apply (depthwise convolutions).
    ///
    /// - Parameters: as ``ChannelsLastConvolution/init(inputShape:filter:bias:strides:padding:dilations:groups:activation:accumulating:activationAfterSum:)``:
    ///   - inputShape: the logical `[N, C, H, W]` shape of the convolution's input.
    ///   - filter: `[O, C/groups, KH, KW]` (OIHW), Float32.
    ///   - strides, padding, dilations, groups: as in the forward convolution.
    public convenience init?(inputShape: [Int], filter: Tensor, strides: (Int, Int) = (1, 1),
                             padding: Padding2D = .zero, dilations: (Int, Int) = (1, 1), groups: Int = 1) {
        self.init(inputShape: inputShape, filter: filter, strides: strides, padding: padding, dilations: dilations,
                  groups: groups, method: nil, gemmKernel: Tuning.gemmKernel, tileElements: Tuning.tileElements,
                  portableKernels: false)
    }

    /// Prepares the input gradient with `method` (`nil`: chosen by shape, falling back to the GEMM
    /// method where oneDNN refuses), the given GEMM kernel and tile size, and optionally the
    /// portable C loops where AVX-512 ones exist (internal: tests and benchmarks).
    init?(inputShape: [Int], filter: Tensor, strides: (Int, Int), padding: Padding2D, dilations: (Int, Int),
          groups: Int, method: Method?, gemmKernel: GEMMKernel, tileElements: Int, portableKernels: Bool = false) {
        self.inputShape = inputShape
        #if canImport(CDNNL)
        guard ChannelsLastConvolution.isAvailable,
              inputShape.count == 4, inputShape.allSatisfy({ $0 > 0 }), filter.rank == 4, filter.dtype == .float32,
              filter.shape.allSatisfy({ $0 > 0 }), groups >= 1, inputShape[1] % groups == 0,
              filter.shape[0] % groups == 0, filter.shape[1] * groups == inputShape[1],
              strides.0 >= 1, strides.1 >= 1, dilations.0 >= 1, dilations.1 >= 1, tileElements >= 0
        else { return nil }
        let geo = Conv2DGeometry(input: inputShape, filter: filter.shape, strides: strides, padding: padding,
                                 dilations: dilations, groups: groups)
        guard geo.oh > 0, geo.ow > 0 else { return nil }
        params = cdnnl_nhwc_bwd_params(
            n: Int64(geo.n), c: Int64(geo.c), h: Int64(geo.h), w: Int64(geo.w), o: Int64(geo.o),
            kh: Int64(geo.kh), kw: Int64(geo.kw), sh: Int64(geo.sh), sw: Int64(geo.sw),
            dh: Int64(geo.dh), dw: Int64(geo.dw), pt: Int64(padding.top), pl: Int64(padding.left),
            pb: Int64(padding.bottom), pr: Int64(padding.right), groups: Int64(groups),
            accumulate: 0, parts: 1, method: 0, tile_elements: Int64(tileElements), gemm: nil,
            portable: portableKernels ? 1 : 0)
        self.outputShape = [geo.n, geo.o, geo.oh, geo.ow]
        self.filter = filter
        self.kernel = gemmKernel
        self.forced = method != nil
        var chosen = method ?? ChannelsLastConvolutionGradient.preferredMethod(geo)
        var flipped: FlippedForward?
        if chosen == .flippedForward {
            flipped = ChannelsLastConvolutionGradient.flippedForward(geo, filter: filter)
            if flipped == nil {
                if method != nil { return nil }
                chosen = .dnnl
            }
        }
        self.flipped = flipped
        self.preferred = chosen
        if chosen != .flippedForward && handle(threads: ComputeSettings.threadCount, accumulating: false) == nil {
            return nil
        }
        #else
        return nil
        #endif
    }

    #if canImport(CDNNL)
    /// The input gradient of a stride-1 convolution as a forward convolution of dy, overwriting
    /// and accumulating: with `stride 1`, dx[ih] = Σ_kh dy[ih + top − kh·d] · w[kh] is the
    /// cross-correlation of dy, padded by (k − 1)·d − top above and (k − 1)·d − bottom below (and
    /// likewise for columns), with the filter flipped in both spatial axes and transposed within
    /// each group: w'[g·cg + c, o, i, j] = w[g·og + o, c, kh − 1 − i, kw − 1 − j]. `nil` when the
    /// convolution is strided, a padding exceeds the dilated kernel, or oneDNN refuses.
    private static func flippedForward(_ geo: Conv2DGeometry, filter: Tensor) -> FlippedForward? {
        let top = (geo.kh - 1) * geo.dh - geo.padding.top, bottom = (geo.kh - 1) * geo.dh - geo.padding.bottom
        let left = (geo.kw - 1) * geo.dw - geo.padding.left, right = (geo.kw - 1) * geo.dw - geo.padding.right
        guard geo.sh == 1, geo.sw == 1, top >= 0, bottom >= 0, left >= 0, right >= 0 else { return nil }
        let (cg, og, kh, kw) = (geo.cg, geo.og, geo.kh, geo.kw)
        var transposed = Tensor(uninitializedShape: [geo.c, og, kh, kw])
        filter.withUnsafeBufferPointer { w in
            transposed.withUnsafeMutableBufferPointer { t in
                for g in 0..<geo.groups {
                    for c in 0..<cg {
                        for o in 0..<og {
                            for i in 0..<kh {
                                for j in 0..<kw {
                                    t[(((g * cg + c) * og + o) * kh + i) * kw + j] =
                                        w[(((g * og + o) * cg + c) * kh + (kh - 1 - i)) * kw + (kw - 1 - j)]
                                }
                            }
                        }
                    }
                }
            }
        }
        let shape = [geo.n, geo.o, geo.oh, geo.ow]
        let padding = Padding2D(top: top, left: left, bottom: bottom, right: right)
        let flippedFilter = transposed
        let make = { @Sendable (accumulating: Bool) in
            ChannelsLastConvolution(inputShape: shape, filter: flippedFilter, padding: padding,
                                    dilations: (geo.dh, geo.dw), groups: geo.groups, accumulating: accumulating)
        }
        guard let plain = make(false), plain.outputShape == [geo.n, geo.c, geo.h, geo.w] else { return nil }
        return FlippedForward(plain: plain, make: make)
    }

    /// The forward convolutions of ``Method/flippedForward``.
    private final class FlippedForward: Sendable {
        let plain: ChannelsLastConvolution
        private let make: @Sendable (_ accumulating: Bool) -> ChannelsLastConvolution?
        private let summingState = Mutex<ChannelsLastConvolution?>(nil)

        init(plain: ChannelsLastConvolution, make: @escaping @Sendable (_ accumulating: Bool) -> ChannelsLastConvolution?) {
            self.plain = plain
            self.make = make
        }

        /// The accumulating twin, made on first use (`nil` if oneDNN refused it).
        var summing: ChannelsLastConvolution? {
            summingState.withLock { conv in
                if conv == nil { conv = make(true) }
                return conv
            }
        }

        /// `dx += ` the forward convolution of `dy`: the fused sum, else the plain convolution
        /// added afterwards. `false` if oneDNN failed.
        func accumulate(_ dy: Tensor, into dx: inout Tensor) -> Bool {
            if let summing { return summing(dy, accumulatingInto: &dx) }
            guard let y = plain(dy) else { return false }
            TensorCore.accumulate(y, into: &dx)
            return true
        }
    }
    #endif

    /// The method chosen for `geo` (see ``Tuning``): the GEMM for 1×1 convolutions with at least
    /// ``Tuning/gemmPointwiseChannels`` channels, few input channels per group, or many more
    /// output than input channels per group; else the flipped forward for stride 1 (oneDNN's
    /// brgemm forward kernels, faster than its bwd_d ones); else oneDNN's backward data.
    ///
    /// Measured (thread CPU time, batch 16, oneDNN 2.6.3; bwd_d / GEMM / flipped forward):
    /// ResNet's stem (3 → 64, 7×7 s2) 89 / 22 ms; 4 / 8 / 16 → 64 3×3 at 112²: 25 / 25 / 27 vs
    /// 6 / 10 / 18 ms (flipped 20); ResNet's stride-1 3×3 layers: bwd_d 7–23 % slower than the
    /// forward, the flipped forward within 2 % of it (accumulating: 0–19 % faster than bwd_d);
    /// 16 → 16, 32 → 32, 32 → 64 stride 2: bwd_d 10–30 % faster than the GEMM; ResNet's 1×1
    /// layers: GEMM 265, flipped 270, bwd_d 294 ms in all, accumulating GEMM 281, flipped (fused
    /// sum) 311; 1×1 with 16 input channels (16 → 96 at 112²): bwd_d 4.3, GEMM 5.5, flipped 6.3 ms.
    static func preferredMethod(_ geo: Conv2DGeometry) -> Method {
        if geo.kh == 1 && geo.kw == 1 && geo.groups == 1 {
            return geo.c >= Tuning.gemmPointwiseChannels ? .gemm : .dnnl
        }
        if (geo.cg <= Tuning.gemmChannelLimit && geo.og >= 8) || (geo.og >= Tuning.gemmExpansion * geo.cg && geo.og >= 16) {
            return .gemm
        }
        return geo.sh == 1 && geo.sw == 1 ? .flippedForward : .dnnl
    }

    /// The input gradient `dx` (`[N, H, W, C]`) for `outputGradient` (`dy`, `[N, OH, OW, O]`), a new
    /// tensor, or `nil` if oneDNN failed (out of memory).
    /// - Precondition: `outputGradient` is shaped like ``outputShape`` in channels-last order.
    public func callAsFunction(_ outputGradient: Tensor) -> Tensor? {
        #if canImport(CDNNL)
        if let plain = flipped?.plain {
            let dyShape = ChannelsLastConvolution.channelsLastShape(outputShape)
            precondition(outputGradient.shape == dyShape,
                         "ChannelsLastConvolutionGradient: output gradient \(outputGradient.shape), prepared for NHWC \(dyShape)")
            return plain(outputGradient)
        }
        #endif
        var dx = Tensor(uninitializedShape: ChannelsLastConvolution.channelsLastShape(inputShape))
        return run(outputGradient, into: &dx, accumulating: false) ? dx : nil
    }

    /// Adds the input gradient for `outputGradient` (`dy`, `[N, OH, OW, O]`) to `inputGradient`
    /// (`[N, H, W, C]`) in place. When `inputGradient`'s storage is shared it is copied first
    /// (copy-on-write), so pass a tensor nobody else holds to avoid the copy. Returns `false` on
    /// failure (out of memory; `inputGradient` is then unspecified).
    /// - Precondition: shapes as ``outputShape`` / ``inputShape`` in channels-last order.
    public func callAsFunction(_ outputGradient: Tensor, accumulatingInto inputGradient: inout Tensor) -> Bool {
        run(outputGradient, into: &inputGradient, accumulating: true)
    }

    private func run(_ dy: Tensor, into dx: inout Tensor, accumulating: Bool) -> Bool {
        let dyShape = ChannelsLastConvolution.channelsLastShape(outputShape)
        let dxShape = ChannelsLastConvolution.channelsLastShape(inputShape)
        precondition(dy.shape == dyShape, "ChannelsLastConvolutionGradient: output gradient \(dy.shape), prepared for NHWC \(dyShape)")
        precondition(dx.shape == dxShape, "ChannelsLastConvolutionGradient: input gradient \(dx.shape), prepared for NHWC \(dxShape)")
        #if canImport(CDNNL)
        if let flipped {
            precondition(accumulating, "ChannelsLastConvolutionGradient: the overwriting call returns early")
            return flipped.accumulate(dy, into: &dx)
        }
        guard let handle = handle(threads: ComputeSettings.threadCount, accumulating: accumulating) else { return false }
        let pointer = handle.pointer
        if handle.usesBLAS { _ = BLAS.singleThreaded }
        return dy.withUnsafeBufferPointer { g in
            dx.withUnsafeMutableBufferPointer { d in
                let gp = g.baseAddress, dp = d.baseAddress
                return runParts(Int(cdnnl_nhwc_bwd_parts(pointer))) { cdnnl_nhwc_bwd_run(pointer, $0, gp, dp) }
            }
        }
        #else
        return false
        #endif
    }

    /// The implementation in use for the current thread count — oneDNN's name (e.g.
    /// `jit_1x1:avx512_core`) or `gemm-col2im` / `gemm` — and the number of parts, e.g.
    /// `"jit:avx512_core × 2"`.
    public var implementationDescription: String? {
        #if canImport(CDNNL)
        if let plain = flipped?.plain {
            return plain.implementationDescription.map { $0 + " (forward, flipped filter)" }
        }
        guard let h = handle(threads: ComputeSettings.threadCount, accumulating: false) else { return nil }
        return String(cString: cdnnl_nhwc_bwd_impl(h.pointer)) + " × \(cdnnl_nhwc_bwd_parts(h.pointer))"
        #else
        return nil
        #endif
    }

    #if canImport(CDNNL)
    /// The parts for `threads` threads (overwriting or accumulating), made on first use (`nil` if
    /// neither method could be made).
    private func handle(threads: Int, accumulating: Bool) -> ChannelsLastGradientHandle? {
        parts.withLock { cache -> ChannelsLastGradientHandle? in
            let key = threads * 2 + (accumulating ? 1 : 0)
            if let h = cache[key] { return h }
            var methods = [preferred]
            // GEMM + col2im computes every convolution; it stands in where oneDNN refuses, except
            // for depthwise ones (a GEMM with one output channel per group would be far too slow).
            if !forced && preferred == .dnnl && !(params.groups == params.c && params.groups > 1) {
                methods.append(.gemm)
            }
            for method in methods {
                var p = params
                p.parts = Int32(threads)
                p.accumulate = accumulating ? 1 : 0
                p.method = method.rawValue
                let blas = method == .gemm && kernel == .blas
                if blas {
                    _ = BLAS.singleThreaded
                    p.gemm = { ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc in
                        cblas_sgemm(CblasRowMajor, ta != 0 ? CblasTrans : CblasNoTrans, tb != 0 ? CblasTrans : CblasNoTrans,
                                    m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
                    }
                }
                let made = filter.withUnsafeBufferPointer { f in cdnnl_nhwc_bwd_create(&p, f.baseAddress!) }
                if let made {
                    let h = ChannelsLastGradientHandle(made, usesBLAS: blas)
                    cache[key] = h
                    return h
                }
            }
            return nil
        }
    }
    #endif
}

#if canImport(CDNNL)
/// Owns one `cdnnl_nhwc_bwd` (its parts' primitives and reordered filters).
private final class ChannelsLastGradientHandle: @unchecked Sendable {
    // Immutable after creation; oneDNN primitives may be executed from several threads at once.
    let pointer: OpaquePointer
    let usesBLAS: Bool
    init(_ pointer: OpaquePointer, usesBLAS: Bool) {
        self.pointer = pointer
        self.usesBLAS = usesBLAS
    }
    deinit { cdnnl_nhwc_bwd_destroy(pointer) }
}
#endif
