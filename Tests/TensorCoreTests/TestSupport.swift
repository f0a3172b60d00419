import Testing
@testable import TensorCore

// Helpers shared by the TensorCore tests: a seeded generator, inner products, and (for the
// data-movement tests) random tensors, a linear-pullback check and index helpers.

/// A deterministic generator (SplitMix64) so failures reproduce.
struct TestRNG: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func shapingRandomTensor(_ shape: [Int], _ rng: inout TestRNG) -> Tensor {
    Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in Float.random(in: -1...1, using: &rng) })
}

/// `a` applied to `s`, in Double.
func testActivate(_ s: Double, _ a: FusedActivation) -> Double {
    switch a {
    case .none: return s
    case .relu: return max(s, 0)
    case .clip(let lo, let hi): return min(max(s, Double(lo)), Double(hi))
    }
}

/// The definition of a grouped 2-D convolution (NCHW, square `k×k` filter `[O, C/G, k, k]`) in
/// Double: `y[n,o,i,j] = act(b[o] + Σ x[n, g·C/G + c, i·sh + ki·dh − top, j·sw + kj·dw − left] · w[o,c,ki,kj])`.
func referenceConvolution(_ x: Tensor, filter f: Tensor, bias b: Tensor?, strides: (Int, Int), padding: Padding2D,
                          dilations: (Int, Int) = (1, 1), groups: Int, activation: FusedActivation) -> [Double] {
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (o, k) = (f.shape[0], f.shape[2])
    let xs = x.scalars, fs = f.scalars, bs = b?.scalars
    let oh = convolutionOutputSize(input: h, kernel: k, stride: strides.0, dilation: dilations.0,
                                   padBegin: padding.top, padEnd: padding.bottom)
    let ow = convolutionOutputSize(input: w, kernel: k, stride: strides.1, dilation: dilations.1,
                                   padBegin: padding.left, padEnd: padding.right)
    let cg = c / groups, og = o / groups
    var y = [Double](repeating: 0, count: n * o * oh * ow)
    for b in 0..<n {
        for oc in 0..<o {
            let g = oc / og
            for i in 0..<oh {
                for j in 0..<ow {
                    var s = Double(bs?[oc] ?? 0)
                    for ic in 0..<cg {
                        for ki in 0..<k {
                            for kj in 0..<k {
                                let yy = i * strides.0 + ki * dilations.0 - padding.top
                                let xx = j * strides.1 + kj * dilations.1 - padding.left
                                guard yy >= 0, yy < h, xx >= 0, xx < w else { continue }
                                s += Double(xs[((b * c + g * cg + ic) * h + yy) * w + xx])
                                    * Double(fs[((oc * cg + ic) * k + ki) * k + kj])
                            }
                        }
                    }
                    y[((b * o + oc) * oh + i) * ow + j] = testActivate(s, activation)
                }
            }
        }
    }
    return y
}

/// ⟨a, b⟩ in Double.
func testDot(_ a: Tensor, _ b: Tensor) -> Double {
    zip(a.scalars, b.scalars).reduce(0) { $0 + Double($1.0) * Double($1.1) }
}

/// `a + s·v`.
func testAxpy(_ a: Tensor, _ s: Float, _ v: Tensor) -> Tensor {
    Tensor(shape: a.shape, scalars: zip(a.scalars, v.scalars).map { $0 + s * $1 })
}

/// Checks a pullback against a central finite difference of `⟨f(x), g⟩` along a random direction v:
/// `⟨pullback(g), v⟩ ≈ (⟨f(x+εv), g⟩ − ⟨f(x−εv), g⟩) / 2ε`, ε = 1e-2.
///
/// Every op here is linear, so the difference quotient has no truncation error; what remains is
/// Float rounding of f(x±εv) (≈ 6e-8 relative per element), amplified by 1/2ε = 50 and summed over
/// n terms with random signs, i.e. ≈ 3e-6·√n·max|g| — the tolerance 1e-4·(1 + √n) covers it 10×.
func checkLinearPullback(_ shape: [Int], seed: UInt64, sourceLocation: SourceLocation = #_sourceLocation,
                           _ f: (Tensor) -> Tensor, _ pullback: (Tensor) -> Tensor) {
    var rng = TestRNG(seed: seed)
    let x = shapingRandomTensor(shape, &rng), v = shapingRandomTensor(shape, &rng)
    let y = f(x)
    let g = shapingRandomTensor(y.shape, &rng)
    let gx = pullback(g)
    #expect(gx.shape == shape, sourceLocation: sourceLocation)
    let eps: Float = 1e-2
    let lhs = testDot(gx, v)
    let rhs = (testDot(f(testAxpy(x, eps, v)), g) - testDot(f(testAxpy(x, -eps, v)), g)) / (2 * Double(eps))
    let tol = 1e-4 * (1 + Double(y.count).squareRoot())
    #expect(abs(lhs - rhs) <= tol, "⟨pullback(g), v⟩ = \(lhs), finite difference = \(rhs)", sourceLocation: sourceLocation)
}

/// Multi-index of flat `i` in `shape`.
func shapingUnravel(_ i: Int, _ shape: [Int]) -> [Int] {
    var r = i
    var idx = [Int](repeating: 0, count: shape.count)
    for d in stride(from: shape.count - 1, through: 0, by: -1) {
        idx[d] = r % shape[d]
        r /= shape[d]
    }
    return idx
}

func shapingRavel(_ idx: [Int], _ shape: [Int]) -> Int {
    var f = 0
    for d in 0..<shape.count { f = f * shape[d] + idx[d] }
    return f
}

/// The relative L2 error of `got` against a Double reference `expected`.
func relativeError(_ got: [Float], _ expected: [Double]) -> Double {
    var error = 0.0, norm = 0.0
    for (a, e) in zip(got, expected) {
        error += (Double(a) - e) * (Double(a) - e)
        norm += e * e
    }
    return (error / max(norm, 1e-30)).squareRoot()
}

/// The relative L2 error of `got` against a Double reference `expected`.
func relativeError(_ got: Tensor, _ expected: [Double]) -> Double { relativeError(got.scalars, expected) }
