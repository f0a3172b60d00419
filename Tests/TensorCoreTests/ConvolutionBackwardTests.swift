import Foundation
import Testing
@testable import TensorCore

// Tests of the input-gradient (backward-data) paths of Convolution.swift against the exact
// adjoint of the convolution's definition, accumulated in Double with plain loops:
// - the depthwise C kernel's gather form (stride 1 through the forward plane kernel with the
//   rotated filter; polyphase for strides > 1) on every instruction set, with strides 1–3,
//   dilations, asymmetric and over-large padding, channel multipliers 1–3, batches, 1–3 threads;
// - `PreparedConvolution.inputGradient` (oneDNN backward data) for every way it splits work
//   (images, channel groups, input channels, one part).
// A benchmark (`CAMKIT_BENCH=1`) prints forward and input-gradient times for the depthwise and
// k×k convolutions of EfficientNet-Lite0 and ResNet-50 at batch 16.

private struct BackwardCase: CustomStringConvertible {
    var n = 1, c = 4, h = 9, w = 11, o = 4, kh = 3, kw = 3
    var strides = (1, 1), dilations = (1, 1)
    var padding = Padding2D.symmetric(height: 1, width: 1)
    var groups = 4
    var description: String {
        "n\(n) c\(c) \(h)x\(w) o\(o) k\(kh)x\(kw) s\(strides) d\(dilations) p\(padding) g\(groups)"
    }
    var filterShape: [Int] { [o, c / groups, kh, kw] }
    var outputShape: [Int] {
        [n, o,
         convolutionOutputSize(input: h, kernel: kh, stride: strides.0, dilation: dilations.0,
                               padBegin: padding.top, padEnd: padding.bottom),
         convolutionOutputSize(input: w, kernel: kw, stride: strides.1, dilation: dilations.1,
                               padBegin: padding.left, padEnd: padding.right)]
    }
}

private func randomTensor(_ shape: [Int], _ rng: inout TestRNG) -> Tensor {
    Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in Float.random(in: -1...1, using: &rng) })
}

/// The exact input gradient: `dx[n, g·C/G + c, iy, ix] = Σ dy[n, o, oy, ox] · w[o, c, ki, kj]` over
/// the windows that read `(iy, ix)` (the adjoint of the definition in `conv2D`'s doc comment).
private func naiveInputGradient(_ f: Tensor, _ dy: Tensor, _ cs: BackwardCase) -> [Double] {
    let fs = f.scalars, gs = dy.scalars
    let oh = dy.shape[2], ow = dy.shape[3]
    let cg = cs.c / cs.groups, og = cs.o / cs.groups
    var dx = [Double](repeating: 0, count: cs.n * cs.c * cs.h * cs.w)
    for n in 0..<cs.n {
        for o in 0..<cs.o {
            let g = o / og
            for oy in 0..<oh {
                for ox in 0..<ow {
                    let gv = Double(gs[((n * cs.o + o) * oh + oy) * ow + ox])
                    for c in 0..<cg {
                        for ki in 0..<cs.kh {
                            for kj in 0..<cs.kw {
                                let iy = oy * cs.strides.0 + ki * cs.dilations.0 - cs.padding.top
                                let ix = ox * cs.strides.1 + kj * cs.dilations.1 - cs.padding.left
                                guard iy >= 0, iy < cs.h, ix >= 0, ix < cs.w else { continue }
                                dx[((n * cs.c + g * cg + c) * cs.h + iy) * cs.w + ix]
                                    += gv * Double(fs[((o * cg + c) * cs.kh + ki) * cs.kw + kj])
                            }
                        }
                    }
                }
            }
        }
    }
    return dx
}

