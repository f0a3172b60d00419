import Testing
import TensorCore

// Tests of Broadcasting.swift, plus the helpers the Elementwise and Activation tests share
// (prefixed `ew` so that they cannot collide with other families' test helpers).

// MARK: - Shared helpers

/// A deterministic generator (SplitMix64) so that failures reproduce.
struct EWRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [lo, hi).
    mutating func float(_ lo: Float, _ hi: Float) -> Float {
        lo + (hi - lo) * Float(next() >> 40) / Float(1 << 24)
    }
    /// Uniform in lo...hi.
    mutating func int(_ lo: Int, _ hi: Int) -> Int { lo + Int(next() % UInt64(hi - lo + 1)) }
    mutating func bool() -> Bool { next() & 1 == 1 }
    /// A Float32 tensor with elements uniform in [lo, hi).
    mutating func tensor(_ shape: [Int], _ lo: Float = -1, _ hi: Float = 1) -> Tensor {
        Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in float(lo, hi) })
    }
    /// A Float32 tensor whose elements have magnitude in [minMagnitude, maxMagnitude) and a random sign.
    mutating func tensorAwayFromZero(_ shape: [Int], _ minMagnitude: Float, _ maxMagnitude: Float) -> Tensor {
        Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in
            float(minMagnitude, maxMagnitude) * (bool() ? 1 : -1)
        })
    }
    /// An output shape of rank 1…`maxRank` and two operand shapes that broadcast to it: each
    /// operand may drop leading dimensions and has each remaining extent either full or 1.
    mutating func broadcastPair(maxRank: Int = 4, maxExtent: Int = 5) -> ([Int], [Int]) {
        let rank = int(1, maxRank)
        let out = (0..<rank).map { _ in int(1, maxExtent) }
        func operand(_ r: inout EWRandom) -> [Int] {
            let drop = r.int(0, rank)
            return out.dropFirst(drop).map { r.int(0, 2) == 0 ? 1 : $0 }
        }
        return (operand(&self), operand(&self))
    }
}

/// The flat offset in a tensor of `shape` of the broadcast multi-index `index` of a larger output.
func ewBroadcastOffset(_ index: [Int], _ shape: [Int]) -> Int {
    var offset = 0
    let d = index.count - shape.count
    for k in 0..<shape.count { offset = offset * shape[k] + (shape[k] == 1 ? 0 : index[k + d]) }
    return offset
}

/// The multi-index of flat `i` in `shape`.
func ewUnravel(_ i: Int, _ shape: [Int]) -> [Int] {
    var index = [Int](repeating: 0, count: shape.count)
    var r = i
    for k in stride(from: shape.count - 1, through: 0, by: -1) {
        index[k] = r % shape[k]
        r /= shape[k]
    }
    return index
}

/// A naive broadcasting binary op over Float32 values (the reference the kernels are checked against).
func ewNaiveBinary(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
    let shape = broadcastShape(a.shape, b.shape)!
    let av = a.scalars, bv = b.scalars
    let n = shape.reduce(1, *)
    let out = (0..<n).map { i -> Float in
        let idx = ewUnravel(i, shape)
        return f(av[ewBroadcastOffset(idx, a.shape)], bv[ewBroadcastOffset(idx, b.shape)])
    }
    return Tensor(shape: shape, scalars: out)
}

/// A naive reduction of `g` to `shape` (the reference for `summed(toShape:)`), in Double.
func ewNaiveSum(_ g: Tensor, to shape: [Int]) -> Tensor {
    var acc = [Double](repeating: 0, count: shape.reduce(1, *))
    let gv = g.scalars
    for i in 0..<gv.count { acc[ewBroadcastOffset(ewUnravel(i, g.shape), shape)] += Double(gv[i]) }
    return Tensor(shape: shape, scalars: acc.map { Float($0) })
}

/// `Σ a·b` in Double.
func ewDot(_ a: Tensor, _ b: Tensor) -> Double {
    let x = a.scalars, y = b.scalars
    precondition(x.count == y.count)
    var s = 0.0
    for i in 0..<x.count { s += Double(x[i]) * Double(y[i]) }
    return s
}

