import Foundation
import Testing
@testable import TensorCore

// Tests of ChannelsLastConvolutionGradient (ChannelsLastConvolutionGradient.swift; oneDNN on
// Linux): the input gradient on channels-last tensors against
// - the definition of the input gradient of a convolution, computed in Double with plain loops
//   (dx[n,c,ih,iw] = Σ dy[n,o,oh,ow]·w[o,c−g·cg,kh,kw] over ih = oh·sh − top + kh·dh, …);
// - CAMKit's NCHW pullback (`conv2DPullback`) after transposing;
// - the adjoint identity ⟨conv(x), dy⟩ = ⟨x, convᵀ(dy)⟩ with ``ChannelsLastConvolution`` as the
//   forward (the convolution is linear in x, so this is the exact form of a finite-difference check).
// Every method (oneDNN backward-data primitives, GEMM + col2im, and for stride 1 the forward
// convolution with the flipped filter) on every case, overwriting and accumulating, with default
// and tiny tiles (several bands per image), both GEMM kernels, the AVX-512 and the portable C
// loops, batch 1 and 3, 1–3 threads (every way the work is split: images, bands of rows, positions).

private struct GradientCase: CustomStringConvertible {
    var n = 1, c = 16, h = 9, w = 11, o = 24, k = 3
    var strides = (1, 1)
    var padding = Padding2D.symmetric(height: 1, width: 1)
    var dilations = (1, 1)
    var groups = 1
    var description: String {
        "n\(n) c\(c) \(h)x\(w) o\(o) k\(k) s\(strides) p\(padding) d\(dilations) g\(groups)"
    }
}

private let gradientCases: [GradientCase] = [
    // 1×1 stride 1 (positions at batch 1; the GEMM method without col2im).
    GradientCase(n: 1, c: 24, h: 8, w: 7, o: 40, k: 1, padding: .zero),
    GradientCase(n: 3, c: 40, h: 5, w: 6, o: 24, k: 1, padding: .zero),
    // 3×3 pad 1, odd channel counts.
    GradientCase(n: 3),
    GradientCase(n: 1, c: 13, h: 10, w: 9, o: 19),
    // Stride 2: 1×1 (input rows no output reaches) and 3×3 with asymmetric padding.
    GradientCase(n: 1, c: 24, h: 9, w: 9, o: 40, k: 1, strides: (2, 2), padding: .zero),
    GradientCase(n: 3, c: 16, h: 13, w: 11, o: 32, strides: (2, 2), padding: Padding2D(top: 1, left: 0, bottom: 2, right: 1)),
    // Depthwise 3×3, and 5×5 stride 2 with TF-style padding.
    GradientCase(n: 1, c: 40, h: 14, w: 14, o: 40, groups: 40),
    GradientCase(n: 3, c: 24, h: 13, w: 13, o: 24, k: 5, strides: (2, 2),
                 padding: Padding2D(top: 1, left: 1, bottom: 2, right: 2), groups: 24),
    // A stem: 3 channels, 7×7 stride 2 pad 3 (the GEMM method by default).
    GradientCase(n: 1, c: 3, h: 23, w: 21, o: 32, k: 7, strides: (2, 2), padding: .symmetric(height: 3, width: 3)),
    GradientCase(n: 3, c: 3, h: 17, w: 18, o: 16, k: 7, strides: (2, 2), padding: .symmetric(height: 3, width: 3)),
    // EfficientNet-Lite0's stem: 3×3 stride 2 with TF "SAME" padding (bottom/right only).
    GradientCase(n: 2, c: 3, h: 14, w: 15, o: 32, k: 3, strides: (2, 2), padding: Padding2D(top: 0, left: 0, bottom: 1, right: 1)),
    // Dilation 2, and groups of 4 channels (the GEMM method by default, per group).
    GradientCase(n: 1, c: 8, h: 12, w: 10, o: 16, padding: .symmetric(height: 2, width: 2), dilations: (2, 2)),
    GradientCase(n: 3, c: 8, h: 9, w: 8, o: 16, groups: 2),
]

