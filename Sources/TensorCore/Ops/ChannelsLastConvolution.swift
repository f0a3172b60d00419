import Foundation
import Synchronization
#if canImport(CDNNL)
import CDNNL
#endif

// Convolutions on channels-last (NHWC) activations, for chains of convolutions that stay in one
// layout from layer to layer (ONNXGraph's channels-last regions: a plan converts NCHW → NHWC once
// at a region's entry and back once at its exit, instead of around every convolution as
// ``PreparedConvolution`` does).
//
// Why NHWC: it is the layout oneDNN 2.6 itself picks for f32 inference on AVX-512 machines with
// `format_tag::any` — its brgemm convolutions (`brgconv`, `brgconv_1x1`, `brdgmm_dw`) only take
// channels-last activations (oneDNN `src/cpu/x64/jit_brgemm_conv_utils.cpp`, `pick_tags`). It
// needs no channel padding (24, 40, 112 channels), elementwise ops (a residual `Add`, `Relu`) work
// on it unchanged, and a band of output rows of one image — or of output positions of a 1×1
// convolution — is one contiguous block, so every part of a split gets a dense descriptor.
//
// Threads: as ``PreparedConvolution``, each convolution is split into
// ``ComputeSettings/threadCount`` single-threaded oneDNN parts run with ``parallelFor`` on
// CAMKit's worker pool (images when the batch has at least as many, else output rows, or output
// positions for 1×1 stride-1 convolutions); no OpenMP pool runs. Parts for another thread count
// are made when the count changes.
//
// A channels-last tensor is a ``Tensor`` of shape `[N, H, W, C]` (row-major, so its memory is NHWC).

/// A 2-D convolution on channels-last activations, prepared once for a fixed input shape, filter
/// and bias, with an optional fused residual sum (oneDNN's `sum` post-op).
///
/// Computes `post(act(conv(x) + bias) [+ residual])`, where `act` is `activation`, the residual
/// sum is present when `accumulating` is true, and `post` is `activationAfterSum` — the same
/// numbers as ``conv2D(_:filter:bias:strides:padding:dilations:groups:activation:)`` followed by
/// `add` and the activation, up to floating-point summation order.
public final class ChannelsLastConvolution: Sendable {
    /// The logical `[N, C, H, W]` shape of the input (the tensor passed in is `[N, H, W, C]`).
    public let inputShape: [Int]
    /// The logical `[N, O, OH, OW]` shape of the output (the tensor returned is `[N, OH, OW, O]`).
    public let outputShape: [Int]
    /// Whether the convolution adds its result to a residual (``callAsFunction(_:accumulatingInto:)``).
    public let accumulates: Bool
    #if canImport(CDNNL)
    private let params: cdnnl_nhwc_conv_params
    private let filter: Tensor
    private let bias: Tensor?
    private let parts = Mutex<[Int: ChannelsLastConvolutionHandle]>([:])
    #endif

    /// Whether channels-last convolutions are available: oneDNN is present and usable and
    /// ``ConvolutionBackend/current`` is `.automatic`.
    public static var isAvailable: Bool {
        #if canImport(CDNNL)
        return ConvolutionBackend.current == .automatic && channelsLastDNNLAvailable
        #else
        return false
        #endif
    }

    /// Prepares the convolution (parts for the current ``ComputeSettings/threadCount``), or returns
    /// `nil` when oneDNN is unavailable (see ``isAvailable``), refuses the shape or offers only its
    /// reference kernels.
    ///
    /// - Parameters: as ``conv2D(_:filter:bias:strides:padding:dilations:groups:activation:)``,
    ///   with `inputShape` the logical `[N, C, H, W]` shape of the inputs, plus:
    ///   - accumulating: add the result to a residual tensor shaped like the output.
    ///   - activationAfterSum: applied after the residual sum (e.g. ResNet's `Add → Relu`);
    ///     must be `.none` unless `accumulating`.
    public init?(inputShape: [Int], filter: Tensor, bias: Tensor? = nil, strides: (Int, Int) = (1, 1),
                 padding: Padding2D = .zero, dilations: (Int, Int) = (1, 1), groups: Int = 1,
                 activation: FusedActivation = .none, accumulating: Bool = false,
                 activationAfterSum: FusedActivation = .none) {
        #if canImport(CDNNL)
        guard ChannelsLastConvolution.isAvailable,
              inputShape.count == 4, filter.rank == 4, filter.dtype == .float32,
              groups >= 1, inputShape[1] % groups == 0, filter.shape[0] % groups == 0,
              filter.shape[1] * groups == inputShape[1], bias.map({ $0.count == filter.shape[0] }) ?? true,
              accumulating || activationAfterSum == .none
        else { return nil }
        let geo = Conv2DGeometry(input: inputShape, filter: filter.shape, strides: strides, padding: padding,
                                 dilations: dilations, groups: groups)
        guard geo.oh > 0, geo.ow > 0, geo.k > 0, geo.n * geo.o * geo.p > 0 else { return nil }
        func encode(_ a: FusedActivation) -> (Int32, Float, Float) {
            let (clamp, lo, hi) = a.clampParameters
            return (clamp == 0 ? 0 : (a == .relu ? 1 : 2), lo, hi)
        }
        let (kind, lo, hi) = encode(activation)
        let (postKind, postLo, postHi) = encode(activationAfterSum)
        params = cdnnl_nhwc_conv_params(
            n: Int64(geo.n), c: Int64(geo.c), h: Int64(geo.h), w: Int64(geo.w), o: Int64(geo.o),
            kh: Int64(geo.kh), kw: Int64(geo.kw), sh: Int64(geo.sh), sw: Int64(geo.sw),
            dh: Int64(geo.dh), dw: Int64(geo.dw), pt: Int64(padding.top), pl: Int64(padding.left),
            pb: Int64(padding.bottom), pr: Int64(padding.right), groups: Int64(groups),
            activation: kind, lo: lo, hi: hi, accumulate: accumulating ? 1 : 0,
            post_activation: postKind, post_lo: postLo, post_hi: postHi, parts: 1)
        self.filter = filter
        self.bias = bias
        self.inputShape = inputShape
        self.outputShape = [geo.n, geo.o, geo.oh, geo.ow]
        self.accumulates = accumulating
        guard handle(threads: ComputeSettings.threadCount) != nil else { return nil }
        #else
        return nil
        #endif
    }

