import Foundation
@testable import TensorCore
import Testing

@Suite("LAPACK")
struct LAPACKTests {
    /// The tridiagonal matrix [2 −1 0; −1 2 −1; 0 −1 2] has eigenvalues 2 ± √2 and 2; the largest
    /// one's eigenvector is (1, −√2, 1)/2.
    @Test func largestEigenpairOfAClosedFormMatrix() throws {
        let a: [Double] = [2, -1, 0, -1, 2, -1, 0, -1, 2]
        let (value, vector) = try #require(LAPACK.largestEigenpair(symmetric: a, n: 3))
        #expect(abs(value - (2 + 2.0.squareRoot())) < 1e-12)
        let expected = [0.5, -0.5 * 2.0.squareRoot(), 0.5]
        let sign: Double = vector[0] < 0 ? -1 : 1
        for (v, e) in zip(vector, expected) { #expect(abs(sign * v - e) < 1e-12) }
    }

    /// A rank-one matrix `u·uᵀ` has the single non-zero eigenvalue ‖u‖² with eigenvector u/‖u‖, also
    /// at sizes where the eigenvalue is far from the others (all zero).
    @Test(arguments: [1, 7, 64])
    func largestEigenpairOfARankOneMatrix(_ n: Int) throws {
        let u = (0..<n).map { Double($0 % 5) - 1.5 }
        let norm2 = u.reduce(0) { $0 + $1 * $1 }
        let a = (0..<(n * n)).map { u[$0 / n] * u[$0 % n] }
        let (value, vector) = try #require(LAPACK.largestEigenpair(symmetric: a, n: n))
        #expect(abs(value - norm2) < 1e-10 * norm2)
        let sign: Double = vector[0] * u[0] < 0 ? -1 : 1
        for (v, x) in zip(vector, u) { #expect(abs(sign * v - x / norm2.squareRoot()) < 1e-10) }
    }

    /// Both Gram matrices of a 2×3 matrix against the products written out.
    @Test func gramOfRowsAndColumns() {
        let a: [Double] = [1, 2, 3, 4, 5, 6]
        let rows = a.withUnsafeBufferPointer { LAPACK.gram($0.baseAddress!, rows: 2, columns: 3, ofColumns: false) }
        #expect(rows == [14, 32, 32, 77])
        let columns = a.withUnsafeBufferPointer { LAPACK.gram($0.baseAddress!, rows: 2, columns: 3, ofColumns: true) }
        #expect(columns == [17, 22, 27, 22, 29, 36, 27, 36, 45])
    }
}
