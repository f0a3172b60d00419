import Foundation
import Testing
@testable import TensorCore

// Tests of Reduction.swift: sum/mean/maximum/minimum over every subset of axes of rank-4 tensors
// (with and without kept dimensions) against a naive Double reference, the fast paths (last axis,
// (N, C, H, W) → (N, C, 1, 1), long rows split across threads, long strided columns), precision of
// long sums, Int64 data, empty tensors, argmax ties, and every pullback against finite differences.

private func randomTensor(_ shape: [Int], _ rng: inout TestRNG) -> Tensor {
    Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in Float.random(in: -1...1, using: &rng) })
}

/// Distinct values spaced 0.1 apart in random order, so that a ±1e-2 perturbation never changes
/// which element is the maximum or minimum.
private func separatedTensor(_ shape: [Int], _ rng: inout TestRNG) -> Tensor {
    let n = shape.reduce(1, *)
    return Tensor(shape: shape, scalars: (0..<n).map { Float($0) * 0.1 - Float(n) * 0.05 }.shuffled(using: &rng))
}

/// ⟨pullback(g), v⟩ against the central difference of ⟨f(x + εv), g⟩. Sum and mean are linear and
/// max/min are linear near inputs without ties (see `separatedTensor`), so the quotient is exact up
/// to Float rounding; 1e-3 of the Cauchy–Schwarz bound is a wide margin that still catches a wrong
/// element or scale.
private func expectDirectionalDerivative(_ f: (Tensor) -> Tensor, at x: Tensor, gradient g: Tensor,
                                         pullback dx: Tensor, _ rng: inout TestRNG,
                                         sourceLocation: SourceLocation = #_sourceLocation) {
    let v = randomTensor(x.shape, &rng)
    let eps: Float = 1e-2
    let numeric = (testDot(f(testAxpy(x, eps, v)), g) - testDot(f(testAxpy(x, -eps, v)), g)) / (2 * Double(eps))
    let analytic = testDot(dx, v)
    let bound = testDot(dx, dx).squareRoot() * testDot(v, v).squareRoot()
    #expect(abs(numeric - analytic) <= 1e-3 * max(bound, 1e-6), "numeric \(numeric) vs analytic \(analytic)",
            sourceLocation: sourceLocation)
}

private enum NaiveKind { case sum, mean, max, min }

/// The reduction written out: every input element visits its output slot.
private func naiveReduce(_ x: Tensor, axes: [Int], keep: Bool, _ kind: NaiveKind) -> Tensor {
    let shape = x.shape, rank = shape.count
    let set = Set(axes.map { $0 < 0 ? $0 + rank : $0 })
    let kept = shape.enumerated().map { set.contains($0.offset) ? 1 : $0.element }
    let outCount = kept.reduce(1, *)
    var acc = [Double](repeating: kind == .max ? -.infinity : (kind == .min ? .infinity : 0), count: outCount)
    var counts = [Int](repeating: 0, count: outCount)
    let v = x.scalars
    for i in 0..<v.count {
        var rest = i, o = 0, stride = 1
        for d in (0..<rank).reversed() {
            let idx = rest % shape[d]
            rest /= shape[d]
            o += (set.contains(d) ? 0 : idx) * stride
            stride *= kept[d]
        }
        switch kind {
        case .sum, .mean: acc[o] += Double(v[i])
        case .max: acc[o] = max(acc[o], Double(v[i]))
        case .min: acc[o] = min(acc[o], Double(v[i]))
        }
        counts[o] += 1
    }
    if kind == .mean { for o in 0..<outCount { acc[o] /= Double(counts[o]) } }
    let outShape = keep ? kept : shape.enumerated().filter { !set.contains($0.offset) }.map(\.element)
    return Tensor(shape: outShape, scalars: acc.map { Float($0) })
}

