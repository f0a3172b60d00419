import Foundation
import Testing
@testable import TensorCore

// Tests of Convolution.swift: conv2D against a naive reference (every path: depthwise C kernel on
// every instruction set, pointwise GEMM, tiled im2col, groups, dilations, asymmetric padding, fused
// bias/activation), SAME padding, and the pullbacks against the naive adjoint and central finite
// differences. A benchmark (`CAMKIT_BENCH=1`) prints GFLOP/s for ResNet-50 / EfficientNet shapes.

private func randomTensor(_ shape: [Int], _ rng: inout TestRNG) -> Tensor {
    Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in Float.random(in: -1...1, using: &rng) })
}

/// One convolution configuration.
private struct ConvCase: CustomStringConvertible {
    var n = 1, c = 3, h = 7, w = 9, o = 4, kh = 3, kw = 3
    var strides = (1, 1), dilations = (1, 1)
    var padding = Padding2D.zero
    var groups = 1
    var bias = true
    var activation = FusedActivation.none
    var description: String {
        "n\(n) c\(c) \(h)x\(w) o\(o) k\(kh)x\(kw) s\(strides) d\(dilations) p\(padding) g\(groups) \(activation)"
    }
    var filterShape: [Int] { [o, c / groups, kh, kw] }
}

/// The reference: the definition of the convolution, in Double, with plain loops.
private func naiveConv(_ x: Tensor, _ f: Tensor, _ b: Tensor?, _ cs: ConvCase) -> Tensor {
    let xs = x.scalars, fs = f.scalars, bs = b?.scalars
    let oh = convolutionOutputSize(input: cs.h, kernel: cs.kh, stride: cs.strides.0, dilation: cs.dilations.0,
                                   padBegin: cs.padding.top, padEnd: cs.padding.bottom)
    let ow = convolutionOutputSize(input: cs.w, kernel: cs.kw, stride: cs.strides.1, dilation: cs.dilations.1,
                                   padBegin: cs.padding.left, padEnd: cs.padding.right)
    let cg = cs.c / cs.groups, og = cs.o / cs.groups
    var out = [Float](repeating: 0, count: cs.n * cs.o * oh * ow)
    for n in 0..<cs.n {
        for o in 0..<cs.o {
            let g = o / og
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var s = Double(bs?[o] ?? 0)
                    for c in 0..<cg {
                        for ki in 0..<cs.kh {
                            for kj in 0..<cs.kw {
                                let iy = oy * cs.strides.0 + ki * cs.dilations.0 - cs.padding.top
                                let ix = ox * cs.strides.1 + kj * cs.dilations.1 - cs.padding.left
                                guard iy >= 0, iy < cs.h, ix >= 0, ix < cs.w else { continue }
                                let xv = xs[((n * cs.c + g * cg + c) * cs.h + iy) * cs.w + ix]
                                let fv = fs[((o * cg + c) * cs.kh + ki) * cs.kw + kj]
                                s += Double(xv) * Double(fv)
                            }
                        }
                    }
                    var v = Float(s)
                    switch cs.activation {
                    case .none: break
                    case .relu: v = max(v, 0)
                    case .clip(let lo, let hi): v = min(max(v, lo), hi)
                    }
                    out[((n * cs.o + o) * oh + oy) * ow + ox] = v
                }
            }
        }
    }
    return Tensor(shape: [cs.n, cs.o, oh, ow], scalars: out)
}

