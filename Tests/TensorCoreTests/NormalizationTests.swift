import Foundation
import Testing
@testable import TensorCore

// Tests of Normalization.swift: batch norm (inference), layer norm (several axes, broadcast
// parameters, statistics outputs), group and instance norm against Double references, precision
// with a large mean offset, and every pullback (input, scale, bias) against finite differences.

private func randomTensor(_ shape: [Int], _ rng: inout TestRNG, in range: ClosedRange<Float> = -1...1) -> Tensor {
    Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in Float.random(in: range, using: &rng) })
}

/// ⟨pullback(g), v⟩ against the central difference of ⟨f(x + εv), g⟩ with ε = 1e-2. The
/// normalisations are smooth with O(1) third derivatives for unit-variance inputs (slices of ≥ 6
/// elements), so the truncation error is ~ε² ≈ 1e-4 relative and Float rounding ~1e-7·√n/ε;
/// 2e-3 of the Cauchy–Schwarz bound covers both while catching a missing term.
private func expectDirectionalDerivative(_ f: (Tensor) -> Tensor, at x: Tensor, gradient g: Tensor,
                                         pullback dx: Tensor?, _ rng: inout TestRNG,
                                         sourceLocation: SourceLocation = #_sourceLocation) {
    guard let dx else { Issue.record("missing gradient", sourceLocation: sourceLocation); return }
    #expect(dx.shape == x.shape, sourceLocation: sourceLocation)
    let v = randomTensor(x.shape, &rng)
    let eps: Float = 1e-2
    let numeric = (testDot(f(testAxpy(x, eps, v)), g) - testDot(f(testAxpy(x, -eps, v)), g)) / (2 * Double(eps))
    let analytic = testDot(dx, v)
    let bound = testDot(dx, dx).squareRoot() * testDot(v, v).squareRoot()
    #expect(abs(numeric - analytic) <= 2e-3 * max(bound, 1e-6), "numeric \(numeric) vs analytic \(analytic)",
            sourceLocation: sourceLocation)
}

/// Normalises `rows × d` slices in Double; `scaleAt(row, j)` / `biasAt(row, j)` give the affine terms.
private func naiveNormalize(_ x: [Float], rows: Int, d: Int, epsilon: Double,
                            scaleAt: (Int, Int) -> Float, biasAt: (Int, Int) -> Float) -> (y: [Float], mean: [Float], inv: [Float]) {
    var y = [Float](repeating: 0, count: x.count), means: [Float] = [], invs: [Float] = []
    for r in 0..<rows {
        let slice = (0..<d).map { Double(x[r * d + $0]) }
        let mu = slice.reduce(0, +) / Double(d)
        let variance = slice.reduce(0) { $0 + ($1 - mu) * ($1 - mu) } / Double(d)
        let inv = 1 / (variance + epsilon).squareRoot()
        for j in 0..<d { y[r * d + j] = Float((slice[j] - mu) * inv * Double(scaleAt(r, j)) + Double(biasAt(r, j))) }
        means.append(Float(mu))
        invs.append(Float(inv))
    }
    return (y, means, invs)
}

@Test func batchNormMatchesNaiveAndFiniteDifferences() {
    var rng = TestRNG(seed: 1)
    let x = randomTensor([2, 3, 4, 5], &rng)
    let scale = randomTensor([3], &rng), bias = randomTensor([3], &rng), mean = randomTensor([3], &rng)
    let variance = randomTensor([3], &rng, in: 0.5...2)
    let eps: Float = 1e-3
    let y = batchNormInference(x, scale: scale, bias: bias, mean: mean, variance: variance, epsilon: eps)
    let (s, b, m, v) = (scale.scalars, bias.scalars, mean.scalars, variance.scalars)
    let expected = x.scalars.enumerated().map { i, xv -> Float in
        let c = (i / 20) % 3
        return Float(Double(s[c]) * (Double(xv) - Double(m[c])) / (Double(v[c]) + Double(eps)).squareRoot() + Double(b[c]))
    }
    #expect(y.isApproximatelyEqual(to: Tensor(shape: x.shape, scalars: expected), rtol: 1e-5, atol: 1e-6))
    let g = randomTensor(x.shape, &rng)
    let (dx, dScale, dBias) = batchNormInferencePullback(x, scale: scale, mean: mean, variance: variance, epsilon: eps, gradient: g)
    expectDirectionalDerivative({ batchNormInference($0, scale: scale, bias: bias, mean: mean, variance: variance, epsilon: eps) },
                                at: x, gradient: g, pullback: dx, &rng)
    expectDirectionalDerivative({ batchNormInference(x, scale: $0, bias: bias, mean: mean, variance: variance, epsilon: eps) },
                                at: scale, gradient: g, pullback: dScale, &rng)
    expectDirectionalDerivative({ batchNormInference(x, scale: scale, bias: $0, mean: mean, variance: variance, epsilon: eps) },
                                at: bias, gradient: g, pullback: dBias, &rng)
    // Rank 2 (N, C): a BatchNorm1d after a linear layer.
    let x2 = randomTensor([4, 3], &rng)
    let y2 = batchNormInference(x2, scale: scale, bias: bias, mean: mean, variance: variance, epsilon: eps)
    #expect(abs(y2.scalars[4] - Float(Double(s[1]) * Double(x2.scalars[4] - m[1]) / Double(v[1] + eps).squareRoot() + Double(b[1]))) < 1e-5)
}

