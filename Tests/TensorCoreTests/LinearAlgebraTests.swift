import Foundation
import Testing
@testable import TensorCore

// Tests of LinearAlgebra.swift: matmul (NumPy semantics: 1-D promotion, batch broadcasting, the
// single-GEMM fast path, the per-batch path on one and several threads) and gemm (transposes,
// alpha/beta, every bias broadcast) against naive Double references, and both pullbacks against
// central finite differences.

private func randomTensor(_ shape: [Int], _ rng: inout TestRNG) -> Tensor {
    Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in Float.random(in: -1...1, using: &rng) })
}

private func norm(_ a: Tensor) -> Double { testDot(a, a).squareRoot() }

/// Checks a pullback with a directional derivative: ⟨J·v, g⟩ by central differences against
/// ⟨pullback(g), v⟩. ε = 1e-2 in Float: for these bilinear maps the difference quotient is exact up
/// to rounding (~1e-7·√n relative), so 1e-3 of the Cauchy–Schwarz bound ‖pullback(g)‖·‖v‖ leaves a
/// wide margin while catching any wrong term (which would be O(1) of that bound).
private func expectDirectionalDerivative(_ f: (Tensor) -> Tensor, at x: Tensor, gradient g: Tensor,
                                         pullback dx: Tensor, _ rng: inout TestRNG,
                                         sourceLocation: SourceLocation = #_sourceLocation) {
    let v = randomTensor(x.shape, &rng)
    let eps: Float = 1e-2
    let numeric = (testDot(f(testAxpy(x, eps, v)), g) - testDot(f(testAxpy(x, -eps, v)), g)) / (2 * Double(eps))
    let analytic = testDot(dx, v)
    let bound = norm(dx) * norm(v)
    #expect(abs(numeric - analytic) <= 1e-3 * max(bound, 1e-6), "numeric \(numeric) vs analytic \(analytic)",
            sourceLocation: sourceLocation)
}

/// NumPy `matmul` written out directly: promote, broadcast the batch by index arithmetic, sum in Double.
private func naiveMatmul(_ a: Tensor, _ b: Tensor) -> Tensor {
    let a2 = a.rank == 1 ? [1] + a.shape : a.shape, b2 = b.rank == 1 ? b.shape + [1] : b.shape
    let m = a2[a2.count - 2], k = a2[a2.count - 1], n = b2[b2.count - 1]
    let ab = Array(a2.dropLast(2)), bb = Array(b2.dropLast(2))
    let rank = max(ab.count, bb.count)
    let ap = Array(repeating: 1, count: rank - ab.count) + ab, bp = Array(repeating: 1, count: rank - bb.count) + bb
    let batch = zip(ap, bp).map { max($0, $1) }
    let av = a.scalars, bv = b.scalars
    var out: [Float] = []
    for i in 0..<batch.reduce(1, *) {
        var rest = i, ai = 0, bi = 0, aStride = 1, bStride = 1
        for d in stride(from: rank - 1, through: 0, by: -1) {
            let idx = rest % batch[d]
            rest /= batch[d]
            ai += (ap[d] == 1 ? 0 : idx) * aStride
            bi += (bp[d] == 1 ? 0 : idx) * bStride
            aStride *= ap[d]
            bStride *= bp[d]
        }
        for r in 0..<m {
            for c in 0..<n {
                var s = 0.0
                for t in 0..<k { s += Double(av[ai * m * k + r * k + t]) * Double(bv[bi * k * n + t * n + c]) }
                out.append(Float(s))
            }
        }
    }
    var shape = batch
    if a.rank > 1 { shape.append(m) }
    if b.rank > 1 { shape.append(n) }
    return Tensor(shape: shape, scalars: out)
}

