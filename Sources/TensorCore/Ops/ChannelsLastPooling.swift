// Max pooling on channels-last (NHWC) tensors, forward with the winner of every window recorded,
// and its pullback from that record: what lets a channels-last region (ONNXGraph's
// ChannelsLastRegions) take in a MaxPool — ResNet's stem — in both directions.
//
// Semantics: exactly ``maxPool2D(_:kernelSize:strides:padding:dilations:ceilMode:)`` and
// ``maxPool2DPullback(_:outputGradient:kernelSize:strides:padding:dilations:ceilMode:)`` (Pooling.swift:
// ONNX MaxPool / PyTorch `max_pool2d`; window `(oy, ox)` covers input rows `oy·sh − top + ki·dh`,
// columns `ox·sw − left + kj·dw`; padded taps never win; a NaN in a window is its maximum; a
// window without input taps, or of −inf taps only, yields `-Float.greatestFiniteMagnitude`; the
// gradient goes to the first NaN of the window, else to its first maximum in scan order — PyTorch's
// CPU `max_pool2d_with_indices` rule), only with the channel as the innermost dimension.
//
// Kernels: CKernels' `ck_maxpool2d_nhwc` and `ck_maxpool2d_nhwc_backward` (AVX-512F / AVX2 / portable,
// chosen at run time), vectorised along the channels, which are contiguous in NHWC.
// - The forward computes, per window and per block of channels, the running maximum and the
//   running winner in registers, and stores the winner as its window offset `ki · kw + kj` — one
//   byte per output element for windows of up to 256 elements (two bytes up to 65 536, else four).
// - The pullback is a gather, not a scatter: each input pixel sums the output gradients of the
//   windows that contain it and whose recorded winner it is, in the order maxPool2DPullback adds
//   them (windows by output row, then column), so the results are bit for bit the same. Every
//   element of the input gradient is written exactly once (no zero fill, no race between threads
//   with overlapping windows).
// - Threads: ``parallelFor`` over output rows `n · OH + oy` (forward) and input rows `n · H + iy`
//   (pullback), so the work splits across images, and across rows of one image when the batch is
//   smaller than the thread count.
//
// A channels-last tensor is a ``Tensor`` of shape `[N, H, W, C]` (row-major, so its memory is NHWC).

import CKernels

/// Which element of each pooling window was the maximum (per output element and channel), recorded
/// by ``channelsLastMaxPool2D(_:kernelSize:strides:padding:dilations:ceilMode:recordingArgmax:)``
/// with `recordingArgmax: true` for ``channelsLastMaxPool2DPullback(outputGradient:argmax:inputShape:)``.
///
/// Storage: one window offset `ki · kernelWidth + kj` per output element `[N, OH, OW, C]`, as an
/// unsigned integer of ``bytesPerOffset`` bytes: 1 for windows of at most 256 elements (a 3×3 pool
/// records a quarter of its output's size), 2 for at most 65 536, else 4. A window without any
/// input tap records 0 (it has no winner; the pullback never reads it). The record is immutable
/// and can be shared between threads.
public struct ChannelsLastMaxPoolArgmax: Sendable {
    /// The channels-last input shape `[N, H, W, C]` of the pooling that recorded it.
    public let inputShape: [Int]
    /// The channels-last output shape `[N, OH, OW, C]`.
    public let outputShape: [Int]
    /// The size in bytes of one recorded window offset: 1, 2 or 4.
    public let bytesPerOffset: Int
    /// The C kernels' description of the pooling (`C` = channels).
    let geometry: ChannelsLastPoolGeometry
    /// `outputShape`'s element count × ``bytesPerOffset`` bytes (pooled, 64-byte aligned).
    let storage: TensorStorage

    /// The recorded window offsets `ki · kernelWidth + kj`, in the order of the output's elements
    /// (`[N, OH, OW, C]`, row-major). For tests and inspection; the pullback reads the compact
    /// storage directly.
    public var windowOffsets: [Int] {
        let count = outputShape.reduce(1, *)
        let raw = UnsafeRawPointer(storage.pointer)
        switch bytesPerOffset {
        case 1:
            let p = raw.assumingMemoryBound(to: UInt8.self)
            return (0..<count).map { Int(p[$0]) }
        case 2:
            let p = raw.assumingMemoryBound(to: UInt16.self)
            return (0..<count).map { Int(p[$0]) }
        default:
            let p = raw.assumingMemoryBound(to: UInt32.self)
            return (0..<count).map { Int(p[$0]) }
        }
    }
}