/// Central finite-difference check of a pullback in a random direction.
///
/// Compares ⟨pullback(g), v⟩ (summed over the inputs) with (⟨f(x+εv), g⟩ − ⟨f(x−εv), g⟩) / 2ε.
/// Tolerance: with ε = 1e-2 the truncation error of the central difference is O(ε²·f''') ≈ 1e-4
/// relative for the O(1) inputs used here; Float rounding of f adds about n·6e-8/(2ε) ≈ 3e-6·n
/// absolute for n output elements, which the `atol` term covers for the small shapes used.
/// Inputs are chosen away from kinks so that no element crosses one within ±ε.
func ewCheckGradient(_ inputs: [Tensor], seed: UInt64 = 7, epsilon: Float = 1e-2, rtol: Double = 2e-3,
                     sourceLocation: SourceLocation = #_sourceLocation,
                     _ f: ([Tensor]) -> Tensor, _ pullback: (Tensor) -> [Tensor]) {
    var r = EWRandom(seed: seed)
    let y = f(inputs)
    let g = r.tensor(y.shape)
    let v = inputs.map { r.tensor($0.shape) }
    let grads = pullback(g)
    #expect(grads.count == inputs.count, sourceLocation: sourceLocation)
    var analytic = 0.0
    for (gi, vi) in zip(grads, v) {
        #expect(gi.shape == vi.shape, "gradient shape \(gi.shape) vs input \(vi.shape)", sourceLocation: sourceLocation)
        if gi.shape == vi.shape { analytic += ewDot(gi, vi) }
    }
    func shifted(_ s: Float) -> [Tensor] {
        zip(inputs, v).map { x, d in
            Tensor(shape: x.shape, scalars: zip(x.scalars, d.scalars).map { $0 + s * $1 })
        }
    }
    let numeric = (ewDot(f(shifted(epsilon)), g) - ewDot(f(shifted(-epsilon)), g)) / (2 * Double(epsilon))
    let atol = 3e-6 * Double(y.count) + 1e-4
    #expect(Swift.abs(analytic - numeric) <= atol + rtol * Swift.abs(numeric),
            "analytic \(analytic) vs numeric \(numeric)", sourceLocation: sourceLocation)
}

/// Whether two tensors have the same shape and elements within `atol + rtol·|b|`.
func ewClose(_ a: Tensor, _ b: Tensor, rtol: Float = 1e-6, atol: Float = 1e-6) -> Bool {
    a.dtype == b.dtype && a.isApproximatelyEqual(to: b, rtol: rtol, atol: atol)
}

// MARK: - Broadcasting tests

@Suite struct BroadcastingTests {
    @Test func broadcastShapes() {
        #expect(broadcastShape([2, 3, 4], [4]) == [2, 3, 4])
        #expect(broadcastShape([2, 1], [1, 3]) == [2, 3])
        #expect(broadcastShape([], [2, 3]) == [2, 3])
        #expect(broadcastShape([1, 64, 1, 1], [2, 64, 7, 7]) == [2, 64, 7, 7])
        #expect(broadcastShape([2], [3]) == nil)
        #expect(broadcastShape([0], [1]) == [0])
        #expect(broadcastShape([0], [3]) == nil)
        #expect(broadcastShape([[2, 1, 4], [3, 1], [1]]) == [2, 3, 4])
        #expect(broadcastShape([[Int]]()) == [])
        #expect(isBroadcastable([3, 1], to: [2, 3, 4]))
        #expect(!isBroadcastable([2, 3, 4], to: [3, 4]))
        #expect(!isBroadcastable([2], to: [3]))
    }

    @Test func addMatchesNaiveOnRandomShapes() {
        var r = EWRandom(seed: 1)
        for _ in 0..<200 {
            let (sa, sb) = r.broadcastPair()
            let a = r.tensor(sa), b = r.tensor(sb)
            let y = add(a, b)
            #expect(y == ewNaiveBinary(a, b, +), "shapes \(sa) \(sb)")
        }
    }