@Test(arguments: [([2, 5, 8], -1, [8]), ([2, 5, 8], 1, [5, 8]), ([3, 4, 6], 1, [6]), ([2, 3, 2, 4], 2, [1, 4]), ([4, 7], 0, [4, 7])])
func layerNormMatchesNaiveAndFiniteDifferences(_ shape: [Int], _ axis: Int, _ parameterShape: [Int]) {
    var rng = TestRNG(seed: UInt64(shape.reduce(axis + 20, *)))
    let x = randomTensor(shape, &rng)
    let scale = randomTensor(parameterShape, &rng), bias = randomTensor(parameterShape, &rng)
    let eps: Float = 1e-5
    let a = axis < 0 ? axis + shape.count : axis
    let rows = shape[..<a].reduce(1, *), d = shape[a...].reduce(1, *)
    let normalized = Array(shape[a...])
    // Parameter value at position j of the normalised slice, broadcasting right-aligned.
    func parameter(_ p: Tensor) -> (Int, Int) -> Float {
        let values = p.scalars, padded = Array(repeating: 1, count: normalized.count - p.rank) + p.shape
        return { _, j in
            var rest = j, offset = 0, stride = 1
            for k in (0..<normalized.count).reversed() {
                let idx = rest % normalized[k]
                rest /= normalized[k]
                offset += (padded[k] == 1 ? 0 : idx) * stride
                stride *= padded[k]
            }
            return values[offset]
        }
    }
    let (y, mean, inv) = layerNorm(x, scale: scale, bias: bias, axis: axis, epsilon: eps)
    let expected = naiveNormalize(x.scalars, rows: rows, d: d, epsilon: Double(eps), scaleAt: parameter(scale), biasAt: parameter(bias))
    #expect(y.isApproximatelyEqual(to: Tensor(shape: shape, scalars: expected.y), rtol: 1e-5, atol: 1e-5))
    #expect(mean.shape == Array(shape[..<a]) + Array(repeating: 1, count: shape.count - a))
    #expect(mean.scalars == expected.mean || mean.isApproximatelyEqual(to: Tensor(shape: mean.shape, scalars: expected.mean), atol: 1e-6))
    #expect(inv.isApproximatelyEqual(to: Tensor(shape: inv.shape, scalars: expected.inv), rtol: 1e-5))
    #expect(layerNorm(x, scale: scale, axis: axis, epsilon: eps).output
        .isApproximatelyEqual(to: Tensor(shape: shape, scalars: naiveNormalize(x.scalars, rows: rows, d: d, epsilon: Double(eps),
                                                                                scaleAt: parameter(scale), biasAt: { _, _ in 0 }).y),
                              rtol: 1e-5, atol: 1e-5))

    let g = randomTensor(shape, &rng)
    let (dx, dScale, dBias) = layerNormPullback(x, scale: scale, biasShape: bias.shape, axis: axis, epsilon: eps, gradient: g)
    expectDirectionalDerivative({ layerNorm($0, scale: scale, bias: bias, axis: axis, epsilon: eps).output },
                                at: x, gradient: g, pullback: dx, &rng)
    expectDirectionalDerivative({ layerNorm(x, scale: $0, bias: bias, axis: axis, epsilon: eps).output },
                                at: scale, gradient: g, pullback: dScale, &rng)
    expectDirectionalDerivative({ layerNorm(x, scale: scale, bias: $0, axis: axis, epsilon: eps).output },
                                at: bias, gradient: g, pullback: dBias, &rng)
}