@Test func reductionClosedForms() {
    let x = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
    #expect(x.sum() == Tensor(21))
    #expect(x.sum(alongAxes: [0]) == Tensor(shape: [3], scalars: [5, 7, 9]))
    #expect(x.sum(alongAxes: [-1], keepingDimensions: true) == Tensor(shape: [2, 1], scalars: [6, 15]))
    #expect(x.mean(alongAxes: [1]) == Tensor(shape: [2], scalars: [2, 5]))
    #expect(x.mean() == Tensor(3.5))
    #expect(x.maximum(alongAxes: [0]) == Tensor(shape: [3], scalars: [4, 5, 6]))
    #expect(x.minimum(alongAxes: [1], keepingDimensions: true) == Tensor(shape: [2, 1], scalars: [1, 4]))
    #expect(x.maximum() == Tensor(6) && x.minimum() == Tensor(1))
    #expect(x.sum(alongAxes: []) == x)
    #expect(reductionResultShape([2, 3, 4, 5], axes: [1, -1], keepingDimensions: false) == [2, 4])
    #expect(reductionResultShape([2, 3, 4, 5], axes: [2, 3], keepingDimensions: true) == [2, 3, 1, 1])
}

@Test(arguments: 0..<16)
func reductionsOverEveryAxisSubsetMatchNaive(_ mask: Int) {
    var rng = TestRNG(seed: UInt64(mask) + 1)
    let axes = (0..<4).filter { mask & (1 << $0) != 0 }
    for shape in [[2, 3, 4, 5], [3, 1, 17, 33], [1, 5, 1, 40]] {
        let x = randomTensor(shape, &rng)
        for keep in [false, true] {
            for (kind, got) in [(NaiveKind.sum, x.sum(alongAxes: axes, keepingDimensions: keep)),
                                (.mean, x.mean(alongAxes: axes, keepingDimensions: keep)),
                                (.max, x.maximum(alongAxes: axes, keepingDimensions: keep)),
                                (.min, x.minimum(alongAxes: axes, keepingDimensions: keep))] {
                let expected = naiveReduce(x, axes: axes, keep: keep, kind)
                #expect(got.shape == expected.shape, "\(kind) \(shape) axes \(axes)")
                #expect(got.isApproximatelyEqual(to: expected, rtol: 1e-5, atol: 1e-5), "\(kind) \(shape) axes \(axes) keep \(keep)")
            }
        }
    }
}

@Test func globalPoolingShapeAndLongRowsAndColumns() {
    var rng = TestRNG(seed: 5)
    // (N, C, H, W) → (N, C, 1, 1), the dynamo exporter's global average pooling.
    let x = randomTensor([2, 64, 7, 7], &rng)
    #expect(x.mean(alongAxes: [2, 3], keepingDimensions: true)
        .isApproximatelyEqual(to: naiveReduce(x, axes: [2, 3], keep: true, .mean), rtol: 1e-5, atol: 1e-6))
    // One long row: split across threads.
    let long = randomTensor([200_003], &rng)
    #expect(long.sum().isApproximatelyEqual(to: naiveReduce(long, axes: [0], keep: false, .sum), rtol: 1e-5, atol: 1e-3))
    #expect(long.maximum() == naiveReduce(long, axes: [0], keep: false, .max))
    // Long strided columns (more rows than one Float block).
    let tall = randomTensor([9000, 3], &rng)
    #expect(tall.sum(alongAxes: [0]).isApproximatelyEqual(to: naiveReduce(tall, axes: [0], keep: false, .sum), rtol: 1e-5, atol: 1e-3))
}

@Test func longSumsKeepPrecision() {
    // 10⁷ × 0.1: a plain Float accumulator drifts by percents; Double blocks keep ~1e-7.
    let n = 10_000_000
    let x = Tensor(repeating: 0.1, shape: [n])
    let expected = Double(Float(0.1)) * Double(n)
    #expect(abs(Double(x.sum().scalar) - expected) / expected < 1e-6)
    let column = Tensor(repeating: 0.1, shape: [n / 10, 10])
    let perColumn = column.sum(alongAxes: [0]).scalars
    #expect(perColumn.allSatisfy { abs(Double($0) - expected / 10) / (expected / 10) < 1e-6 })
    #expect(abs(Double(x.mean().scalar) - Double(Float(0.1))) < 1e-7)
}