/// Cases covering every code path of conv2D.
private let convCases: [ConvCase] = [
    ConvCase(),                                                                          // im2col, valid
    ConvCase(n: 2, c: 8, h: 5, w: 6, o: 6, kh: 1, kw: 1),                                // pointwise GEMM
    ConvCase(n: 1, c: 4, h: 9, w: 11, o: 5, kh: 1, kw: 1, strides: (2, 2)),              // 1×1 stride 2
    ConvCase(n: 2, c: 5, h: 10, w: 13, o: 7, padding: .symmetric(height: 1, width: 1)),
    ConvCase(n: 1, c: 3, h: 17, w: 15, o: 8, kh: 7, kw: 7, strides: (2, 2),
             padding: .symmetric(height: 3, width: 3), activation: .relu),               // ResNet stem-like
    ConvCase(n: 1, c: 4, h: 12, w: 12, o: 4, strides: (2, 1), dilations: (2, 3),
             padding: Padding2D(top: 0, left: 2, bottom: 3, right: 1)),                  // asymmetric
    ConvCase(n: 2, c: 6, h: 8, w: 9, o: 4, groups: 2, activation: .clip(min: -0.5, max: 0.5)),
    ConvCase(n: 1, c: 6, h: 6, w: 7, o: 9, kh: 2, kw: 3, padding: .symmetric(height: 1, width: 0), groups: 3),
    // Depthwise (C kernel): 3×3 / 5×5, stride 1 and 2, odd widths for the vector tails.
    ConvCase(n: 2, c: 5, h: 13, w: 19, o: 5, padding: .symmetric(height: 1, width: 1), groups: 5),
    ConvCase(n: 1, c: 4, h: 14, w: 35, o: 4, strides: (2, 2),
             padding: Padding2D(top: 0, left: 0, bottom: 1, right: 1), groups: 4, activation: .clip(min: 0, max: 6)),
    ConvCase(n: 1, c: 3, h: 11, w: 9, o: 3, kh: 5, kw: 5, padding: .symmetric(height: 2, width: 2), groups: 3,
             activation: .relu),
    ConvCase(n: 2, c: 3, h: 15, w: 40, o: 3, kh: 5, kw: 5, strides: (2, 2),
             padding: Padding2D(top: 1, left: 2, bottom: 2, right: 1), groups: 3),
    ConvCase(n: 1, c: 2, h: 9, w: 10, o: 4, kh: 3, kw: 2, strides: (1, 3), dilations: (2, 2),
             padding: .symmetric(height: 2, width: 1), groups: 2, bias: false),          // multiplier 2, generic k
    ConvCase(n: 1, c: 3, h: 1, w: 20, o: 3, kh: 1, kw: 4, strides: (1, 2), groups: 3),   // 1-D depthwise
    ConvCase(n: 1, c: 2, h: 9, w: 45, o: 2, strides: (2, 2), padding: .symmetric(height: 1, width: 1), groups: 2),
]

@Test("conv2D matches the naive definition", arguments: convCases.indices)
func conv2DMatchesReference(index: Int) {
    let cs = convCases[index]
    var rng = TestRNG(seed: UInt64(100 + index))
    let x = randomTensor([cs.n, cs.c, cs.h, cs.w], &rng)
    let f = randomTensor(cs.filterShape, &rng)
    let b = cs.bias ? randomTensor([cs.o], &rng) : nil
    let expected = naiveConv(x, f, b, cs)
    let y = conv2D(x, filter: f, bias: b, strides: cs.strides, padding: cs.padding, dilations: cs.dilations,
                   groups: cs.groups, activation: cs.activation)
    // Sums of at most ~150 products of values in [-1, 1]: Float error ≲ 150·6e-8 ≈ 1e-5.
    #expect(y.isApproximatelyEqual(to: expected, rtol: 1e-4, atol: 1e-4), "\(cs)")
}

@Test("Depthwise kernels agree with the reference on every instruction set")
func depthwiseEveryISA() {
    var rng = TestRNG(seed: 7)
    for cs in convCases where cs.groups == cs.c && cs.groups > 1 {
        let x = randomTensor([cs.n, cs.c, cs.h, cs.w], &rng)
        let f = randomTensor(cs.filterShape, &rng)
        let b = cs.bias ? randomTensor([cs.o], &rng) : nil
        let expected = naiveConv(x, f, b, cs)
        for level in [0, 2, 3] {
            ConvolutionTuning.kernelISA = level
            let y = conv2D(x, filter: f, bias: b, strides: cs.strides, padding: cs.padding, dilations: cs.dilations,
                           groups: cs.groups, activation: cs.activation)
            #expect(y.isApproximatelyEqual(to: expected, rtol: 1e-4, atol: 1e-4), "ISA \(level): \(cs)")
            let dy = randomTensor(expected.shape, &rng)
            let grads = conv2DPullback(x, filter: f, outputGradient: dy, strides: cs.strides, padding: cs.padding,
                                       dilations: cs.dilations, groups: cs.groups)
            let (rx, rf) = naiveConvAdjoint(x, f, dy, cs)
            #expect(grads.input?.isApproximatelyEqual(to: rx, rtol: 1e-4, atol: 1e-4) == true, "dx ISA \(level): \(cs)")
            #expect(grads.filter?.isApproximatelyEqual(to: rf, rtol: 1e-4, atol: 1e-3) == true, "dW ISA \(level): \(cs)")
        }
        ConvolutionTuning.kernelISA = -1
    }
}

@Test("Tiny column tiles split the im2col path without changing results")
func tiledIm2col() {
    var rng = TestRNG(seed: 11)
    let cs = ConvCase(n: 2, c: 3, h: 20, w: 23, o: 5, padding: .symmetric(height: 1, width: 1))
    let x = randomTensor([cs.n, cs.c, cs.h, cs.w], &rng)
    let f = randomTensor(cs.filterShape, &rng)
    let b = randomTensor([cs.o], &rng)
    let expected = naiveConv(x, f, b, cs)
    let saved = ConvolutionTuning.columnTileElements
    defer { ConvolutionTuning.columnTileElements = saved }
    for tile in [1, 27 * 70, 27 * 64 + 5] {
        ConvolutionTuning.columnTileElements = tile
        let y = conv2D(x, filter: f, bias: b, padding: cs.padding)
        #expect(y.isApproximatelyEqual(to: expected, rtol: 1e-4, atol: 1e-4), "tile \(tile)")
    }
}

