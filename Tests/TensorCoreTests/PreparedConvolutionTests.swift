import Foundation
import Testing
@testable import TensorCore

// Tests of PreparedConvolution (Convolution.swift; oneDNN on Linux): its output against the
// definition of the convolution computed in Double with plain loops, for the shapes it accepts
// (k×k, groups, depthwise with small planes, strides, dilations, asymmetric padding, fused
// bias/activation) and for every way it splits work over threads (images, channel groups,
// output rows, output channels).

private struct PreparedCase: CustomStringConvertible {
    var n = 1, c = 8, h = 9, w = 11, o = 16, k = 3
    var strides = (1, 1), dilations = (1, 1)
    var padding = Padding2D.symmetric(height: 1, width: 1)
    var groups = 1
    var bias = true
    var activation = FusedActivation.none
    var description: String {
        "n\(n) c\(c) \(h)x\(w) o\(o) k\(k) s\(strides) d\(dilations) p\(padding) g\(groups) \(activation)"
    }
}

private let preparedCases: [PreparedCase] = [
    PreparedCase(),
    PreparedCase(n: 3, bias: false),
    PreparedCase(n: 2, c: 3, h: 20, w: 17, o: 5, k: 7, strides: (2, 2),
                 padding: Padding2D(top: 3, left: 2, bottom: 3, right: 4), activation: .relu),
    PreparedCase(h: 10, w: 10, strides: (2, 2), padding: Padding2D(top: 0, left: 0, bottom: 1, right: 1),
                 activation: .clip(min: 0, max: 6)),
    PreparedCase(dilations: (2, 2), padding: .symmetric(height: 2, width: 2)),
    PreparedCase(c: 8, o: 12, groups: 2),
    PreparedCase(c: 24, h: 14, w: 14, o: 24, groups: 24, activation: .clip(min: 0, max: 6)),
    PreparedCase(n: 2, c: 16, h: 13, w: 13, o: 16, k: 5, strides: (2, 2),
                 padding: Padding2D(top: 1, left: 1, bottom: 2, right: 2), groups: 16),
    PreparedCase(c: 4, h: 6, w: 6, o: 8, groups: 4),  // depthwise, channel multiplier 2
    PreparedCase(c: 40, h: 5, w: 5, o: 48),           // few rows: split by output channels
]

/// The definition (see ``referenceConvolution(_:filter:bias:strides:padding:dilations:groups:activation:)``).
private func naive(_ x: Tensor, _ f: Tensor, _ b: Tensor?, _ cs: PreparedCase) -> [Double] {
    referenceConvolution(x, filter: f, bias: b, strides: cs.strides, padding: cs.padding, dilations: cs.dilations,
                         groups: cs.groups, activation: cs.activation)
}

@Test("PreparedConvolution matches the definition for every thread split",
      arguments: preparedCases.indices)
func preparedConvolutionMatchesDefinition(_ index: Int) throws {
    #if os(Linux)
    guard ConvolutionBackend.current == .automatic else { return }
    let cs = preparedCases[index]
    var rng = TestRNG(seed: UInt64(100 + index))
    let x = shapingRandomTensor([cs.n, cs.c, cs.h, cs.w], &rng)
    let f = shapingRandomTensor([cs.o, cs.c / cs.groups, cs.k, cs.k], &rng)
    let b = cs.bias ? shapingRandomTensor([cs.o], &rng) : nil
    let expected = naive(x, f, b, cs)
    let prepared = try #require(PreparedConvolution(
        inputShape: x.shape, filter: f, bias: b, strides: cs.strides, padding: cs.padding,
        dilations: cs.dilations, groups: cs.groups, activation: cs.activation), "oneDNN refused \(cs)")
    for threads in [1, 2, 3] {
        let y = try #require(ComputeSettings.withThreadCount(threads) { prepared(x) }, "\(cs), \(threads) threads")
        #expect(y.shape == prepared.outputShape)
        let got = y.scalars
        var error = 0.0, norm = 0.0
        for (a, e) in zip(got, expected) {
            error += (Double(a) - e) * (Double(a) - e)
            norm += e * e
        }
        // Float32 sums of at most a few hundred products: relative L2 error ~1e-7.
        #expect((error / max(norm, 1e-30)).squareRoot() <= 1e-5, "\(cs), \(threads) threads")
    }
    #endif
}

@Test("PreparedConvolution leaves 1×1 convolutions to the GEMM path")
func preparedConvolutionDeclinesPointwise() {
    let f = Tensor(zeros: [8, 4, 1, 1])
    #expect(PreparedConvolution(inputShape: [1, 4, 8, 8], filter: f) == nil)
}
