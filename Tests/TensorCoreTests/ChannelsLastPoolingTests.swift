import Testing
@testable import TensorCore

// Tests of channelsLastMaxPool2D and channelsLastMaxPool2DPullback (ChannelsLastPooling.swift,
// CKernels `ck_maxpool2d_nhwc`, `ck_maxpool2d_nhwc_backward`) against the NCHW kernels whose
// semantics they must reproduce (maxPool2D, maxPool2DIndices, maxPool2DPullback in Pooling.swift,
// themselves tested against the scalar definition in MaxPoolKernelTests.swift), with the tensors
// transposed NCHW ↔ NHWC: on every instruction set and 1–3 threads, for ResNet's stem pool, 2×2
// stride 2, ceil mode, asymmetric padding, dilations, padding at least as large as the kernel
// (windows without input taps), windows of more than 256 and of more than 65 536 elements,
// batches 1 and 3, channel counts that exercise every channel block of the kernels (32, 16 and
// the scalar tail: 5, 17, 33, 48, 64), and inputs with ties (a coarse grid of values, or a
// constant), NaN and ±inf.

private struct ChannelsLastPoolCase: CustomStringConvertible {
    var n = 1, c = 5, h = 9, w = 11
    var kernel = (3, 3), strides = (2, 2), dilations = (1, 1)
    var padding = Padding2D.symmetric(height: 1, width: 1)
    var ceilMode = false
    var description: String {
        "n\(n) c\(c) \(h)x\(w) k\(kernel) s\(strides) d\(dilations) p\(padding) ceil \(ceilMode)"
    }
}

private let channelsLastPoolCases: [ChannelsLastPoolCase] = [
    // ResNet's stem pool (3×3, stride 2, padding 1), batch 3 and 1; large enough to split over 3 threads.
    ChannelsLastPoolCase(n: 3, c: 17, h: 23, w: 21),
    ChannelsLastPoolCase(n: 1, c: 64, h: 30, w: 28),
    ChannelsLastPoolCase(n: 3, c: 5, h: 12, w: 37, kernel: (2, 2), strides: (2, 2), padding: .zero),
    ChannelsLastPoolCase(n: 1, c: 48, h: 14, w: 15, padding: Padding2D(top: 0, left: 0, bottom: 1, right: 1),
                         ceilMode: true),
    ChannelsLastPoolCase(n: 3, c: 17, h: 10, w: 21, kernel: (3, 2), strides: (1, 1),
                         padding: Padding2D(top: 0, left: 1, bottom: 2, right: 0)),
    ChannelsLastPoolCase(n: 1, c: 33, h: 13, w: 29, kernel: (3, 3), strides: (3, 2), dilations: (2, 3),
                         padding: .symmetric(height: 2, width: 2), ceilMode: true),
    ChannelsLastPoolCase(n: 3, c: 5, h: 11, w: 9, kernel: (3, 3), strides: (1, 1), dilations: (2, 2),
                         padding: .symmetric(height: 2, width: 2)),
    // Padding ≥ kernel: windows in the padding only.
    ChannelsLastPoolCase(n: 3, c: 5, h: 5, w: 7, kernel: (2, 2), strides: (1, 1), padding: .symmetric(height: 2, width: 2)),
    // 17×17 = 289 elements per window: two-byte offsets.
    ChannelsLastPoolCase(n: 1, c: 17, h: 20, w: 22, kernel: (17, 17), strides: (4, 3), padding: .symmetric(height: 1, width: 2)),
    // 257×256 = 65 792 elements per window: four-byte offsets.
    ChannelsLastPoolCase(n: 1, c: 3, h: 258, w: 257, kernel: (257, 256), strides: (1, 1), padding: .zero),
]

/// The kinds of input: values on a coarse grid (many ties), the same with NaN and ±inf sprinkled
/// in, and a constant (every window one tie).
private enum PoolInputKind: CaseIterable { case grid, specials, constant }