/// Depthwise cases: both kernel paths (stride-1 gather through the forward plane kernel; the
/// polyphase path for strides > 1 and for stride 1 with padding beyond the kernel's reach).
private let depthwiseCases: [BackwardCase] = [
    BackwardCase(n: 2, c: 5, h: 13, w: 37, o: 5, groups: 5),                                         // 3×3 s1
    BackwardCase(n: 1, c: 3, h: 11, w: 21, o: 3, kh: 5, kw: 5,
                 padding: .symmetric(height: 2, width: 2), groups: 3),                               // 5×5 s1
    BackwardCase(n: 2, c: 4, h: 14, w: 35, o: 4, strides: (2, 2),
                 padding: Padding2D(top: 0, left: 0, bottom: 1, right: 1), groups: 4),               // TF-style s2
    BackwardCase(n: 1, c: 3, h: 15, w: 40, o: 3, kh: 5, kw: 5, strides: (2, 2),
                 padding: Padding2D(top: 1, left: 2, bottom: 2, right: 1), groups: 3),               // 5×5 s2
    BackwardCase(n: 1, c: 2, h: 12, w: 50, o: 6, strides: (2, 2), groups: 2),                        // multiplier 3, s2
    BackwardCase(n: 3, c: 3, h: 10, w: 19, o: 6, dilations: (2, 3),
                 padding: Padding2D(top: 2, left: 3, bottom: 1, right: 0), groups: 3),               // multiplier 2, dilated s1
    BackwardCase(n: 1, c: 2, h: 9, w: 10, o: 4, kh: 3, kw: 2, strides: (1, 3), dilations: (2, 2),
                 padding: .symmetric(height: 2, width: 1), groups: 2),                               // mixed strides
    BackwardCase(n: 1, c: 2, h: 8, w: 23, o: 2, strides: (3, 3),
                 padding: Padding2D(top: 1, left: 2, bottom: 0, right: 1), groups: 2),               // stride 3
    BackwardCase(n: 1, c: 2, h: 7, w: 9, o: 2, padding: .symmetric(height: 3, width: 4), groups: 2), // pad > reach
    BackwardCase(n: 2, c: 3, h: 9, w: 13, o: 3, kh: 1, kw: 1, strides: (2, 2), padding: .zero, groups: 3),
    BackwardCase(n: 1, c: 16, h: 7, w: 7, o: 16, kh: 5, kw: 5, strides: (2, 2),
                 padding: .symmetric(height: 2, width: 2), groups: 16),                              // tiny planes
]

@Test("Depthwise input gradients match the exact adjoint (every ISA, 1–3 threads)",
      arguments: depthwiseCases.indices)
func depthwiseInputGradient(_ index: Int) {
    let cs = depthwiseCases[index]
    var rng = TestRNG(seed: UInt64(900 + index))
    let x = randomTensor([cs.n, cs.c, cs.h, cs.w], &rng)
    let f = randomTensor(cs.filterShape, &rng)
    let dy = randomTensor(cs.outputShape, &rng)
    let expected = naiveInputGradient(f, dy, cs)
    defer { ConvolutionTuning.kernelISA = -1 }
    for level in [0, 2, 3] {
        ConvolutionTuning.kernelISA = level
        for threads in [1, 2, 3] {
            let dx = ComputeSettings.withThreadCount(threads) {
                conv2DPullback(x, filter: f, outputGradient: dy, strides: cs.strides, padding: cs.padding,
                               dilations: cs.dilations, groups: cs.groups, needFilter: false, needBias: false).input
            }
            guard let dx else {
                Issue.record("no input gradient")
                return
            }
            #expect(dx.shape == x.shape)
            // Float32 sums of at most 25·3 products of values in [-1, 1]: relative error ~1e-7.
            #expect(relativeError(dx, expected) <= 1e-5, "ISA \(level), \(threads) threads: \(cs)")
        }
    }
}

@Test("The im2col input gradient gives the same result for every column tile size")
func tiledInputGradient() {
    // 7×7 stride 2 (the ResNet stem), 3×3 grouped, 1×1 stride 2: col2im over position tiles that
    // do not align with output rows, on 1 thread (one image per item) and 3 (parallel col2im).
    let cases = [
        BackwardCase(n: 2, c: 3, h: 31, w: 29, o: 8, kh: 7, kw: 7, strides: (2, 2),
                     padding: .symmetric(height: 3, width: 3), groups: 1),
        BackwardCase(n: 1, c: 6, h: 17, w: 19, o: 4, dilations: (2, 1), groups: 2),
        BackwardCase(n: 1, c: 5, h: 21, w: 20, o: 7, kh: 1, kw: 1, strides: (2, 2), padding: .zero, groups: 1),
    ]
    let saved = ConvolutionTuning.columnTileElements
    defer { ConvolutionTuning.columnTileElements = saved }
    for (index, cs) in cases.enumerated() {
        var rng = TestRNG(seed: UInt64(990 + index))
        let x = randomTensor([cs.n, cs.c, cs.h, cs.w], &rng)
        let f = randomTensor(cs.filterShape, &rng)
        let dy = randomTensor(cs.outputShape, &rng)
        let expected = naiveInputGradient(f, dy, cs)
        for tile in [1, 64 * 49 + 7, saved] {
            ConvolutionTuning.columnTileElements = tile
            for threads in [1, 3] {
                let dx = ComputeSettings.withThreadCount(threads) {
                    conv2DPullback(x, filter: f, outputGradient: dy, strides: cs.strides, padding: cs.padding,
                                   dilations: cs.dilations, groups: cs.groups, needFilter: false, needBias: false).input
                }
                #expect(dx.map { relativeError($0, expected) <= 1e-5 } == true, "tile \(tile), \(threads) threads: \(cs)")
            }
        }
    }
}