/// The shapes of one channels-last pooling (internal).
struct ChannelsLastPoolGeometry: Sendable {
    let n, h, w, c: Int
    let kh, kw, sh, sw, dh, dw: Int
    let top, left: Int
    let oh, ow: Int

    init(input: [Int], kernelSize: (Int, Int), strides: (Int, Int), padding: Padding2D,
         dilations: (Int, Int), ceilMode: Bool) {
        precondition(input.count == 4, "channels-last pooling input must be [N, H, W, C], got shape \(input)")
        // The same pooling on the logical NCHW shape: its checks and output size.
        let g = Pool2DGeometry(input: [input[0], input[3], input[1], input[2]], kernelSize: kernelSize,
                               strides: strides, padding: padding, dilations: dilations, ceilMode: ceilMode)
        n = g.n; h = g.h; w = g.w; c = g.c
        kh = g.kh; kw = g.kw; sh = g.sh; sw = g.sw; dh = g.dh; dw = g.dw
        top = padding.top; left = padding.left
        oh = g.oh; ow = g.ow
        let limit = Int(Int32.max)
        precondition([h, w, c, kh * kw, sh, sw, (kh - 1) * dh + 1, (kw - 1) * dw + 1, top, left, oh, ow,
                      h + padding.top + padding.bottom, w + padding.left + padding.right].allSatisfy { $0 <= limit },
                     "channels-last pooling: an extent of input \(input), kernel \(kernelSize) or padding exceeds Int32")
    }

    var inputShape: [Int] { [n, h, w, c] }
    var outputShape: [Int] { [n, oh, ow, c] }

    /// The bytes of one recorded window offset (offsets run to `kh · kw − 1`).
    var bytesPerOffset: Int { kh * kw <= 1 << 8 ? 1 : (kh * kw <= 1 << 16 ? 2 : 4) }

    /// The C kernels' description.
    var cGeometry: ck_conv_geom {
        ck_conv_geom(C: Int32(c), H: Int32(h), W: Int32(w), KH: Int32(kh), KW: Int32(kw), SH: Int32(sh), SW: Int32(sw),
                     DH: Int32(dh), DW: Int32(dw), PT: Int32(top), PL: Int32(left), OH: Int32(oh), OW: Int32(ow))
    }

    /// Output rows (forward work items) per thread worth a hand-off (~16 K window taps, as maxPool2D).
    var forwardMinimumChunk: Int { max(1, 16_384 / max(1, ow * c * kh * kw)) }
    /// Input rows (pullback work items) per thread worth a hand-off.
    var pullbackMinimumChunk: Int { max(1, 16_384 / max(1, w * c * 4)) }
}

/// Max pooling of a channels-last tensor over its two spatial axes: the same numbers as
/// ``maxPool2D(_:kernelSize:strides:padding:dilations:ceilMode:)`` on the NCHW tensor, in NHWC.
///
/// - Parameters:
///   - input: `[N, H, W, C]`, Float32.
///   - kernelSize: window (height, width).
///   - strides, dilations: (vertical, horizontal).
///   - padding: explicit padding; padded positions never win the max.
///   - ceilMode: round the window count up (see ``poolingOutputSize(input:kernel:stride:dilation:padBegin:padEnd:ceilMode:)``).
///   - recordingArgmax: also record each window's winner for
///     ``channelsLastMaxPool2DPullback(outputGradient:argmax:inputShape:)``.
/// - Returns: `output` `[N, OH, OW, C]` (a window without input taps, or of −inf taps only, yields
///   `-Float.greatestFiniteMagnitude`; NaN propagates) and, when `recordingArgmax`, the winners:
///   per output element, the first NaN of its window if there is one, else the first maximum in
///   scan order (row by row, left to right) — the element ``maxPool2DPullback(_:outputGradient:kernelSize:strides:padding:dilations:ceilMode:)``
///   gives the gradient to. `argmax` is `nil` when not recorded.
/// - Precondition: `input` is rank 4 and Float32; kernel, strides and dilations are positive.
public func channelsLastMaxPool2D(_ input: Tensor, kernelSize: (Int, Int), strides: (Int, Int), padding: Padding2D,
                                  dilations: (Int, Int) = (1, 1), ceilMode: Bool = false,
                                  recordingArgmax: Bool = false) -> (output: Tensor, argmax: ChannelsLastMaxPoolArgmax?) {
    let geo = ChannelsLastPoolGeometry(input: input.shape, kernelSize: kernelSize, strides: strides, padding: padding,
                                       dilations: dilations, ceilMode: ceilMode)
    precondition(input.dtype == .float32, "channelsLastMaxPool2D: Float32 input expected, got \(input.dtype)")
    var output = Tensor(uninitializedShape: geo.outputShape)
    let outputCount = output.count
    let bytes = geo.bytesPerOffset
    let storage: TensorStorage? = recordingArgmax ? TensorStorage(byteCount: outputCount * bytes) : nil
    if outputCount > 0 {
        if input.count == 0 {
            // H or W is 0: every window lies in the padding only (no winner).
            output.withUnsafeMutableBufferPointer { $0.update(repeating: -Float.greatestFiniteMagnitude) }
            if let storage { storage.pointer.initializeMemory(as: UInt8.self, repeating: 0, count: outputCount * bytes) }
        } else {
            let argmaxPointer = storage?.pointer
            input.withUnsafeBufferPointer { xb in
                output.withUnsafeMutableBufferPointer { yb in
                    let x = xb.baseAddress!, y = yb.baseAddress!
                    withUnsafePointer(to: geo.cGeometry) { cg in
                        parallelFor(geo.n * geo.oh, minimumChunk: geo.forwardMinimumChunk) { rows in
                            let status = ck_maxpool2d_nhwc(x, y, argmaxPointer, Int32(bytes), cg,
                                                           rows.lowerBound, rows.upperBound)
                            precondition(status == 0, "channelsLastMaxPool2D: out of memory in the pooling kernel")
                        }
                    }
                }
            }
        }
    }
    let argmax = storage.map {
        ChannelsLastMaxPoolArgmax(inputShape: geo.inputShape, outputShape: geo.outputShape, bytesPerOffset: bytes,
                                  geometry: geo, storage: $0)
    }
    return (output, argmax)
}

