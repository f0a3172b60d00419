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