/// Cases for oneDNN's backward data (shapes where ``PreparedConvolution/prefersDNNLBackward(_:)``
/// chooses it: ≥ 16 input channels per group, depthwise), covering each split of the work.
private let preparedBackwardCases: [BackwardCase] = [
    BackwardCase(n: 1, c: 16, h: 9, w: 11, o: 8, groups: 1),                                         // channels, unit 1
    BackwardCase(n: 3, c: 16, h: 9, w: 11, o: 16, groups: 1),                                        // image split
    BackwardCase(n: 2, c: 16, h: 20, w: 17, o: 5, kh: 7, kw: 7, strides: (2, 2),
                 padding: Padding2D(top: 3, left: 2, bottom: 3, right: 4), groups: 1),               // 7×7, asymmetric
    BackwardCase(n: 1, c: 112, h: 10, w: 10, o: 24, strides: (2, 2),
                 padding: Padding2D(top: 0, left: 0, bottom: 1, right: 1), groups: 1),               // 16-channel blocks
    BackwardCase(n: 1, c: 16, h: 12, w: 12, o: 8, dilations: (2, 2), padding: .symmetric(height: 2, width: 2),
                 groups: 1),                                                                         // dilated
    BackwardCase(n: 1, c: 48, h: 9, w: 11, o: 12, groups: 3),                                        // group split
    BackwardCase(n: 1, c: 24, h: 14, w: 14, o: 24, groups: 24),                                      // depthwise, small plane
    BackwardCase(n: 2, c: 16, h: 33, w: 30, o: 16, kh: 5, kw: 5, strides: (2, 2),
                 padding: Padding2D(top: 1, left: 1, bottom: 2, right: 2), groups: 16),              // depthwise s2, large
    BackwardCase(n: 1, c: 4, h: 6, w: 6, o: 8, strides: (2, 2), groups: 4),                          // depthwise, multiplier 2
]

@Test("PreparedConvolution input gradients match the exact adjoint for every thread split",
      arguments: preparedBackwardCases.indices)
func preparedInputGradient(_ index: Int) throws {
    #if os(Linux)
    guard ConvolutionBackend.current == .automatic else { return }
    let cs = preparedBackwardCases[index]
    var rng = TestRNG(seed: UInt64(950 + index))
    let f = randomTensor(cs.filterShape, &rng)
    let dy = randomTensor(cs.outputShape, &rng)
    let expected = naiveInputGradient(f, dy, cs)
    let prepared = try #require(PreparedConvolution(
        inputShape: [cs.n, cs.c, cs.h, cs.w], filter: f, strides: cs.strides, padding: cs.padding,
        dilations: cs.dilations, groups: cs.groups, activation: .relu), "oneDNN refused \(cs)")
    for threads in [1, 2, 3] {
        let dx = try #require(ComputeSettings.withThreadCount(threads) { prepared.inputGradient(dy) },
                              "no backward data: \(cs), \(threads) threads")
        #expect(dx.shape == prepared.inputShape)
        // Float32 sums of at most a few hundred products: relative L2 error ~1e-7.
        #expect(relativeError(dx, expected) <= 1e-5, "\(cs), \(threads) threads")
    }
    #endif
}

@Test("PreparedConvolution leaves stems and large stride-1 depthwise input gradients to CAMKit's kernels")
func preparedInputGradientDeclines() throws {
    #if os(Linux)
    guard ConvolutionBackend.current == .automatic else { return }
    // Depthwise, 40×40 planes, stride 1: neither direction prefers oneDNN.
    #expect(PreparedConvolution(inputShape: [1, 8, 40, 40], filter: Tensor(zeros: [8, 1, 3, 3]),
                                padding: .symmetric(height: 1, width: 1), groups: 8) == nil)
    // A 3-channel stem: oneDNN's forward, CAMKit's input gradient.
    let stem = try #require(PreparedConvolution(inputShape: [1, 3, 16, 16], filter: Tensor(zeros: [8, 3, 3, 3]),
                                                padding: .symmetric(height: 1, width: 1)))
    #expect(stem(Tensor(zeros: stem.inputShape)) != nil)
    #expect(stem.inputGradient(Tensor(zeros: stem.outputShape)) == nil)
    // Depthwise, 64×64 planes, stride 2: CAMKit's forward, oneDNN's input gradient.
    let strided = try #require(PreparedConvolution(inputShape: [1, 8, 64, 64], filter: Tensor(zeros: [8, 1, 3, 3]),
                                                   strides: (2, 2), padding: .symmetric(height: 1, width: 1), groups: 8))
    #expect(strided(Tensor(zeros: strided.inputShape)) == nil)
    #expect(strided.inputGradient(Tensor(zeros: strided.outputShape)) != nil)
    #endif
}

// MARK: - Benchmark (run with CAMKIT_BENCH=1)