    /// The channels-last shape `[N, H, W, C]` of a logical `[N, C, H, W]` shape.
    public static func channelsLastShape(_ shape: [Int]) -> [Int] {
        [shape[0], shape[2], shape[3], shape[1]]
    }

    /// The convolution of `input` (`[N, H, W, C]`, channels-last), a new `[N, OH, OW, O]` tensor,
    /// or `nil` if oneDNN failed (out of memory).
    /// - Precondition: the convolution does not accumulate; `input` is shaped like
    ///   ``inputShape`` in channels-last order.
    public func callAsFunction(_ input: Tensor) -> Tensor? {
        precondition(!accumulates, "ChannelsLastConvolution: an accumulating convolution needs its residual")
        var output = Tensor(uninitializedShape: ChannelsLastConvolution.channelsLastShape(outputShape))
        return run(input, into: &output) ? output : nil
    }

    /// Adds the convolution of `input` to `output` in place (with ``FusedActivation``s as
    /// prepared): on entry `output` holds the residual, on return the result. Returns `false` if
    /// oneDNN failed (`output` is then unspecified). When `output`'s storage is shared, it is
    /// copied first (copy-on-write), so pass a tensor nobody else holds to avoid the copy.
    /// - Precondition: the convolution accumulates; shapes as ``inputShape`` / ``outputShape`` in
    ///   channels-last order.
    public func callAsFunction(_ input: Tensor, accumulatingInto output: inout Tensor) -> Bool {
        precondition(accumulates, "ChannelsLastConvolution: not prepared to accumulate")
        return run(input, into: &output)
    }

    private func run(_ input: Tensor, into output: inout Tensor) -> Bool {
        precondition(input.shape == ChannelsLastConvolution.channelsLastShape(inputShape),
                     "ChannelsLastConvolution: input \(input.shape), prepared for NHWC \(ChannelsLastConvolution.channelsLastShape(inputShape))")
        precondition(output.shape == ChannelsLastConvolution.channelsLastShape(outputShape),
                     "ChannelsLastConvolution: output \(output.shape), prepared for NHWC \(ChannelsLastConvolution.channelsLastShape(outputShape))")
        #if canImport(CDNNL)
        guard let handle = handle(threads: ComputeSettings.threadCount) else { return false }
        let pointer = handle.pointer
        return input.withUnsafeBufferPointer { x in
            output.withUnsafeMutableBufferPointer { y in
                let xp = x.baseAddress, yp = y.baseAddress
                return runParts(Int(cdnnl_nhwc_conv_parts(pointer))) { cdnnl_nhwc_conv_forward(pointer, $0, xp, yp) }
            }
        }
        #else
        return false
        #endif
    }

    /// The oneDNN implementation in use (e.g. `brgconv:avx512_core`) and the number of parts.
    public var implementationDescription: String? {
        #if canImport(CDNNL)
        guard let h = handle(threads: ComputeSettings.threadCount) else { return nil }
        return String(cString: cdnnl_nhwc_conv_impl(h.pointer)) + " × \(cdnnl_nhwc_conv_parts(h.pointer))"
        #else
        return nil
        #endif
    }

