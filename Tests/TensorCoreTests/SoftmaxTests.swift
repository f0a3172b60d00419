import Foundation
import Testing
@testable import TensorCore

// Tests of Softmax.swift: softmax and log-softmax along every axis (contiguous and strided, rows
// with SIMD tails) against a Double reference, stability for huge and −∞ logits, the vectorised
// exp's accuracy, and both pullbacks against finite differences.

private func randomTensor(_ shape: [Int], _ rng: inout TestRNG, scale: Float = 3) -> Tensor {
    Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in Float.random(in: -scale...scale, using: &rng) })
}

/// ⟨pullback(g), v⟩ against the central difference of ⟨f(x + εv), g⟩ with ε = 1e-2. Softmax's
/// third derivatives are O(1), so the truncation error is ~ε²/6 ≈ 2e-5 of the derivative's scale,
/// and Float rounding adds ~1e-7·√n/ε; 2e-3 of the Cauchy–Schwarz bound covers both with margin.
private func expectDirectionalDerivative(_ f: (Tensor) -> Tensor, at x: Tensor, gradient g: Tensor,
                                         pullback dx: Tensor, _ rng: inout TestRNG,
                                         sourceLocation: SourceLocation = #_sourceLocation) {
    let v = randomTensor(x.shape, &rng, scale: 1)
    let eps: Float = 1e-2
    let numeric = (testDot(f(testAxpy(x, eps, v)), g) - testDot(f(testAxpy(x, -eps, v)), g)) / (2 * Double(eps))
    let analytic = testDot(dx, v)
    let bound = testDot(dx, dx).squareRoot() * testDot(v, v).squareRoot()
    #expect(abs(numeric - analytic) <= 2e-3 * max(bound, 1e-6), "numeric \(numeric) vs analytic \(analytic)",
            sourceLocation: sourceLocation)
}

/// Softmax (or log-softmax) in Double, slice by slice.
private func naiveSoftmax(_ x: Tensor, axis: Int, log: Bool) -> Tensor {
    let shape = x.shape, a = axis < 0 ? axis + shape.count : axis
    let outer = shape[..<a].reduce(1, *), r = shape[a], inner = shape[(a + 1)...].reduce(1, *)
    let v = x.scalars.map(Double.init)
    var out = [Float](repeating: 0, count: v.count)
    for o in 0..<outer {
        for j in 0..<inner {
            let idx = (0..<r).map { (o * r + $0) * inner + j }
            let m = idx.map { v[$0] }.max() ?? 0
            let s = idx.reduce(0.0) { $0 + Foundation.exp(v[$1] - m) }
            for i in idx { out[i] = Float(log ? v[i] - m - Foundation.log(s) : Foundation.exp(v[i] - m) / s) }
        }
    }
    return Tensor(shape: shape, scalars: out)
}

@Test func softmaxClosedForm() {
    let y = softmax(Tensor(shape: [3], scalars: [1, 2, 3]))
    let e = [1, 2, 3].map { Foundation.exp(Double($0)) }, s = e.reduce(0, +)
    #expect(y.isApproximatelyEqual(to: Tensor(shape: [3], scalars: e.map { Float($0 / s) }), rtol: 1e-6, atol: 1e-7))
    #expect(softmax(Tensor(shape: [2, 2], scalars: [0, 0, 5, 5]), alongAxis: 0)
        .isApproximatelyEqual(to: Tensor(shape: [2, 2], scalars: [0.0066928509, 0.0066928509, 0.99330715, 0.99330715]), rtol: 1e-5))
}

@Test(arguments: [([2, 3, 37], 2), ([2, 3, 37], -1), ([4, 21, 5], 1), ([33, 2, 3], 0), ([1, 1], 1), ([5, 16], 1), ([3, 200], -1)])
func softmaxAndLogSoftmaxMatchNaive(_ shape: [Int], _ axis: Int) {
    var rng = TestRNG(seed: UInt64(shape.reduce(axis + 10, *)))
    let x = randomTensor(shape, &rng, scale: 8)
    #expect(softmax(x, alongAxis: axis).isApproximatelyEqual(to: naiveSoftmax(x, axis: axis, log: false), rtol: 2e-6, atol: 1e-8))
    #expect(logSoftmax(x, alongAxis: axis).isApproximatelyEqual(to: naiveSoftmax(x, axis: axis, log: true), rtol: 2e-6, atol: 2e-6))
}

@Test func softmaxIsStableForHugeAndInfiniteLogits() {
    let x = Tensor(shape: [2, 4], scalars: [1000, 999, -.infinity, 1000, -1e30, 0, 1, 88])
    let y = softmax(x)
    #expect(y.scalars.allSatisfy { $0.isFinite })
    #expect(y.isApproximatelyEqual(to: naiveSoftmax(x, axis: 1, log: false), rtol: 1e-5, atol: 1e-30))
    #expect(y.scalars[2] == 0)
    let l = logSoftmax(Tensor(shape: [3], scalars: [1000, 0, -1000]))
    #expect(abs(l.scalars[0]) < 1e-6 && abs(l.scalars[1] + 1000) < 1e-3)
}

@Test func vectorisedExpIsAccurate() {
    // Softmax of (x, 0) is exp(x)/(exp(x)+1): checks the exp kernel over its whole working range.
    var worst = 0.0
    for i in 0..<2000 {
        let t = -80 + Float(i) * 0.04
        let y = softmax(Tensor(shape: [2], scalars: [t, 0])).scalars[0]
        let expected = 1 / (1 + Foundation.exp(-Double(t)))
        worst = max(worst, abs(Double(y) - expected) / expected)
    }
    #expect(worst < 1e-6, "worst relative error \(worst)")
}

@Test(arguments: [([3, 7], 1), ([2, 5, 3], 1), ([4, 3, 2], 0), ([2, 19], -1)])
func softmaxPullbacksMatchFiniteDifferences(_ shape: [Int], _ axis: Int) {
    var rng = TestRNG(seed: UInt64(shape.reduce(axis + 3, *)))
    let x = randomTensor(shape, &rng)
    let g = randomTensor(shape, &rng, scale: 1)
    let y = softmax(x, alongAxis: axis)
    expectDirectionalDerivative({ softmax($0, alongAxis: axis) }, at: x, gradient: g,
                                pullback: softmaxPullback(output: y, gradient: g, alongAxis: axis), &rng)
    let l = logSoftmax(x, alongAxis: axis)
    expectDirectionalDerivative({ logSoftmax($0, alongAxis: axis) }, at: x, gradient: g,
                                pullback: logSoftmaxPullback(output: l, gradient: g, alongAxis: axis), &rng)
}

/// Timing of ViT attention's softmax (`CAMKIT_BENCH=1`).
@Test(.enabled(if: ProcessInfo.processInfo.environment["CAMKIT_BENCH"] == "1"))
func softmaxBenchmark() {
    var rng = TestRNG(seed: 1)
    let x = randomTensor([1, 12, 197, 197], &rng)
    _ = softmax(x)
    let start = DispatchTime.now().uptimeNanoseconds
    for _ in 0..<50 { _ = softmax(x) }
    let ms = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6 / 50
    print("softmax bench (1,12,197,197) last axis: \(String(format: "%.3f", ms)) ms, \(String(format: "%.0f", Double(x.count) / ms / 1e3)) Melem/s")
}
