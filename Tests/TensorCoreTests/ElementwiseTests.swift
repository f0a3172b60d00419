import Foundation
import Testing
import TensorCore

// Tests of Elementwise.swift: closed-form cases (integer semantics follow ONNX Runtime's C++),
// comparisons with naive broadcasting references (helpers in BroadcastingTests.swift) and central
// finite-difference checks of every pullback.

@Suite struct ElementwiseTests {
    // MARK: Forward, Float32

    @Test func floatArithmeticMatchesNaive() {
        var r = EWRandom(seed: 11)
        for _ in 0..<100 {
            let (sa, sb) = r.broadcastPair()
            let a = r.tensor(sa), b = r.tensorAwayFromZero(sb, 0.5, 2)
            #expect(add(a, b) == ewNaiveBinary(a, b, +))
            #expect(subtract(a, b) == ewNaiveBinary(a, b, -))
            #expect(multiply(a, b) == ewNaiveBinary(a, b, *))
            #expect(divide(a, b) == ewNaiveBinary(a, b, /))
            #expect(maximum(a, b) == ewNaiveBinary(a, b) { Swift.max($0, $1) })
            #expect(minimum(a, b) == ewNaiveBinary(a, b) { Swift.min($0, $1) })
        }
    }

    @Test func powFloat() {
        var r = EWRandom(seed: 12)
        let a = r.tensor([3, 4], 0.1, 3), b = r.tensor([4], -2, 2)
        #expect(ewClose(pow(a, b), ewNaiveBinary(a, b) { Foundation.pow($0, $1) }, rtol: 1e-6))
        for e: Float in [2, 3, 0.5, 1, 1.7] {
            #expect(ewClose(pow(a, Tensor(e)), ewNaiveBinary(a, Tensor(e)) { Foundation.pow($0, $1) }, rtol: 2e-7, atol: 0),
                    "exponent \(e)")
        }
        // Scalar exponent with a broadcasting base shape.
        #expect(pow(Tensor(shape: [2], scalars: [2, 3]), Tensor(shape: [1, 1], scalars: [2])).shape == [1, 2])
        // Float base, Int64 exponent (opset ≥ 12 allows mixed types; the result has the base's type).
        #expect(pow(Tensor(shape: [2], scalars: [2, 3]), Tensor(shape: [], int64s: [3])) == Tensor(shape: [2], scalars: [8, 27]))
    }

    @Test func powInt64() {
        let base = Tensor(shape: [6], int64s: [2, -3, 1, -1, 2, 0])
        let exponent = Tensor(shape: [6], int64s: [10, 3, -5, -3, -1, 0])
        #expect(pow(base, exponent).int64s == [1024, -27, 1, -1, 0, 1])
        #expect(pow(Tensor(shape: [2], int64s: [4, 9]), Tensor(shape: [], scalars: [0.5])).int64s == [2, 3])
    }

    @Test func int64Arithmetic() {
        let a = Tensor(shape: [4], int64s: [7, -7, 7, -7])
        let b = Tensor(shape: [4], int64s: [2, 2, -2, -2])
        #expect(add(a, b).int64s == [9, -5, 5, -9])
        #expect(subtract(a, b).int64s == [5, -9, 9, -5])
        #expect(multiply(a, b).int64s == [14, -14, -14, 14])
        // ONNX Runtime divides with C++ `/`: truncation toward zero.
        #expect(divide(a, b).int64s == [3, -3, -3, 3])
        // No trap: a zero divisor gives 0, Int64.min / −1 wraps.
        #expect(divide(Tensor(shape: [2], int64s: [5, .min]), Tensor(shape: [2], int64s: [0, -1])).int64s == [0, .min])
        // Shape arithmetic with broadcasting.
        let shape = Tensor(shape: [4], int64s: [1, 3, 224, 224])
        #expect(divide(shape, Tensor(shape: [], int64s: [2])).int64s == [0, 1, 112, 112])
        #expect(maximum(a, Tensor(shape: [1], int64s: [0])).int64s == [7, 0, 7, 0])
        #expect(minimum(a, b).int64s == [2, -7, -2, -7])
        #expect(negative(a).int64s == [-7, 7, -7, 7])
        #expect(abs(a).int64s == [7, 7, 7, 7])
    }

    @Test func modSemantics() {
        let a = Tensor(shape: [6], int64s: [-4, 7, 5, -5, 4, 6])
        let b = Tensor(shape: [6], int64s: [3, -3, 3, -3, 0, 3])
        // fmod = 0: the sign of the divisor (Python's %); zero divisor → 0.
        #expect(mod(a, b, fmod: false).int64s == [2, -2, 2, -2, 0, 0])
        // fmod = 1: the sign of the dividend (C fmod).
        #expect(mod(a, b, fmod: true).int64s == [-1, 1, 2, -2, 0, 0])
        let x = Tensor(shape: [4], scalars: [5.5, -5.5, 5.5, -5.5])
        let y = Tensor(shape: [4], scalars: [2, 2, -2, -2])
        #expect(mod(x, y, fmod: true).scalars == [1.5, -1.5, 1.5, -1.5])
    }

    // MARK: Forward, comparison and selection

    @Test func equalNotSelect() {
        let a = Tensor(shape: [2, 2], scalars: [1, 2, 3, .nan])
        let e = equal(a, Tensor(shape: [2], scalars: [1, 3]))
        #expect(e.dtype == .bool && e.shape == [2, 2] && e.bools == [true, false, false, false])
        #expect(equal(Tensor(shape: [3], int64s: [1, 2, 3]), Tensor(shape: [], int64s: [2])).bools == [false, true, false])
        #expect(equal(Tensor(shape: [2], bools: [true, false]), Tensor(shape: [1], bools: [false])).bools == [false, true])
        #expect(logicalNot(e).bools == [false, true, true, true])

        let c = Tensor(shape: [2, 1], bools: [true, false])
        let x = Tensor(shape: [3], scalars: [1, 2, 3]), y = Tensor(-1)
        let s = select(c, x, y)
        #expect(s.shape == [2, 3] && s.scalars == [1, 2, 3, -1, -1, -1])
        let si = select(Tensor(shape: [2], bools: [false, true]), Tensor(shape: [2], int64s: [1, 2]), Tensor(shape: [2], int64s: [7, 8]))
        #expect(si.int64s == [7, 2])

        var r = EWRandom(seed: 13)
        for _ in 0..<50 {
            let (sc, sx) = r.broadcastPair(), (_, sy) = r.broadcastPair()
            guard let out = broadcastShape([sc, sx, sy]) else { continue }
            let cond = Tensor(shape: sc, bools: (0..<sc.reduce(1, *)).map { _ in r.bool() })
            let xv = r.tensor(sx), yv = r.tensor(sy)
            let cv = cond.bools, xs = xv.scalars, ys = yv.scalars
            let expected = (0..<out.reduce(1, *)).map { i -> Float in
                let idx = ewUnravel(i, out)
                return cv[ewBroadcastOffset(idx, sc)] ? xs[ewBroadcastOffset(idx, sx)] : ys[ewBroadcastOffset(idx, sy)]
            }
            #expect(select(cond, xv, yv) == Tensor(shape: out, scalars: expected))
        }
    }

    @Test func variadicOps() {
        let a = Tensor(shape: [2, 1], scalars: [1, 5])
        let b = Tensor(shape: [3], scalars: [2, 4, 6])
        let c = Tensor(3)
        #expect(elementwiseMax([a, b, c]).scalars == [3, 4, 6, 5, 5, 6])
        #expect(elementwiseMin([a, b, c]).scalars == [1, 1, 1, 2, 3, 3])
        #expect(elementwiseSum([a, b, c]).scalars == [6, 8, 10, 10, 12, 14])
        #expect(ewClose(elementwiseMean([a, b, c]), Tensor(shape: [2, 3], scalars: [2, 8 / 3, 10 / 3, 10 / 3, 4, 14 / 3])))
        #expect(elementwiseSum([a]) == a && elementwiseMax([b]) == b && elementwiseMean([c]) == c)
        #expect(elementwiseSum([Tensor(shape: [2], int64s: [1, 2]), Tensor(shape: [1], int64s: [10])]).int64s == [11, 12])
        #expect(elementwiseMax([Tensor(shape: [2], scalars: [1, .nan]), Tensor(shape: [2], scalars: [.nan, 0])]).scalars.allSatisfy { $0.isNaN })
    }

    // MARK: Forward, unary and cast

    @Test func unaryMath() {
        var r = EWRandom(seed: 14)
        let x = r.tensor([3, 1000], -3, 3)
        let pos = r.tensor([3, 1000], 0.01, 10)
        func ref(_ t: Tensor, _ f: (Float) -> Float) -> Tensor { Tensor(shape: t.shape, scalars: t.scalars.map(f)) }
        #expect(negative(x) == ref(x) { -$0 })
        #expect(abs(x) == ref(x) { Swift.abs($0) })
        #expect(sqrt(pos) == ref(pos) { $0.squareRoot() })
        #expect(exp(x) == ref(x) { Foundation.exp($0) })
        #expect(log(pos) == ref(pos) { Foundation.log($0) })
        // erf against the Double-precision C library, rounded: within 2 ulp of Float.
        let e = erf(x).scalars, xs = x.scalars
        for i in 0..<xs.count {
            let exact = Float(Foundation.erf(Double(xs[i])))
            #expect(Swift.abs(e[i] - exact) <= 2 * exact.ulp, "erf(\(xs[i]))")
        }
        #expect(erf(Tensor(shape: [4], scalars: [0, .infinity, -.infinity, 10])).scalars == [0, 1, -1, 1])
    }

    @Test func castBetweenTypes() {
        let f = Tensor(shape: [6], scalars: [2.7, -2.7, 0, .nan, 1e30, -0.5])
        #expect(cast(f, to: .int64).int64s == [2, -2, 0, .min, .min, 0])
        #expect(cast(f, to: .bool).bools == [true, true, false, true, true, true])
        let i = Tensor(shape: [3], int64s: [0, -3, 1 << 40])
        #expect(cast(i, to: .float32).scalars == [0, -3, Float(1 << 40)])
        #expect(cast(i, to: .bool).bools == [false, true, true])
        let b = Tensor(shape: [2], bools: [true, false])
        #expect(cast(b, to: .float32).scalars == [1, 0])
        #expect(cast(b, to: .int64).int64s == [1, 0])
        #expect(cast(f, to: .float32) == f)
    }

    // MARK: Pullbacks (central finite differences; tolerances explained in ewCheckGradient)

    @Test func binaryPullbacks() {
        var r = EWRandom(seed: 15)
        for trial in 0..<30 {
            let (sa, sb) = r.broadcastPair()
            let a = r.tensor(sa), b = r.tensorAwayFromZero(sb, 0.5, 2)
            let seed = UInt64(100 + trial)
            ewCheckGradient([a, b], seed: seed, { add($0[0], $0[1]) }) { g in
                let p = addPullback(g, aShape: sa, bShape: sb); return [p.a, p.b]
            }
            ewCheckGradient([a, b], seed: seed, { subtract($0[0], $0[1]) }) { g in
                let p = subtractPullback(g, aShape: sa, bShape: sb); return [p.a, p.b]
            }
            ewCheckGradient([a, b], seed: seed, { multiply($0[0], $0[1]) }) { g in
                let p = multiplyPullback(g, a, b); return [p.a!, p.b!]
            }
            ewCheckGradient([a, b], seed: seed, { divide($0[0], $0[1]) }) { g in
                let p = dividePullback(g, a, b); return [p.a!, p.b!]
            }
            // Positive bases for pow (ln a exists).
            let base = r.tensor(sa, 0.5, 2), exponent = r.tensor(sb, -2, 2)
            ewCheckGradient([base, exponent], seed: seed, { pow($0[0], $0[1]) }) { g in
                let p = powPullback(g, base, exponent, result: pow(base, exponent)); return [p.a!, p.b!]
            }
        }
        // Only one side requested.
        let p = multiplyPullback(Tensor(repeating: 1, shape: [2]), Tensor(shape: [2], scalars: [1, 2]), Tensor(3), computingA: false)
        #expect(p.a == nil && p.b?.scalars == [3])
    }

    @Test func powPullbackSpecialExponents() {
        var r = EWRandom(seed: 16)
        let x = r.tensor([5, 7], -2, 2)
        for e: Float in [2, 3, 1] {
            ewCheckGradient([x], { pow($0[0], Tensor(e)) }) { g in
                [powPullback(g, x, Tensor(e), result: pow(x, Tensor(e)), computingB: false).a!]
            }
        }
    }

    @Test func modPullback() {
        // a/b kept at least 0.1 from an integer so that no element jumps within ±ε.
        var r = EWRandom(seed: 17)
        let b = r.tensor([4, 5], 1, 2)
        let a = Tensor(shape: [4, 5], scalars: b.scalars.map { bv in
            (Float(r.int(-3, 3)) + r.float(0.1, 0.9)) * bv
        })
        ewCheckGradient([a, b], { mod($0[0], $0[1], fmod: true) }) { g in
            let p = TensorCore.modPullback(g, a, b); return [p.a!, p.b!]
        }
    }

    @Test func extremumAndVariadicPullbacks() {
        var r = EWRandom(seed: 18)
        // Distinct values (a permutation scaled by 0.1) so that no tie is within ±ε.
        let perm = (0..<60).map { Float($0) * 0.1 }.shuffled(using: &r)
        let a = Tensor(shape: [3, 4, 5], scalars: Array(perm[0..<60]))
        let b = Tensor(shape: [4, 1], scalars: [0.55, 2.05, 3.45, 5.15])
        let c = Tensor(shape: [5], scalars: [1.25, 4.65, 0.35, 2.95, 3.85])
        for op in [elementwiseMax, elementwiseMin] {
            ewCheckGradient([a, b, c], { op($0) }) { g in
                elementwiseExtremumPullback(g, inputs: [a, b, c], result: op([a, b, c])).map { $0! }
            }
        }
        ewCheckGradient([a, b, c], { elementwiseSum($0) }) { g in elementwiseSumPullback(g, inputShapes: [a.shape, b.shape, c.shape]) }
        ewCheckGradient([a, b, c], { elementwiseMean($0) }) { g in elementwiseMeanPullback(g, inputShapes: [a.shape, b.shape, c.shape]) }
        // Ties split evenly (PyTorch's maximum): both inputs get half.
        let t = elementwiseExtremumPullback(Tensor(shape: [2], scalars: [1, 1]), inputs: [Tensor(shape: [2], scalars: [1, 2]), Tensor(1)],
                                            result: Tensor(shape: [2], scalars: [1, 2]))
        #expect(t[0]?.scalars == [0.5, 1] && t[1]?.scalars == [0.5])
    }

    @Test func selectPullbackMatchesFiniteDifferences() {
        var r = EWRandom(seed: 19)
        for _ in 0..<20 {
            let (sc, sx) = r.broadcastPair(), (_, sy) = r.broadcastPair()
            guard broadcastShape([sc, sx, sy]) != nil else { continue }
            let cond = Tensor(shape: sc, bools: (0..<sc.reduce(1, *)).map { _ in r.bool() })
            let x = r.tensor(sx), y = r.tensor(sy)
            ewCheckGradient([x, y], { select(cond, $0[0], $0[1]) }) { g in
                let p = selectPullback(g, condition: cond, xShape: sx, yShape: sy); return [p.x!, p.y!]
            }
        }
    }

    @Test func unaryPullbacks() {
        var r = EWRandom(seed: 20)
        let x = r.tensor([4, 6], -2, 2)
        let pos = r.tensor([4, 6], 0.5, 3)
        let apart = r.tensorAwayFromZero([4, 6], 0.1, 2)
        ewCheckGradient([x], { negative($0[0]) }) { g in [negative(g)] }
        ewCheckGradient([apart], { abs($0[0]) }) { g in [absPullback(g, input: apart)] }
        ewCheckGradient([pos], { sqrt($0[0]) }) { g in [sqrtPullback(g, result: sqrt(pos))] }
        ewCheckGradient([x], { exp($0[0]) }) { g in [expPullback(g, result: exp(x))] }
        ewCheckGradient([pos], { log($0[0]) }) { g in [logPullback(g, input: pos)] }
        ewCheckGradient([x], { erf($0[0]) }) { g in [erfPullback(g, input: x)] }
    }
}

extension EWRandom: RandomNumberGenerator {}
