import Foundation
import Testing
@testable import TensorCore

// Tests of the SIMD max-pooling kernels behind maxPool2D / maxPool2DPullback (Pooling.swift,
// CKernels `ck_maxpool2d`, `ck_maxpool2d_backward`) on every instruction set and for 1–3
// threads, against the scalar definition written out below (ONNX MaxPool; PyTorch's CPU
// `max_pool2d_with_indices` for the winner: the first NaN, else the first maximum in scan order;
// a window without input taps yields -FLT_MAX as in ONNX Runtime). Inputs include ties (values
// rounded to a coarse grid), NaN, +inf and -inf, windows in the padding only, ceil mode,
// dilations and strides 1–3, and rows longer than one vector (tails).

private struct MaxPoolCase: CustomStringConvertible {
    var n = 1, c = 3, h = 9, w = 11
    var kernel = (3, 3), strides = (2, 2), dilations = (1, 1)
    var padding = Padding2D.symmetric(height: 1, width: 1)
    var ceilMode = false
    var description: String {
        "n\(n) c\(c) \(h)x\(w) k\(kernel) s\(strides) d\(dilations) p\(padding) ceil \(ceilMode)"
    }
}

private let maxPoolCases: [MaxPoolCase] = [
    MaxPoolCase(n: 2, c: 3, h: 40, w: 45),                                                    // ResNet stem pool
    MaxPoolCase(h: 12, w: 37, kernel: (2, 2), strides: (2, 2), padding: .zero),
    MaxPoolCase(h: 10, w: 21, kernel: (3, 2), strides: (1, 1), padding: Padding2D(top: 0, left: 1, bottom: 2, right: 0)),
    MaxPoolCase(h: 13, w: 29, kernel: (3, 3), strides: (3, 2), dilations: (2, 3), padding: .symmetric(height: 2, width: 2),
                ceilMode: true),
    MaxPoolCase(h: 5, w: 7, kernel: (2, 2), strides: (1, 1), padding: .symmetric(height: 2, width: 2)),  // pad ≥ kernel
    MaxPoolCase(h: 8, w: 50, kernel: (3, 3), strides: (2, 2), padding: Padding2D(top: 0, left: 0, bottom: 1, right: 1),
                ceilMode: true),
]

/// Values on a coarse grid (many ties) with a few NaN and infinities sprinkled in.
private func poolInput(_ shape: [Int], _ rng: inout TestRNG, specials: Bool) -> Tensor {
    Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in
        let r = Int.random(in: 0..<100, using: &rng)
        if specials && r == 0 { return .nan }
        if specials && r == 1 { return .infinity }
        if specials && r < 5 { return -.infinity }
        return Float(Int.random(in: -4...4, using: &rng)) / 4
    })
}

/// The scalar definition: per window, the maximum (NaN if any tap is NaN, -FLT_MAX with no
/// taps or only -inf taps) and the winner (first NaN, else first maximum; the first input tap
/// when every tap is -inf).
private func naiveMaxPool(_ x: Tensor, _ dy: Tensor?, _ cs: MaxPoolCase) -> (y: [Float], dx: [Double]) {
    let xs = x.scalars
    let oh = poolingOutputSize(input: cs.h, kernel: cs.kernel.0, stride: cs.strides.0, dilation: cs.dilations.0,
                               padBegin: cs.padding.top, padEnd: cs.padding.bottom, ceilMode: cs.ceilMode)
    let ow = poolingOutputSize(input: cs.w, kernel: cs.kernel.1, stride: cs.strides.1, dilation: cs.dilations.1,
                               padBegin: cs.padding.left, padEnd: cs.padding.right, ceilMode: cs.ceilMode)
    var y = [Float](repeating: 0, count: cs.n * cs.c * oh * ow)
    var dx = [Double](repeating: 0, count: xs.count)
    let gs = dy?.scalars
    for plane in 0..<(cs.n * cs.c) {
        for oy in 0..<oh {
            for ox in 0..<ow {
                var best = -Float.greatestFiniteMagnitude, sawNaN = false
                var winner = -1, winnerValue: Float = 0
                for ki in 0..<cs.kernel.0 {
                    let iy = oy * cs.strides.0 + ki * cs.dilations.0 - cs.padding.top
                    guard iy >= 0, iy < cs.h else { continue }
                    for kj in 0..<cs.kernel.1 {
                        let ix = ox * cs.strides.1 + kj * cs.dilations.1 - cs.padding.left
                        guard ix >= 0, ix < cs.w else { continue }
                        let index = (plane * cs.h + iy) * cs.w + ix
                        let v = xs[index]
                        if v.isNaN { sawNaN = true } else { best = max(best, v) }
                        if winner < 0 || v > winnerValue || (v.isNaN && !winnerValue.isNaN) {
                            winner = index
                            winnerValue = v
                        }
                    }
                }
                let o = (plane * oh + oy) * ow + ox
                y[o] = sawNaN ? .nan : best
                if let gs, winner >= 0 { dx[winner] += Double(gs[o]) }
            }
        }
    }
    return (y, dx)
}

@Test("Max-pooling kernels match the scalar definition (every ISA, 1–3 threads, NaN, ±inf, ties)",
      arguments: maxPoolCases.indices)
func maxPoolKernels(_ index: Int) {
    let cs = maxPoolCases[index]
    var rng = TestRNG(seed: UInt64(1_300 + index))
    defer { ConvolutionTuning.kernelISA = -1 }
    for specials in [false, true] {
        let x = poolInput([cs.n, cs.c, cs.h, cs.w], &rng, specials: specials)
        let shape = maxPool2D(x, kernelSize: cs.kernel, strides: cs.strides, padding: cs.padding,
                              dilations: cs.dilations, ceilMode: cs.ceilMode).shape
        let dy = Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in Float.random(in: -1...1, using: &rng) })
        let (expectedY, expectedDX) = naiveMaxPool(x, dy, cs)
        for level in [0, 2, 3] {
            ConvolutionTuning.kernelISA = level
            for threads in [1, 2, 3] {
                let (y, dx) = ComputeSettings.withThreadCount(threads) {
                    (maxPool2D(x, kernelSize: cs.kernel, strides: cs.strides, padding: cs.padding,
                               dilations: cs.dilations, ceilMode: cs.ceilMode),
                     maxPool2DPullback(x, outputGradient: dy, kernelSize: cs.kernel, strides: cs.strides,
                                       padding: cs.padding, dilations: cs.dilations, ceilMode: cs.ceilMode))
                }
                // Maxima are copies of inputs: exact (NaN matched as NaN).
                let sameY = zip(y.scalars, expectedY).allSatisfy { a, e in a == e || (a.isNaN && e.isNaN) }
                #expect(sameY, "forward, ISA \(level), \(threads) threads, specials \(specials): \(cs)")
                // Each input sums at most kernel-area gradients: Float rounding only.
                let sameDX = zip(dx.scalars, expectedDX).allSatisfy { a, e in abs(Double(a) - e) <= 1e-6 * max(1, abs(e)) }
                #expect(sameDX, "pullback, ISA \(level), \(threads) threads, specials \(specials): \(cs)")
            }
        }
    }
}