@Test func int64AndEmptyReductions() {
    let x = Tensor(shape: [2, 3], int64s: [1, -2, 3, 4, 5, 6])
    #expect(x.sum(alongAxes: [1]) == Tensor(shape: [2], int64s: [2, 15]))
    #expect(x.maximum(alongAxes: [0]) == Tensor(shape: [3], int64s: [4, 5, 6]))
    #expect(x.minimum() == Tensor(shape: [], int64s: [-2]))
    #expect(x.mean(alongAxes: [0, 1], keepingDimensions: true) == Tensor(shape: [1, 1], int64s: [2]))
    let empty = Tensor(zeros: [2, 0, 3])
    #expect(empty.sum(alongAxes: [1]) == Tensor(zeros: [2, 3]))
    #expect(empty.maximum(alongAxes: [1]).scalars.allSatisfy { $0 == -.infinity })
    #expect(empty.sum(alongAxes: [0]).shape == [0, 3])
}

@Test func argmaxTakesTheFirstMaximum() {
    let x = Tensor(shape: [2, 4], scalars: [1, 5, 5, 0, 7, 2, 7, 7])
    #expect(x.argmax(alongAxis: 1) == Tensor(shape: [2], int64s: [1, 0]))
    #expect(x.argmax(alongAxis: 0, keepingDimension: true) == Tensor(shape: [1, 4], int64s: [1, 0, 1, 1]))
    #expect(x.argmax() == 4)
}

@Test(arguments: [[0], [1], [2], [3], [2, 3], [0, 2], [0, 1, 2, 3], [1, 3]])
func reductionPullbacksMatchFiniteDifferences(_ axes: [Int]) {
    var rng = TestRNG(seed: UInt64(axes.reduce(7) { $0 * 5 + $1 }))
    let shape = [2, 3, 4, 5]
    for keep in [false, true] {
        let x = separatedTensor(shape, &rng)
        let g = randomTensor(reductionResultShape(shape, axes: axes, keepingDimensions: keep), &rng)
        let ds = sumPullback(gradient: g, inputShape: shape, axes: axes, keepingDimensions: keep)
        expectDirectionalDerivative({ $0.sum(alongAxes: axes, keepingDimensions: keep) }, at: x, gradient: g, pullback: ds, &rng)
        let dm = meanPullback(gradient: g, inputShape: shape, axes: axes, keepingDimensions: keep)
        expectDirectionalDerivative({ $0.mean(alongAxes: axes, keepingDimensions: keep) }, at: x, gradient: g, pullback: dm, &rng)
        let dmax = maxPullback(x, gradient: g, axes: axes, keepingDimensions: keep)
        expectDirectionalDerivative({ $0.maximum(alongAxes: axes, keepingDimensions: keep) }, at: x, gradient: g, pullback: dmax, &rng)
        let dmin = minPullback(x, gradient: g, axes: axes, keepingDimensions: keep)
        expectDirectionalDerivative({ $0.minimum(alongAxes: axes, keepingDimensions: keep) }, at: x, gradient: g, pullback: dmin, &rng)
    }
}

@Test func maxPullbackGoesToTheFirstOfTiedMaxima() {
    let x = Tensor(shape: [2, 3], scalars: [1, 3, 3, 2, 2, 2])
    let g = Tensor(shape: [2], scalars: [10, 20])
    #expect(maxPullback(x, gradient: g, axes: [1], keepingDimensions: false)
        == Tensor(shape: [2, 3], scalars: [0, 10, 0, 20, 0, 0]))
    let all = maxPullback(Tensor(shape: [2, 2], scalars: [4, 1, 4, 4]), gradient: Tensor(1), axes: [0, 1], keepingDimensions: false)
    #expect(all == Tensor(shape: [2, 2], scalars: [1, 0, 0, 0]))
    let columns = minPullback(Tensor(shape: [2, 2], scalars: [1, 1, 1, 0]), gradient: Tensor(shape: [2], scalars: [5, 6]),
                              axes: [0], keepingDimensions: false)
    #expect(columns == Tensor(shape: [2, 2], scalars: [5, 0, 0, 6]))
}