private func channelsLastPoolInput(_ shape: [Int], _ kind: PoolInputKind, _ rng: inout TestRNG) -> Tensor {
    Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in
        if kind == .constant { return 0.5 }
        let r = Int.random(in: 0..<100, using: &rng)
        if kind == .specials && r == 0 { return .nan }
        if kind == .specials && r == 1 { return .infinity }
        if kind == .specials && r < 5 { return -.infinity }
        return Float(Int.random(in: -4...4, using: &rng)) / 4
    })
}

private func toNHWC(_ t: Tensor) -> Tensor { t.transposed(permutation: [0, 2, 3, 1]) }
private func toNCHW(_ t: Tensor) -> Tensor { t.transposed(permutation: [0, 3, 1, 2]) }

/// Equal element for element, a NaN matching a NaN (maxima are copies of inputs or -FLT_MAX).
private func sameValues(_ a: Tensor, _ b: Tensor) -> Bool {
    a.shape == b.shape && zip(a.scalars, b.scalars).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) }
}

@Test("channelsLastMaxPool2D and its pullback match the NCHW kernels (every ISA, 1–3 threads, ties, NaN, ±inf)",
      arguments: channelsLastPoolCases.indices)
func channelsLastMaxPoolMatchesNCHW(_ index: Int) {
    let cs = channelsLastPoolCases[index]
    var rng = TestRNG(seed: UInt64(2_600 + index))
    defer { ConvolutionTuning.kernelISA = -1 }
    let kinds: [PoolInputKind] = cs.kernel.0 * cs.kernel.1 > 1_000 ? [.specials] : PoolInputKind.allCases
    for kind in kinds {
        let x = channelsLastPoolInput([cs.n, cs.c, cs.h, cs.w], kind, &rng)
        let expectedY = maxPool2D(x, kernelSize: cs.kernel, strides: cs.strides, padding: cs.padding,
                                  dilations: cs.dilations, ceilMode: cs.ceilMode)
        let indices = maxPool2DIndices(x, kernelSize: cs.kernel, strides: cs.strides, padding: cs.padding,
                                       dilations: cs.dilations, ceilMode: cs.ceilMode).int64s
        let dy = shapingRandomTensor(expectedY.shape, &rng)
        let expectedDX = maxPool2DPullback(x, outputGradient: dy, kernelSize: cs.kernel, strides: cs.strides,
                                           padding: cs.padding, dilations: cs.dilations, ceilMode: cs.ceilMode)
        let xl = toNHWC(x), dyl = toNHWC(dy)
        let (oh, ow) = (expectedY.shape[2], expectedY.shape[3])
        for level in [0, 2, 3] {
            ConvolutionTuning.kernelISA = level
            for threads in [1, 2, 3] {
                let label = "ISA \(level), \(threads) threads, \(kind): \(cs)"
                let (recorded, plain, dx): ((output: Tensor, argmax: ChannelsLastMaxPoolArgmax?), Tensor, Tensor?) =
                    ComputeSettings.withThreadCount(threads) {
                        let recorded = channelsLastMaxPool2D(xl, kernelSize: cs.kernel, strides: cs.strides, padding: cs.padding,
                                                             dilations: cs.dilations, ceilMode: cs.ceilMode,
                                                             recordingArgmax: true)
                        let plain = channelsLastMaxPool2D(xl, kernelSize: cs.kernel, strides: cs.strides, padding: cs.padding,
                                                          dilations: cs.dilations, ceilMode: cs.ceilMode).output
                        let dx = recorded.argmax.map {
                            channelsLastMaxPool2DPullback(outputGradient: dyl, argmax: $0, inputShape: xl.shape)
                        }
                        return (recorded, plain, dx)
                    }
                // Maxima are copies of inputs (or -FLT_MAX): exact.
                #expect(recorded.output.shape == [cs.n, oh, ow, cs.c], "\(label)")
                #expect(sameValues(toNCHW(recorded.output), expectedY), "forward, \(label)")
                #expect(sameValues(toNCHW(plain), expectedY), "forward without argmax, \(label)")
                guard let argmax = recorded.argmax, let dx else {
                    Issue.record("no argmax recorded, \(label)")
                    continue
                }
                #expect(argmax.bytesPerOffset == (cs.kernel.0 * cs.kernel.1 <= 256 ? 1 : (cs.kernel.0 * cs.kernel.1 <= 65_536 ? 2 : 4)))
                #expect(argmax.inputShape == xl.shape && argmax.outputShape == recorded.output.shape)
                // The winners: the window offsets, as flat NCHW input indices, are maxPool2DIndices'.
                let offsets = argmax.windowOffsets
                var winnersAgree = true
                for n in 0..<cs.n {
                    for oy in 0..<oh {
                        for ox in 0..<ow {
                            for c in 0..<cs.c {
                                let expected = indices[((n * cs.c + c) * oh + oy) * ow + ox]
                                if expected < 0 { continue }  // no input tap: no winner
                                let k = offsets[((n * oh + oy) * ow + ox) * cs.c + c]
                                let iy = oy * cs.strides.0 - cs.padding.top + (k / cs.kernel.1) * cs.dilations.0
                                let ix = ox * cs.strides.1 - cs.padding.left + (k % cs.kernel.1) * cs.dilations.1
                                if Int64(((n * cs.c + c) * cs.h + iy) * cs.w + ix) != expected { winnersAgree = false }
                            }
                        }
                    }
                }
                #expect(winnersAgree, "argmax, \(label)")
                // The pullback adds the same gradients in the same order (windows by output row,
                // then column, starting from zero) as maxPool2DPullback: bit for bit equal.
                #expect(toNCHW(dx) == expectedDX, "pullback, \(label)")
            }
        }
    }
}