/// The definition, NCHW, in Double: `dx[n,c,ih,iw] = Σ dy[n,o,oh,ow] · w[o, c − g·cg, kh, kw]`.
private func referenceInputGradient(_ dy: Tensor, filter f: Tensor, inputShape: [Int], _ cs: GradientCase) -> [Double] {
    let (n, c, h, w) = (inputShape[0], inputShape[1], inputShape[2], inputShape[3])
    let (o, oh, ow) = (dy.shape[1], dy.shape[2], dy.shape[3])
    let (kh, kw) = (f.shape[2], f.shape[3])
    let cg = c / cs.groups, og = o / cs.groups
    let g = dy.scalars, fs = f.scalars
    var dx = [Double](repeating: 0, count: n * c * h * w)
    for b in 0..<n {
        for oc in 0..<o {
            let group = oc / og
            for i in 0..<oh {
                for j in 0..<ow {
                    let v = Double(g[((b * o + oc) * oh + i) * ow + j])
                    for ic in 0..<cg {
                        for ki in 0..<kh {
                            for kj in 0..<kw {
                                let yy = i * cs.strides.0 + ki * cs.dilations.0 - cs.padding.top
                                let xx = j * cs.strides.1 + kj * cs.dilations.1 - cs.padding.left
                                guard yy >= 0, yy < h, xx >= 0, xx < w else { continue }
                                dx[((b * c + group * cg + ic) * h + yy) * w + xx]
                                    += v * Double(fs[((oc * cg + ic) * kh + ki) * kw + kj])
                            }
                        }
                    }
                }
            }
        }
    }
    return dx
}

private func nhwc(_ t: Tensor) -> Tensor { t.transposed(permutation: [0, 2, 3, 1]) }
private func nchw(_ t: Tensor) -> Tensor { t.transposed(permutation: [0, 3, 1, 2]) }

@Test("ChannelsLastConvolutionGradient matches the definition: every method and split, accumulating too",
      arguments: gradientCases.indices)
func channelsLastGradientMatchesDefinition(_ index: Int) throws {
    #if os(Linux)
    guard ChannelsLastConvolution.isAvailable else { return }
    let cs = gradientCases[index]
    var rng = TestRNG(seed: UInt64(900 + index))
    let inputShape = [cs.n, cs.c, cs.h, cs.w]
    let f = shapingRandomTensor([cs.o, cs.c / cs.groups, cs.k, cs.k], &rng)
    let automatic = try #require(ChannelsLastConvolutionGradient(
        inputShape: inputShape, filter: f, strides: cs.strides, padding: cs.padding, dilations: cs.dilations,
        groups: cs.groups), "refused \(cs)")
    let dy = shapingRandomTensor(automatic.outputShape, &rng)
    let residual = shapingRandomTensor(inputShape, &rng)
    let expected = referenceInputGradient(dy, filter: f, inputShape: inputShape, cs)
    let expectedSum = zip(expected, residual.scalars).map { $0 + Double($1) }
    var variants: [(String, ChannelsLastConvolutionGradient)] = [("automatic", automatic)]
    // The forward on the flipped filter: stride 1 only.
    if cs.strides == (1, 1) {
        let g = try #require(ChannelsLastConvolutionGradient(
            inputShape: inputShape, filter: f, strides: cs.strides, padding: cs.padding, dilations: cs.dilations,
            groups: cs.groups, method: .flippedForward, gemmKernel: .oneDNN, tileElements: 0), "flipped refused \(cs)")
        variants.append(("flipped forward", g))
    } else {
        #expect(ChannelsLastConvolutionGradient(
            inputShape: inputShape, filter: f, strides: cs.strides, padding: cs.padding, dilations: cs.dilations,
            groups: cs.groups, method: .flippedForward, gemmKernel: .oneDNN, tileElements: 0) == nil)
    }
    typealias Gradient = ChannelsLastConvolutionGradient
    let configurations: [(Gradient.Method, Gradient.GEMMKernel, Int, Bool)] = [
        (.dnnl, .oneDNN, 0, false), (.dnnl, .oneDNN, 97, false), (.dnnl, .oneDNN, 97, true),
        (.gemm, .oneDNN, 0, false), (.gemm, .oneDNN, 97, false), (.gemm, .blas, 0, false), (.gemm, .oneDNN, 0, true),
    ]
    for (method, kernel, tile, portable) in configurations {
        let g = try #require(Gradient(
            inputShape: inputShape, filter: f, strides: cs.strides, padding: cs.padding, dilations: cs.dilations,
            groups: cs.groups, method: method, gemmKernel: kernel, tileElements: tile, portableKernels: portable),
            "\(method) refused \(cs)")
        variants.append(("\(method) \(kernel) tile \(tile)\(portable ? " portable" : "")", g))
    }
    for (name, gradient) in variants {
        for threads in [1, 2, 3] {
            try ComputeSettings.withThreadCount(threads) {
                let what = "\(cs), \(name), \(threads) threads, \(gradient.implementationDescription ?? "?")"
                let dx = try #require(gradient(nhwc(dy)), "\(what)")
                #expect(dx.shape == [cs.n, cs.h, cs.w, cs.c])
                // Float32 sums of at most a few hundred products: relative L2 error ~1e-7.
                #expect(relativeError(nchw(dx).scalars, expected) <= 1e-5, "\(what)")
                var sum = nhwc(residual)
                let kept = sum  // a second reference: the sum must copy, not write into `kept`
                #expect(gradient(nhwc(dy), accumulatingInto: &sum), "\(what)")
                #expect(kept == nhwc(residual), "the other holder of the accumulated tensor was written (\(what))")
                #expect(relativeError(nchw(sum).scalars, expectedSum) <= 1e-5, "accumulating, \(what)")
            }
        }
    }
    #endif
}