private let matmulShapes: [([Int], [Int])] = [
    ([3, 4], [4, 5]), ([4], [4, 5]), ([3, 4], [4]), ([4], [4]), ([1, 4], [4, 7]),
    ([2, 3, 4], [4, 5]), ([2, 1, 4], [4, 6]), ([2, 1, 3, 4], [5, 4, 2]), ([3, 4], [2, 4, 5]),
    ([2, 3, 4], [2, 4, 5]), ([4], [3, 4, 2]), ([2, 3, 4], [4]), ([2, 2, 3, 0], [0, 5]), ([6, 1, 7], [6, 7, 1]),
]

@Test func matmulClosedForm() {
    let a = Tensor(shape: [2, 2], scalars: [1, 2, 3, 4]), b = Tensor(shape: [2, 2], scalars: [5, 6, 7, 8])
    #expect(matmul(a, b) == Tensor(shape: [2, 2], scalars: [19, 22, 43, 50]))
    #expect(matmul(Tensor(shape: [2], scalars: [1, 2]), b) == Tensor(shape: [2], scalars: [19, 22]))
    #expect(matmul(a, Tensor(shape: [2], scalars: [1, 1])) == Tensor(shape: [2], scalars: [3, 7]))
    #expect(matmul(Tensor(shape: [2], scalars: [1, 2]), Tensor(shape: [2], scalars: [3, 4])).shape == [])
}

@Test func matmulResultShapes() {
    #expect(matmulResultShape([2, 3, 4], [4, 5]) == [2, 3, 5])
    #expect(matmulResultShape([4], [4]) == [])
    #expect(matmulResultShape([2, 1, 3, 4], [5, 4, 2]) == [2, 5, 3, 2])
    #expect(matmulResultShape([3, 4], [5, 6]) == nil)
    #expect(matmulResultShape([2, 3, 4], [3, 4, 5]) == nil)
    #expect(matmulResultShape([], [3]) == nil)
}

@Test(arguments: matmulShapes.indices)
func matmulMatchesNaive(_ index: Int) {
    var rng = TestRNG(seed: UInt64(index) + 1)
    let (sa, sb) = matmulShapes[index]
    let a = randomTensor(sa, &rng), b = randomTensor(sb, &rng)
    let expected = naiveMatmul(a, b)
    let got = matmul(a, b)
    #expect(got.shape == expected.shape)
    #expect(got.isApproximatelyEqual(to: expected, rtol: 1e-5, atol: 1e-5))
}

@Test func matmulBatchedAcrossThreads() {
    var rng = TestRNG(seed: 99)
    let a = randomTensor([3, 4, 17, 9], &rng), b = randomTensor([4, 9, 13], &rng)
    let got = matmul(a, b)
    let grads = matmulPullback(a, b, gradient: randomTensor(got.shape, &rng))
    #expect(got.isApproximatelyEqual(to: naiveMatmul(a, b), rtol: 1e-5, atol: 1e-5))
    #expect(grads.a?.shape == a.shape && grads.b?.shape == b.shape)
}

/// Products large enough to be split into bands of rows or columns over the worker pool (every
/// transpose combination, odd sizes so the bands are uneven), and matrix-vector products split
/// over the output, against a float64 reference.
@Test(arguments: [(300, 40, 100), (40, 300, 100), (257, 129, 65), (1, 2000, 700), (2000, 1, 700)])
func splitProductsMatchReference(m: Int, n: Int, k: Int) {
    var rng = TestRNG(seed: UInt64(m * 7 + n))
    let a = randomTensor([m, k], &rng), b = randomTensor([k, n], &rng)
    let expected = naiveMatmul(a, b)
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        let storedA = ta ? a.transposed(permutation: [1, 0]) : a
        let storedB = tb ? b.transposed(permutation: [1, 0]) : b
        var c = Tensor(zeros: [m, n])
        storedA.withUnsafeBufferPointer { pa in
            storedB.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    BLAS.sgemm(transposeA: ta, transposeB: tb, m: m, n: n, k: k, a: pa.baseAddress!, lda: ta ? m : k,
                               b: pb.baseAddress!, ldb: tb ? k : n, c: pc.baseAddress!, ldc: n)
                }
            }
        }
        #expect(c.isApproximatelyEqual(to: expected, rtol: 1e-4, atol: 1e-4), "transposeA \(ta) transposeB \(tb)")
    }
}