@Test func layerNormIsPreciseWithALargeOffset() {
    // Values 1e4 ± 1: E[x²] − μ² in Float would lose every digit; two-pass Double keeps them.
    var rng = TestRNG(seed: 3)
    let noise = randomTensor([4, 768], &rng)
    let x = Tensor(shape: noise.shape, scalars: noise.scalars.map { 10_000 + $0 })
    let ones = Tensor(repeating: 1, shape: [768])
    let y = layerNorm(x, scale: ones, epsilon: 1e-5).output
    let reference = naiveNormalize(x.scalars, rows: 4, d: 768, epsilon: 1e-5, scaleAt: { _, _ in 1 }, biasAt: { _, _ in 0 }).y
    // Float spacing at 1e4 is ~1e-3, so inputs carry ~1e-3 absolute error relative to σ ≈ 0.58.
    #expect(y.isApproximatelyEqual(to: Tensor(shape: x.shape, scalars: reference), rtol: 1e-4, atol: 1e-4))
}

@Test(arguments: [([2, 6, 3, 4], 3), ([2, 6, 3, 4], 1), ([1, 4, 10], 4), ([3, 8, 2, 2], 2)])
func groupNormMatchesNaiveAndFiniteDifferences(_ shape: [Int], _ groups: Int) {
    var rng = TestRNG(seed: UInt64(shape.reduce(groups, *)))
    let x = randomTensor(shape, &rng)
    let c = shape[1], s = shape[2...].reduce(1, *), d = c / groups * s
    let scale = randomTensor([c], &rng), bias = randomTensor([c], &rng)
    let eps: Float = 1e-5
    let (sv, bv) = (scale.scalars, bias.scalars)
    let expected = naiveNormalize(x.scalars, rows: shape[0] * groups, d: d, epsilon: Double(eps),
                                  scaleAt: { r, j in sv[(r % groups) * (c / groups) + j / s] },
                                  biasAt: { r, j in bv[(r % groups) * (c / groups) + j / s] })
    let y = groupNorm(x, groupCount: groups, scale: scale, bias: bias, epsilon: eps)
    #expect(y.isApproximatelyEqual(to: Tensor(shape: shape, scalars: expected.y), rtol: 1e-5, atol: 1e-5))
    if groups == c {
        #expect(instanceNorm(x, scale: scale, bias: bias, epsilon: eps) == y)
    }
    let g = randomTensor(shape, &rng)
    let (dx, dScale, dBias) = groupNormPullback(x, groupCount: groups, scale: scale, epsilon: eps, gradient: g)
    expectDirectionalDerivative({ groupNorm($0, groupCount: groups, scale: scale, bias: bias, epsilon: eps) },
                                at: x, gradient: g, pullback: dx, &rng)
    expectDirectionalDerivative({ groupNorm(x, groupCount: groups, scale: $0, bias: bias, epsilon: eps) },
                                at: scale, gradient: g, pullback: dScale, &rng)
    expectDirectionalDerivative({ groupNorm(x, groupCount: groups, scale: scale, bias: $0, epsilon: eps) },
                                at: bias, gradient: g, pullback: dBias, &rng)
}

@Test func instanceNormPullbackMatchesFiniteDifferences() {
    var rng = TestRNG(seed: 11)
    let x = randomTensor([2, 3, 4, 4], &rng)
    let scale = randomTensor([3], &rng), bias = randomTensor([3], &rng)
    let g = randomTensor(x.shape, &rng)
    let (dx, _, _) = instanceNormPullback(x, scale: scale, epsilon: 1e-5, gradient: g)
    expectDirectionalDerivative({ instanceNorm($0, scale: scale, bias: bias, epsilon: 1e-5) }, at: x, gradient: g, pullback: dx, &rng)
    let onlyInput = instanceNormPullback(x, scale: scale, gradient: g, needParameters: false)
    #expect(onlyInput.scale == nil && onlyInput.input == dx)
}