@Test("SAME padding puts the odd element at the end (UPPER) or the beginning (LOWER)")
func samePadding() {
    // 7 wide, kernel 3, stride 2: out 4, total pad (4−1)·2 + 3 − 7 = 2 → 1 / 1.
    #expect(Padding2D.same(inputSize: (7, 7), kernelSize: (3, 3), strides: (2, 2)) == .symmetric(height: 1, width: 1))
    // 224, kernel 3, stride 2: out 112, total 222 + 3 − 224 = 1 → upper (0, 1), lower (1, 0).
    #expect(Padding2D.same(inputSize: (224, 224), kernelSize: (3, 3), strides: (2, 2))
            == Padding2D(top: 0, left: 0, bottom: 1, right: 1))
    #expect(Padding2D.same(inputSize: (224, 224), kernelSize: (3, 3), strides: (2, 2), lower: true)
            == Padding2D(top: 1, left: 1, bottom: 0, right: 0))
    // Dilation 2, kernel 3 (span 5), stride 1: total 4.
    #expect(Padding2D.same(inputSize: (10, 10), kernelSize: (3, 3), dilations: (2, 2)) == .symmetric(height: 2, width: 2))
}

@Test("A closed-form convolution")
func closedForm() {
    // 1×1×3×3 input 1…9, 2×2 filter of ones, bias 0.5: window sums + 0.5.
    let x = Tensor(shape: [1, 1, 3, 3], scalars: (1...9).map(Float.init))
    let f = Tensor(repeating: 1, shape: [1, 1, 2, 2])
    let y = conv2D(x, filter: f, bias: Tensor(shape: [1], scalars: [0.5]))
    #expect(y.shape == [1, 1, 2, 2])
    #expect(y.scalars == [12.5, 16.5, 24.5, 28.5])
}

// MARK: - Pullbacks

/// The exact adjoints, by scattering the naive definition (Double accumulation).
private func naiveConvAdjoint(_ x: Tensor, _ f: Tensor, _ dy: Tensor, _ cs: ConvCase) -> (Tensor, Tensor) {
    let xs = x.scalars, fs = f.scalars, gs = dy.scalars
    let oh = dy.shape[2], ow = dy.shape[3]
    let cg = cs.c / cs.groups, og = cs.o / cs.groups
    var dx = [Double](repeating: 0, count: xs.count), df = [Double](repeating: 0, count: fs.count)
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
                                let xi = ((n * cs.c + g * cg + c) * cs.h + iy) * cs.w + ix
                                let fi = ((o * cg + c) * cs.kh + ki) * cs.kw + kj
                                dx[xi] += gv * Double(fs[fi])
                                df[fi] += gv * Double(xs[xi])
                            }
                        }
                    }
                }
            }
        }
    }
    return (Tensor(shape: x.shape, scalars: dx.map { Float($0) }), Tensor(shape: f.shape, scalars: df.map { Float($0) }))
}