@Test(arguments: matmulShapes.indices)
func matmulPullbackMatchesFiniteDifferences(_ index: Int) {
    var rng = TestRNG(seed: UInt64(index) + 100)
    let (sa, sb) = matmulShapes[index]
    let a = randomTensor(sa, &rng), b = randomTensor(sb, &rng)
    let g = randomTensor(matmul(a, b).shape, &rng)
    let (da, db) = matmulPullback(a, b, gradient: g)
    guard let da, let db else { Issue.record("missing gradients"); return }
    #expect(da.shape == a.shape && db.shape == b.shape)
    expectDirectionalDerivative({ matmul($0, b) }, at: a, gradient: g, pullback: da, &rng)
    expectDirectionalDerivative({ matmul(a, $0) }, at: b, gradient: g, pullback: db, &rng)
    let onlyB = matmulPullback(a, b, gradient: g, needA: false)
    #expect(onlyB.a == nil && onlyB.b == db)
}

/// `alpha·op(A)·op(B) + beta·C` written out.
private func naiveGemm(_ a: Tensor, _ b: Tensor, c: Tensor?, alpha: Float, beta: Float, ta: Bool, tb: Bool) -> Tensor {
    let m = ta ? a.shape[1] : a.shape[0], k = ta ? a.shape[0] : a.shape[1], n = tb ? b.shape[0] : b.shape[1]
    let av = a.scalars, bv = b.scalars, cv = c?.scalars
    var out: [Float] = []
    for i in 0..<m {
        for j in 0..<n {
            var s = 0.0
            for t in 0..<k {
                s += Double(ta ? av[t * m + i] : av[i * k + t]) * Double(tb ? bv[j * k + t] : bv[t * n + j])
            }
            var y = Double(alpha) * s
            if let c, let cv {
                let rows = c.rank == 2 ? c.shape[0] : 1, cols = c.rank >= 1 ? c.shape[c.rank - 1] : 1
                y += Double(beta) * Double(cv[(rows == 1 ? 0 : i) * cols + (cols == 1 ? 0 : j)])
            }
            out.append(Float(y))
        }
    }
    return Tensor(shape: [m, n], scalars: out)
}

private let gemmBiasShapes: [[Int]?] = [nil, [], [5], [1, 5], [3, 1], [3, 5], [1]]

@Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
func gemmMatchesNaiveAndFiniteDifferences(_ transposes: (Bool, Bool)) {
    var rng = TestRNG(seed: transposes.0 ? (transposes.1 ? 4 : 3) : (transposes.1 ? 2 : 1))
    let (ta, tb) = transposes
    for (ci, cShape) in gemmBiasShapes.enumerated() {
        for m in [3, 1] {
            let shapeC = cShape.map { $0 == [3, 1] || $0 == [3, 5] ? [m] + $0.dropFirst() : $0 }
            let a = randomTensor(ta ? [4, m] : [m, 4], &rng), b = randomTensor(tb ? [5, 4] : [4, 5], &rng)
            let c = shapeC.map { randomTensor($0, &rng) }
            let alpha: Float = 0.75, beta: Float = ci % 2 == 0 ? 1.5 : 1
            let got = gemm(a, b, c: c, alpha: alpha, beta: beta, transposeA: ta, transposeB: tb)
            let expected = naiveGemm(a, b, c: c, alpha: alpha, beta: beta, ta: ta, tb: tb)
            #expect(got.isApproximatelyEqual(to: expected, rtol: 1e-5, atol: 1e-5), "C \(String(describing: shapeC)) m \(m)")
            let g = randomTensor(got.shape, &rng)
            let (da, db, dc) = gemmPullback(a, b, cShape: c?.shape, alpha: alpha, beta: beta, transposeA: ta,
                                            transposeB: tb, gradient: g)
            guard let da, let db else { Issue.record("missing gradients"); return }
            expectDirectionalDerivative({ gemm($0, b, c: c, alpha: alpha, beta: beta, transposeA: ta, transposeB: tb) },
                                        at: a, gradient: g, pullback: da, &rng)
            expectDirectionalDerivative({ gemm(a, $0, c: c, alpha: alpha, beta: beta, transposeA: ta, transposeB: tb) },
                                        at: b, gradient: g, pullback: db, &rng)
            if let c {
                guard let dc else { Issue.record("missing bias gradient"); return }
                #expect(dc.shape == c.shape)
                expectDirectionalDerivative({ gemm(a, b, c: $0, alpha: alpha, beta: beta, transposeA: ta, transposeB: tb) },
                                            at: c, gradient: g, pullback: dc, &rng)
            } else {
                #expect(dc == nil)
            }
        }
    }
}

