import Foundation
import Testing
@testable import TensorCore

// Tests of ChannelsLastConvolution and ChannelsLastConversion (ChannelsLastConvolution.swift;
// oneDNN on Linux): outputs against the definition of the convolution computed in Double with
// plain loops (followed by the residual sum and the second activation where fused), for channel
// counts that are not multiples of 16, strides, padding, depthwise and 1×1 convolutions, batch 1
// and 3, and 1, 2 and 3 threads (every way the work is split: images, output rows, positions).

private struct ChannelsLastCase: CustomStringConvertible {
    var n = 1, c = 24, h = 9, w = 11, o = 40, k = 3
    var strides = (1, 1)
    var padding = Padding2D.symmetric(height: 1, width: 1)
    var groups = 1
    var bias = true
    var activation = FusedActivation.none
    var accumulate = false
    var post = FusedActivation.none
    var description: String {
        "n\(n) c\(c) \(h)x\(w) o\(o) k\(k) s\(strides) p\(padding) g\(groups) \(activation) sum \(accumulate) \(post)"
    }
}

private let channelsLastCases: [ChannelsLastCase] = [
    ChannelsLastCase(),
    ChannelsLastCase(n: 3, bias: false, activation: .relu),
    // 1×1 (split by positions at batch 1), expand and project as in an MBConv block.
    ChannelsLastCase(c: 24, o: 144, k: 1, padding: .zero, activation: .clip(min: 0, max: 6)),
    ChannelsLastCase(n: 3, c: 40, o: 24, k: 1, padding: .zero, accumulate: true),
    // Depthwise 3×3 and 5×5, stride 2 with TF-style asymmetric padding.
    ChannelsLastCase(c: 40, h: 14, w: 14, o: 40, groups: 40, activation: .clip(min: 0, max: 6)),
    ChannelsLastCase(n: 3, c: 24, h: 13, w: 13, o: 24, k: 5, strides: (2, 2),
                     padding: Padding2D(top: 1, left: 1, bottom: 2, right: 2), groups: 24, activation: .relu),
    // k×k stride 2 (a stem), residual sum followed by ReLU (ResNet's conv → Add → Relu).
    ChannelsLastCase(c: 3, h: 17, w: 15, o: 32, strides: (2, 2), padding: Padding2D(top: 0, left: 0, bottom: 1, right: 1),
                     activation: .clip(min: 0, max: 6)),
    ChannelsLastCase(n: 1, c: 16, h: 7, w: 7, o: 16, accumulate: true, post: .relu),
    ChannelsLastCase(n: 3, c: 40, h: 5, w: 5, o: 24, k: 1, strides: (2, 2), padding: .zero, accumulate: true, post: .relu),
]

/// The definition, NCHW: `y = post(act(b[o] + Σ x·w) + residual)` (residual and post only when
/// accumulating).
private func naive(_ x: Tensor, _ f: Tensor, _ b: Tensor?, _ residual: Tensor?, _ cs: ChannelsLastCase) -> [Double] {
    let y = referenceConvolution(x, filter: f, bias: b, strides: cs.strides, padding: cs.padding, groups: cs.groups,
                                 activation: cs.activation)
    guard let rs = residual?.scalars else { return y }
    return zip(y, rs).map { testActivate($0 + Double($1), cs.post) }
}

private func nhwc(_ t: Tensor) -> Tensor { t.transposed(permutation: [0, 2, 3, 1]) }

@Test("ChannelsLastConvolution matches the definition for every thread split", arguments: channelsLastCases.indices)
func channelsLastConvolutionMatchesDefinition(_ index: Int) throws {
    #if os(Linux)
    guard ChannelsLastConvolution.isAvailable else { return }
    let cs = channelsLastCases[index]
    var rng = TestRNG(seed: UInt64(300 + index))
    let x = shapingRandomTensor([cs.n, cs.c, cs.h, cs.w], &rng)
    let f = shapingRandomTensor([cs.o, cs.c / cs.groups, cs.k, cs.k], &rng)
    let b = cs.bias ? shapingRandomTensor([cs.o], &rng) : nil
    let conv = try #require(ChannelsLastConvolution(
        inputShape: x.shape, filter: f, bias: b, strides: cs.strides, padding: cs.padding, groups: cs.groups,
        activation: cs.activation, accumulating: cs.accumulate, activationAfterSum: cs.post), "oneDNN refused \(cs)")
    let residual = cs.accumulate ? shapingRandomTensor(conv.outputShape, &rng) : nil
    let expected = naive(x, f, b, residual, cs)
    for threads in [1, 2, 3] {
        let y: Tensor = try ComputeSettings.withThreadCount(threads) {
            if let residual {
                var y = nhwc(residual)
                let kept = y  // a second reference: the sum must copy, not write into `kept`
                let succeeded = conv(nhwc(x), accumulatingInto: &y)
                #expect(succeeded, "\(cs), \(threads) threads")
                #expect(kept == nhwc(residual), "the residual's other holder was written (\(cs))")
                return y
            }
            return try #require(conv(nhwc(x)), "\(cs), \(threads) threads")
        }
        #expect(y.shape == [conv.outputShape[0], conv.outputShape[2], conv.outputShape[3], conv.outputShape[1]])
        let got = y.transposed(permutation: [0, 3, 1, 2]).scalars
        var error = 0.0, norm = 0.0
        for (a, e) in zip(got, expected) {
            error += (Double(a) - e) * (Double(a) - e)
            norm += e * e
        }
        // Float32 sums of at most a few hundred products (plus one residual add): relative L2
        // error ~1e-7; 1e-5 leaves two orders of magnitude.
        #expect((error / max(norm, 1e-30)).squareRoot() <= 1e-5, "\(cs), \(threads) threads, \(conv.implementationDescription ?? "?")")
    }
    #endif
}

@Test("ChannelsLastConversion moves every element exactly, both ways", arguments: [[1, 3, 7, 5], [3, 40, 6, 9], [2, 1, 1, 1]])
func channelsLastConversionIsExact(_ shape: [Int]) throws {
    #if os(Linux)
    guard ChannelsLastConvolution.isAvailable else { return }
    var rng = TestRNG(seed: 77)
    let x = shapingRandomTensor(shape, &rng)
    let there = try #require(ChannelsLastConversion(shape: shape, toChannelsLast: true))
    let back = try #require(ChannelsLastConversion(shape: shape, toChannelsLast: false))
    for threads in [1, 2, 3] {
        try ComputeSettings.withThreadCount(threads) {
            let y = try #require(there(x))
            #expect(y == x.transposed(permutation: [0, 2, 3, 1]), "\(shape), \(threads) threads")
            let z = try #require(back(y))
            #expect(z == x, "\(shape), \(threads) threads")
        }
    }
    #endif
}