    #if canImport(CDNNL)
    /// The parts for `threads` threads, made on first use (`nil` if oneDNN refused).
    private func handle(threads: Int) -> ChannelsLastConvolutionHandle? {
        parts.withLock { cache -> ChannelsLastConvolutionHandle? in
            if let h = cache[threads] { return h }
            var p = params
            p.parts = Int32(threads)
            let made: OpaquePointer? = filter.withUnsafeBufferPointer { f in
                if let bias {
                    return bias.withUnsafeBufferPointer { b in cdnnl_nhwc_conv_create(&p, f.baseAddress!, b.baseAddress) }
                }
                return cdnnl_nhwc_conv_create(&p, f.baseAddress!, nil)
            }
            guard let made else { return nil }
            let h = ChannelsLastConvolutionHandle(made)
            cache[threads] = h
            return h
        }
    }
    #endif
}

/// A conversion of `[N, C, H, W]` tensors between NCHW and channels-last order (`[N, H, W, C]`),
/// prepared once per shape: oneDNN reorders split like ``ChannelsLastConvolution`` (images, else
/// rows), run on CAMKit's threads.
public final class ChannelsLastConversion: Sendable {
    /// The logical `[N, C, H, W]` shape converted.
    public let shape: [Int]
    /// `true`: NCHW → channels-last; `false`: channels-last → NCHW.
    public let toChannelsLast: Bool
    #if canImport(CDNNL)
    private let parts = Mutex<[Int: LayoutReorderHandle]>([:])
    #endif

    /// Prepares the conversion, or returns `nil` when oneDNN is unavailable
    /// (``ChannelsLastConvolution/isAvailable``) or refuses.
    /// - Parameters:
    ///   - shape: the logical `[N, C, H, W]` shape (every extent positive).
    ///   - toChannelsLast: the direction.
    public init?(shape: [Int], toChannelsLast: Bool) {
        self.shape = shape
        self.toChannelsLast = toChannelsLast
        #if canImport(CDNNL)
        guard ChannelsLastConvolution.isAvailable, shape.count == 4, shape.allSatisfy({ $0 > 0 }),
              handle(threads: ComputeSettings.threadCount) != nil else { return nil }
        #else
        return nil
        #endif
    }

    /// The converted tensor (`[N, H, W, C]` from `[N, C, H, W]` or back), or `nil` if oneDNN failed.
    /// - Precondition: `input` has the source shape of this conversion.
    public func callAsFunction(_ input: Tensor) -> Tensor? {
        let last = ChannelsLastConvolution.channelsLastShape(shape)
        precondition(input.shape == (toChannelsLast ? shape : last),
                     "ChannelsLastConversion: input \(input.shape), prepared for \(toChannelsLast ? shape : last)")
        #if canImport(CDNNL)
        guard let handle = handle(threads: ComputeSettings.threadCount) else { return nil }
        let pointer = handle.pointer
        var output = Tensor(uninitializedShape: toChannelsLast ? last : shape)
        let done = input.withUnsafeBufferPointer { x in
            output.withUnsafeMutableBufferPointer { y in
                let xp = x.baseAddress, yp = y.baseAddress
                return runParts(Int(cdnnl_layout_reorder_parts(pointer))) { cdnnl_layout_reorder_run(pointer, $0, xp, yp) }
            }
        }
        return done ? output : nil
        #else
        return nil
        #endif
    }

    #if canImport(CDNNL)
    private func handle(threads: Int) -> LayoutReorderHandle? {
        parts.withLock { cache -> LayoutReorderHandle? in
            if let h = cache[threads] { return h }
            let t = Int32(threads)
            guard let made = cdnnl_layout_reorder_create(Int64(shape[0]), Int64(shape[1]), Int64(shape[2]),
                                                         Int64(shape[3]), toChannelsLast ? 1 : 0, t) else { return nil }
            let h = LayoutReorderHandle(made)
            cache[threads] = h
            return h
        }
    }
    #endif
}

/// Runs parts `0..<count` of a prepared oneDNN object (`part` returns its C status) on the worker
/// threads; `false` if any part failed.
func runParts(_ count: Int, _ part: (Int32) -> Int32) -> Bool {
    let failed = Atomic<Bool>(false)
    parallelFor(count) { range in
        for p in range where part(Int32(p)) != 0 { failed.store(true, ordering: .relaxed) }
    }
    return !failed.load(ordering: .relaxed)
}

#if canImport(CDNNL)
/// oneDNN's CPU engine, made once (the same engine as ``PreparedConvolution``'s).
private let channelsLastDNNLAvailable: Bool = cdnnl_init() == 0

/// Owns one `cdnnl_nhwc_conv` (its parts' primitives and reordered filters).
private final class ChannelsLastConvolutionHandle: @unchecked Sendable {
    // Immutable after creation; oneDNN primitives may be executed from several threads at once.
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
    deinit { cdnnl_nhwc_conv_destroy(pointer) }
}

/// Owns one `cdnnl_layout_reorder`.
private final class LayoutReorderHandle: @unchecked Sendable {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
    deinit { cdnnl_layout_reorder_destroy(pointer) }
}
#endif