@Test func gemmBiasBroadcastRules() {
    #expect(gemmBiasIsBroadcastable([], m: 3, n: 5))
    #expect(gemmBiasIsBroadcastable([5], m: 3, n: 5))
    #expect(gemmBiasIsBroadcastable([3, 1], m: 3, n: 5))
    #expect(!gemmBiasIsBroadcastable([3], m: 3, n: 5))
    #expect(!gemmBiasIsBroadcastable([2, 5], m: 3, n: 5))
    #expect(!gemmBiasIsBroadcastable([1, 3, 5], m: 3, n: 5))
}

/// Timing of the ViT-shaped products (`CAMKIT_BENCH=1`): the linear layer as one GEMM, and the
/// attention products per batch item with the BLAS's threads versus Swift threads over batches.
@Test(.enabled(if: ProcessInfo.processInfo.environment["CAMKIT_BENCH"] == "1"))
func matmulBenchmark() {
    var rng = TestRNG(seed: 7)
    func time(_ label: String, flops: Double, _ body: () -> Void) {
        body()
        let start = DispatchTime.now().uptimeNanoseconds
        let reps = 20
        for _ in 0..<reps { body() }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 / Double(reps)
        print("matmul bench \(label): \(String(format: "%.3f", seconds * 1e3)) ms, \(String(format: "%.1f", flops / seconds / 1e9)) GFLOP/s (BLAS \(BLAS.coreName), \(ComputeSettings.threadCount) threads)")
    }
    let x = randomTensor([1, 197, 768], &rng), w = randomTensor([768, 2304], &rng)
    time("(1,197,768)x(768,2304)", flops: 2 * 197 * 768 * 2304) { _ = matmul(x, w) }
    let xb = randomTensor([8, 197, 768], &rng)
    time("(8,197,768)x(768,2304)", flops: 8 * 2 * 197 * 768 * 2304) { _ = matmul(xb, w) }
    let v = randomTensor([1, 768], &rng), fc = randomTensor([768, 1000], &rng)
    time("(1,768)x(768,1000)", flops: 2 * 768 * 1000) { _ = matmul(v, fc) }
    let q = randomTensor([1, 12, 197, 64], &rng), kT = randomTensor([1, 12, 64, 197], &rng)
    let qb = randomTensor([8, 12, 197, 64], &rng), kTb = randomTensor([8, 12, 64, 197], &rng)
    for threads in Set([ComputeSettings.threadCount, 1]).sorted(by: >) {
        ComputeSettings.withThreadCount(threads) {
            time("attention (1,12,197,64)x(1,12,64,197)", flops: 12 * 2 * 197 * 197 * 64) { _ = matmul(q, kT) }
            time("attention (8,12,197,64)x(8,12,64,197)", flops: 8 * 12 * 2 * 197 * 197 * 64) { _ = matmul(qb, kTb) }
        }
    }
}