/// The pullback of ``channelsLastMaxPool2D(_:kernelSize:strides:padding:dilations:ceilMode:recordingArgmax:)``
/// from its recorded argmax: each output gradient goes to its window's recorded winner, summed where
/// windows overlap — the same numbers, bit for bit, as ``maxPool2DPullback(_:outputGradient:kernelSize:strides:padding:dilations:ceilMode:)``
/// on the NCHW tensors (the sums are formed in the same order). The forward input is not needed.
///
/// - Parameters:
///   - outputGradient: `[N, OH, OW, C]`, Float32.
///   - argmax: the record of the forward pass.
///   - inputShape: the forward input's channels-last shape `[N, H, W, C]`.
/// - Returns: the input gradient `[N, H, W, C]` (zero where an element won no window).
/// - Precondition: `inputShape` and `outputGradient.shape` are those of the forward pass that
///   recorded `argmax`.
public func channelsLastMaxPool2DPullback(outputGradient: Tensor, argmax: ChannelsLastMaxPoolArgmax,
                                          inputShape: [Int]) -> Tensor {
    precondition(inputShape == argmax.inputShape,
                 "channelsLastMaxPool2DPullback: input shape \(inputShape), but the argmax was recorded for \(argmax.inputShape)")
    precondition(outputGradient.shape == argmax.outputShape,
                 "channelsLastMaxPool2DPullback: gradient \(outputGradient.shape), expected \(argmax.outputShape)")
    precondition(outputGradient.dtype == .float32,
                 "channelsLastMaxPool2DPullback: Float32 gradient expected, got \(outputGradient.dtype)")
    let geo = argmax.geometry
    if outputGradient.count == 0 { return Tensor(zeros: inputShape) }
    var dx = Tensor(uninitializedShape: inputShape)
    if dx.count == 0 { return dx }
    let bytes = Int32(argmax.bytesPerOffset)
    let record = UnsafeRawPointer(argmax.storage.pointer)
    outputGradient.withUnsafeBufferPointer { gb in
        dx.withUnsafeMutableBufferPointer { db in
            let dy = gb.baseAddress!, d = db.baseAddress!
            withUnsafePointer(to: geo.cGeometry) { cg in
                parallelFor(geo.n * geo.h, minimumChunk: geo.pullbackMinimumChunk) { rows in
                    let status = ck_maxpool2d_nhwc_backward(dy, record, bytes, d, cg,
                                                            rows.lowerBound, rows.upperBound)
                    precondition(status == 0, "channelsLastMaxPool2DPullback: out of memory in the pooling kernel")
                }
            }
        }
    }
    // Keep the record's storage alive until the kernels are done with its pointer.
    withExtendedLifetime(argmax) {}
    return dx
}
