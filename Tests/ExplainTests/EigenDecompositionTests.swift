@testable import Explain
import Foundation
import TensorCore
import Testing

@Suite("EigenDecomposition")
struct EigenDecompositionTests {
    /// Both Gram paths (K ≤ HW and K > HW) give the same projection, and its sign makes it
    /// correlate positively with the channel sum.
    @Test(arguments: [(3, 4, 5), (20, 2, 3), (7, 3, 3)])
    func projectionIsTheFirstPrincipalComponent(_ dims: (Int, Int, Int)) {
        let (k, h, w) = dims
        var state: UInt64 = 12345
        let values = (0..<(2 * k * h * w)).map { _ -> Float in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int(state >> 40) % 1000) / 250 - 2
        }
        let x = Tensor(shape: [2, k, h, w], scalars: values)
        let p = EigenDecomposition.firstComponentProjection(x)
        #expect(p.shape == [2, h, w])
        let hw = h * w
        for b in 0..<2 {
            // Centred (HW, K) matrix; the projection must be an eigenvector of XXᵀ (times σ).
            var xc = [[Double]](repeating: [Double](repeating: 0, count: k), count: hw)
            for c in 0..<k {
                var mean = 0.0
                for q in 0..<hw { mean += Double(values[(b * k + c) * hw + q]) }
                mean /= Double(hw)
                for q in 0..<hw { xc[q][c] = Double(values[(b * k + c) * hw + q]) - mean }
            }
            let proj = (0..<hw).map { Double(p.scalars[b * hw + $0]) }
            // XXᵀ proj = λ proj with λ = ‖proj‖².
            let lambda = proj.reduce(0) { $0 + $1 * $1 }
            for q in 0..<hw {
                var s = 0.0
                for r in 0..<hw {
                    var dot = 0.0
                    for c in 0..<k { dot += xc[q][c] * xc[r][c] }
                    s += dot * proj[r]
                }
                #expect(abs(s - lambda * proj[q]) < 1e-3 * max(1, abs(lambda)))
            }
            // Sign: positive correlation with the centred channel sum.
            var corr = 0.0
            for q in 0..<hw { corr += proj[q] * xc[q].reduce(0, +) }
            #expect(corr >= 0)
        }
    }

    @Test func nanBecomesZeroAndZeroInputGivesZeros() {
        var values = [Float](repeating: 0, count: 2 * 3 * 3)
        values[4] = .nan
        let p = EigenDecomposition.firstComponentProjection(Tensor(shape: [1, 2, 3, 3], scalars: values))
        #expect(p.scalars.allSatisfy { $0 == 0 })
    }
}