@Test("ChannelsLastConvolutionGradient agrees with the NCHW pullback and is the adjoint of ChannelsLastConvolution",
      arguments: gradientCases.indices)
func channelsLastGradientIsTheAdjoint(_ index: Int) throws {
    #if os(Linux)
    guard ChannelsLastConvolution.isAvailable else { return }
    let cs = gradientCases[index]
    var rng = TestRNG(seed: UInt64(1900 + index))
    let x = shapingRandomTensor([cs.n, cs.c, cs.h, cs.w], &rng)
    let f = shapingRandomTensor([cs.o, cs.c / cs.groups, cs.k, cs.k], &rng)
    let gradient = try #require(ChannelsLastConvolutionGradient(
        inputShape: x.shape, filter: f, strides: cs.strides, padding: cs.padding, dilations: cs.dilations,
        groups: cs.groups), "refused \(cs)")
    let conv = try #require(ChannelsLastConvolution(
        inputShape: x.shape, filter: f, strides: cs.strides, padding: cs.padding, dilations: cs.dilations,
        groups: cs.groups), "forward refused \(cs)")
    let dy = shapingRandomTensor(gradient.outputShape, &rng)
    let dx = try ComputeSettings.withThreadCount(2) { try #require(gradient(nhwc(dy))) }
    let pullback = conv2DPullback(x, filter: f, outputGradient: dy, strides: cs.strides, padding: cs.padding,
                                  dilations: cs.dilations, groups: cs.groups, needFilter: false, needBias: false)
    let expected = try #require(pullback.input)
    #expect(relativeError(nchw(dx).scalars, expected.scalars.map(Double.init)) <= 1e-5, "\(cs)")
    // ⟨conv(x), dy⟩ = ⟨x, dx⟩, each side summed in Double.
    let y = try #require(conv(nhwc(x)))
    let lhs = testDot(y, nhwc(dy)), rhs = testDot(nhwc(x), dx)
    let scale = zip(y.scalars, nhwc(dy).scalars).reduce(0) { $0 + abs(Double($1.0) * Double($1.1)) }
    #expect(abs(lhs - rhs) <= 1e-5 * scale, "\(cs): ⟨conv(x), dy⟩ = \(lhs), ⟨x, dx⟩ = \(rhs)")
    #endif
}

@Test("ChannelsLastConvolutionGradient refuses inconsistent shapes instead of crashing")
func channelsLastGradientRefusesBadShapes() {
    #if os(Linux)
    guard ChannelsLastConvolution.isAvailable else { return }
    let f = Tensor(zeros: [8, 3, 3, 3])
    #expect(ChannelsLastConvolutionGradient(inputShape: [1, 4, 8, 8], filter: f, padding: .symmetric(height: 1, width: 1)) == nil)
    #expect(ChannelsLastConvolutionGradient(inputShape: [1, 3, 8], filter: f) == nil)
    #expect(ChannelsLastConvolutionGradient(inputShape: [1, 3, 2, 2], filter: f) == nil)  // kernel larger than the input
    #expect(ChannelsLastConvolutionGradient(inputShape: [1, 3, 8, 8], filter: f, groups: 2) == nil)
    #endif
}