@Test("channelsLastMaxPool2D without argmax returns nil; empty inputs and windows in the padding only")
func channelsLastMaxPoolEdgeCases() {
    var rng = TestRNG(seed: 2_700)
    let x = channelsLastPoolInput([2, 6, 5, 3], .grid, &rng)
    let plain = channelsLastMaxPool2D(x, kernelSize: (3, 3), strides: (2, 2), padding: .symmetric(height: 1, width: 1))
    #expect(plain.argmax == nil)
    #expect(plain.output.shape == [2, 3, 3, 3])

    // H = 0 with padding: one row of windows, each in the padding only (-FLT_MAX, as maxPool2D);
    // the gradient of an empty input is empty.
    let empty = Tensor(zeros: [2, 0, 3, 4])
    let pooled = channelsLastMaxPool2D(empty, kernelSize: (2, 2), strides: (1, 1), padding: .symmetric(height: 1, width: 1),
                                       recordingArgmax: true)
    let reference = maxPool2D(toNCHW(empty), kernelSize: (2, 2), strides: (1, 1), padding: .symmetric(height: 1, width: 1))
    #expect(pooled.output.shape == [2, 1, 4, 4])
    #expect(toNCHW(pooled.output) == reference)
    if let argmax = pooled.argmax {
        let dx = channelsLastMaxPool2DPullback(outputGradient: Tensor(repeating: 1, shape: [2, 1, 4, 4]), argmax: argmax,
                                               inputShape: [2, 0, 3, 4])
        #expect(dx.shape == [2, 0, 3, 4])
    } else {
        Issue.record("no argmax recorded")
    }

    // No windows at all (input smaller than the kernel, no padding): empty output, zero gradient.
    let small = channelsLastPoolInput([1, 2, 2, 5], .grid, &rng)
    let none = channelsLastMaxPool2D(small, kernelSize: (3, 3), strides: (1, 1), padding: .zero, recordingArgmax: true)
    #expect(none.output.shape == [1, 0, 0, 5])
    if let argmax = none.argmax {
        let dx = channelsLastMaxPool2DPullback(outputGradient: Tensor(zeros: [1, 0, 0, 5]), argmax: argmax,
                                               inputShape: [1, 2, 2, 5])
        #expect(dx == Tensor(zeros: [1, 2, 2, 5]))
    } else {
        Issue.record("no argmax recorded")
    }
}