private let benchmarkEnabled = ProcessInfo.processInfo.environment["CAMKIT_BENCH"] != nil

@Test("Convolution input-gradient times (prints ms)", .enabled(if: benchmarkEnabled))
func convolutionBackwardBenchmark() {
    struct Shape { var name: String; var cs: BackwardCase }
    func dw(_ c: Int, _ hw: Int, _ k: Int, _ s: Int) -> Shape {
        let pad = s == 1 ? Padding2D.symmetric(height: k / 2, width: k / 2)
            : Padding2D(top: k / 2 - 1, left: k / 2 - 1, bottom: k / 2, right: k / 2)  // TF "SAME", even input
        return Shape(name: "dw\(k)x\(k) s\(s) c\(c) \(hw)²",
                     cs: BackwardCase(n: 16, c: c, h: hw, w: hw, o: c, kh: k, kw: k, strides: (s, s), padding: pad, groups: c))
    }
    func kxk(_ c: Int, _ hw: Int, _ o: Int, _ k: Int, _ s: Int) -> Shape {
        Shape(name: "conv\(k)x\(k) s\(s) \(c)→\(o) \(hw)²",
              cs: BackwardCase(n: 16, c: c, h: hw, w: hw, o: o, kh: k, kw: k, strides: (s, s),
                               padding: .symmetric(height: k / 2, width: k / 2), groups: 1))
    }
    let shapes = [
        dw(32, 112, 3, 1), dw(96, 112, 3, 2), dw(144, 56, 3, 1), dw(144, 56, 5, 2), dw(240, 28, 5, 1),
        dw(240, 28, 3, 2), dw(480, 14, 3, 1), dw(672, 14, 5, 1), dw(672, 14, 5, 2), dw(1152, 7, 5, 1),
        kxk(3, 224, 32, 3, 2), kxk(3, 224, 64, 7, 2), kxk(64, 56, 64, 3, 1), kxk(128, 56, 128, 3, 2),
        kxk(256, 14, 256, 3, 1),
        kxk(32, 112, 16, 1, 1), kxk(16, 112, 96, 1, 1), kxk(96, 56, 24, 1, 1), kxk(24, 56, 144, 1, 1),
        kxk(240, 14, 80, 1, 1), kxk(1152, 7, 320, 1, 1),
        kxk(64, 56, 256, 1, 1), kxk(256, 56, 64, 1, 1), kxk(256, 56, 512, 1, 2), kxk(1024, 14, 256, 1, 1),
        kxk(1024, 14, 2048, 1, 2), kxk(2048, 7, 512, 1, 1),
    ]
    var rng = TestRNG(seed: 1)
    func best(_ body: () -> Void) -> Double {
        var t = Double.infinity
        for _ in 0..<5 {
            let start = DispatchTime.now().uptimeNanoseconds
            body()
            t = min(t, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
        }
        return t
    }
    for threads in [1, 2] {
        ComputeSettings.withThreadCount(threads) {
            for shape in shapes {
                let cs = shape.cs
                let x = randomTensor([cs.n, cs.c, cs.h, cs.w], &rng)
                let f = randomTensor(cs.filterShape, &rng)
                let dy = randomTensor(cs.outputShape, &rng)
                let prepared = PreparedConvolution(inputShape: x.shape, filter: f, strides: cs.strides,
                                                   padding: cs.padding, dilations: cs.dilations, groups: cs.groups)
                let forward = best { _ = prepared?(x) ?? conv2D(x, filter: f, strides: cs.strides, padding: cs.padding,
                                                                 dilations: cs.dilations, groups: cs.groups) }
                let builtin = best {
                    _ = conv2DPullback(x, filter: f, outputGradient: dy, strides: cs.strides, padding: cs.padding,
                                       dilations: cs.dilations, groups: cs.groups, needFilter: false, needBias: false)
                }
                // oneDNN for any shape it accepts (the prepared forward exists only where oneDNN is
                // preferred; make one for the comparison).
                ConvolutionTuning.dnnlBackwardEverywhere = true
                defer { ConvolutionTuning.dnnlBackwardEverywhere = false }
                let any = prepared ?? PreparedConvolution(inputShape: x.shape, filter: f, strides: cs.strides,
                                                          padding: cs.padding, dilations: cs.dilations, groups: cs.groups)
                let dnnl = any.flatMap { p in p.inputGradient(dy).map { _ in best { _ = p.inputGradient(dy) } } }
                let impl = any?.backwardImplementationDescription ?? ""
                print(String(format: "%d thr  %-28@ forward %8.2f ms  dx builtin %8.2f ms  dx oneDNN %@ %@",
                             threads, shape.name, forward, builtin, dnnl.map { String(format: "%8.2f ms", $0) } ?? "-", impl))
            }
        }
    }
}