@Test("conv2DPullback matches the exact adjoint and finite differences", arguments: convCases.indices)
func conv2DPullbackMatches(index: Int) {
    var cs = convCases[index]
    cs.activation = .none
    var rng = TestRNG(seed: UInt64(500 + index))
    let x = randomTensor([cs.n, cs.c, cs.h, cs.w], &rng)
    let f = randomTensor(cs.filterShape, &rng)
    let b = randomTensor([cs.o], &rng)
    let forward = { (x: Tensor, f: Tensor, b: Tensor) in
        conv2D(x, filter: f, bias: b, strides: cs.strides, padding: cs.padding, dilations: cs.dilations, groups: cs.groups)
    }
    let y = forward(x, f, b)
    let dy = randomTensor(y.shape, &rng)
    let grads = conv2DPullback(x, filter: f, outputGradient: dy, strides: cs.strides, padding: cs.padding,
                               dilations: cs.dilations, groups: cs.groups)
    guard let dx = grads.input, let df = grads.filter, let db = grads.bias else {
        Issue.record("missing gradients")
        return
    }
    let (rx, rf) = naiveConvAdjoint(x, f, dy, cs)
    #expect(dx.isApproximatelyEqual(to: rx, rtol: 1e-4, atol: 1e-4), "dx \(cs)")
    #expect(df.isApproximatelyEqual(to: rf, rtol: 1e-4, atol: 1e-3), "dW \(cs)")

    // Central differences along random directions. conv2D is linear in each operand, so the
    // quotient has no truncation error; Float rounding of ⟨f(·±εv), g⟩ over m outputs (each ≲ 1e-5
    // absolute) divided by 2ε = 0.02 leaves ≲ 5e-4·√m·… — we allow 1e-3 relative plus 1e-3·√m.
    let eps: Float = 1e-2
    let m = Double(y.count)
    func check(_ analytic: Double, _ plus: Tensor, _ minus: Tensor, _ what: String) {
        let numeric = (testDot(plus, dy) - testDot(minus, dy)) / Double(2 * eps)
        #expect(abs(analytic - numeric) <= 1e-3 * abs(numeric) + 1e-3 * m.squareRoot(),
                "\(what): analytic \(analytic) numeric \(numeric) \(cs)")
    }
    let vx = randomTensor(x.shape, &rng), vf = randomTensor(f.shape, &rng), vb = randomTensor(b.shape, &rng)
    check(testDot(dx, vx), forward(testAxpy(x, eps, vx), f, b), forward(testAxpy(x, -eps, vx), f, b), "input")
    check(testDot(df, vf), forward(x, testAxpy(f, eps, vf), b), forward(x, testAxpy(f, -eps, vf), b), "filter")
    check(testDot(db, vb), forward(x, f, testAxpy(b, eps, vb)), forward(x, f, testAxpy(b, -eps, vb)), "bias")
}

// MARK: - Benchmark (run with CAMKIT_BENCH=1)

private let benchmarkEnabled = ProcessInfo.processInfo.environment["CAMKIT_BENCH"] != nil

@Test("Convolution throughput (prints GFLOP/s)", .enabled(if: benchmarkEnabled))
func convolutionBenchmark() {
    struct Shape { var name: String; var cs: ConvCase }
    func shape(_ name: String, _ c: Int, _ hw: Int, _ o: Int, _ k: Int, _ s: Int, groups: Int = 1) -> Shape {
        Shape(name: name, cs: ConvCase(n: 1, c: c, h: hw, w: hw, o: o, kh: k, kw: k, strides: (s, s),
                                       padding: .same(inputSize: (hw, hw), kernelSize: (k, k), strides: (s, s)),
                                       groups: groups))
    }
    let shapes = [
        shape("R50 stem 7x7 s2 3->64 @224", 3, 224, 64, 7, 2),
        shape("R50 3x3 64->64 @56", 64, 56, 64, 3, 1),
        shape("R50 1x1 256->64 @56", 256, 56, 64, 1, 1),
        shape("R50 1x1 64->256 @56", 64, 56, 256, 1, 1),
        shape("R50 3x3 128->128 @28", 128, 28, 128, 3, 1),
        shape("R50 3x3 256->256 @14", 256, 14, 256, 3, 1),
        shape("R50 3x3 512->512 @7", 512, 7, 512, 3, 1),
        shape("R50 1x1 1024->2048 s2 @14", 1024, 14, 2048, 1, 2),
        shape("Eff dw 3x3 32 @112", 32, 112, 32, 3, 1, groups: 32),
        shape("Eff dw 3x3 s2 144 @56", 144, 56, 144, 3, 2, groups: 144),
        shape("Eff dw 5x5 480 @14", 480, 14, 480, 5, 1, groups: 480),
        shape("Eff dw 5x5 s2 240 @28", 240, 28, 240, 5, 2, groups: 240),
    ]
    print("BLAS core: \(BLAS.coreName), threads \(ComputeSettings.threadCount)")
    for batch in [1, 8] {
        for s in shapes {
            var cs = s.cs
            cs.n = batch
            var rng = TestRNG(seed: 1)
            let x = randomTensor([cs.n, cs.c, cs.h, cs.w], &rng)
            let f = randomTensor(cs.filterShape, &rng)
            let b = randomTensor([cs.o], &rng)
            let run = { conv2D(x, filter: f, bias: b, strides: cs.strides, padding: cs.padding, groups: cs.groups) }
            var y = run()
            let flops = 2.0 * Double(y.count) * Double(cs.c / cs.groups * cs.kh * cs.kw)
            let reps = max(3, min(200, Int(2e9 / flops)))
            var best = Double.infinity
            for _ in 0..<reps {
                let t0 = DispatchTime.now().uptimeNanoseconds
                y = run()
                let t1 = DispatchTime.now().uptimeNanoseconds
                best = min(best, Double(t1 - t0) * 1e-9)
            }
            _ = y
            print(String(format: "N=%d %-28@ %8.3f ms %7.1f GFLOP/s", batch, s.name, best * 1e3, flops / best * 1e-9))
        }
    }
}