    @Test func largeBroadcastCasesMatchNaive() {
        // Sizes above the threading threshold: same shape, scalar, per-channel, row broadcast,
        // channel-last and an outer-only broadcast.
        var r = EWRandom(seed: 2)
        let cases: [([Int], [Int])] = [
            ([2, 16, 40, 40], [2, 16, 40, 40]), ([2, 16, 40, 40], []), ([], [2, 16, 40, 40]),
            ([2, 16, 40, 40], [1, 16, 1, 1]), ([1, 16, 1, 1], [2, 16, 40, 40]), ([2, 16, 40, 40], [2, 16, 1, 1]),
            ([300, 197], [197]), ([300, 1], [1, 197]), ([3, 1, 40, 40], [1, 16, 40, 1]),
        ]
        for (sa, sb) in cases {
            let a = r.tensor(sa), b = r.tensor(sb)
            #expect(subtract(a, b) == ewNaiveBinary(a, b, -), "shapes \(sa) \(sb)")
        }
    }

    @Test func zeroSizedBroadcast() {
        let a = Tensor(zeros: [0, 3]), b = Tensor(shape: [3], scalars: [1, 2, 3])
        #expect(add(a, b).shape == [0, 3])
        #expect(a.summed(toShape: [3]) == Tensor(zeros: [3]))
    }

    @Test func broadcastedMatchesNaive() {
        var r = EWRandom(seed: 3)
        for _ in 0..<100 {
            let (sa, sb) = r.broadcastPair()
            let full = broadcastShape(sa, sb)!
            let a = r.tensor(sa)
            #expect(a.broadcasted(toShape: full) == ewNaiveBinary(a, Tensor(zeros: full)) { x, _ in x })
        }
        let i = Tensor(shape: [2, 1], int64s: [5, -7])
        #expect(i.broadcasted(toShape: [2, 3]) == Tensor(shape: [2, 3], int64s: [5, 5, 5, -7, -7, -7]))
        let m = Tensor(shape: [3], bools: [true, false, true])
        #expect(m.broadcasted(toShape: [2, 3]).bools == [true, false, true, true, false, true])
    }

    @Test func summedMatchesNaiveOnRandomShapes() {
        var r = EWRandom(seed: 4)
        for _ in 0..<200 {
            let (sa, sb) = r.broadcastPair()
            let out = broadcastShape(sa, sb)!
            let g = r.tensor(out)
            #expect(ewClose(g.summed(toShape: sa), ewNaiveSum(g, to: sa), rtol: 1e-5, atol: 1e-5), "\(out) → \(sa)")
            #expect(ewClose(g.summed(toShape: sb), ewNaiveSum(g, to: sb), rtol: 1e-5, atol: 1e-5), "\(out) → \(sb)")
        }
    }

    @Test func summedLargeCases() {
        // Threaded paths: per-channel (SE blocks, biases), scalar, batch-only and row reductions.
        // Float accumulation over up to 2·10⁵ terms of magnitude ≤ 1: blocked sums keep the error
        // near 1e-6 relative to the sum of magnitudes; 1e-4 absolute + 1e-5 relative is generous.
        var r = EWRandom(seed: 5)
        let g = r.tensor([2, 16, 40, 40])
        for target: [Int] in [[1, 16, 1, 1], [16, 1, 1], [], [1], [1, 16, 40, 40], [40], [2, 1, 1, 40], [2, 16, 1, 1]] {
            #expect(ewClose(g.summed(toShape: target), ewNaiveSum(g, to: target), rtol: 1e-5, atol: 1e-3), "→ \(target)")
        }
        let rows = r.tensor([300, 197])
        #expect(ewClose(rows.summed(toShape: [197]), ewNaiveSum(rows, to: [197]), rtol: 1e-5, atol: 1e-4))
        #expect(ewClose(rows.summed(toShape: [300, 1]), ewNaiveSum(rows, to: [300, 1]), rtol: 1e-5, atol: 1e-4))
    }

    @Test func summedIdentityAndReshape() {
        let g = Tensor(shape: [1, 3], scalars: [1, 2, 3])
        #expect(g.summed(toShape: [1, 3]) == g)
        #expect(g.summed(toShape: [3]) == Tensor(shape: [3], scalars: [1, 2, 3]))
        #expect(g.summed(toShape: [1, 1]) == Tensor(shape: [1, 1], scalars: [6]))
    }
}
