#if canImport(Accelerate)
import Accelerate
#else
import CBLAS
#endif

/// Dense symmetric linear algebra in Double through the system BLAS and LAPACK (OpenBLAS on
/// Linux, Accelerate on Apple platforms). All matrices are row-major.
public enum LAPACK {
    /// The Gram matrix of the rows of `a` (`A·Aᵀ`, `rows×rows`) or, with `ofColumns`, of its
    /// columns (`Aᵀ·A`, `columns×columns`), for a row-major `rows×columns` matrix `a`; both
    /// triangles are filled. One single-threaded `dsyrk` call.
    public static func gram(_ a: UnsafePointer<Double>, rows: Int, columns: Int, ofColumns: Bool) -> [Double] {
        let n = ofColumns ? columns : rows
        guard n > 0 else { return [] }
        _ = BLAS.singleThreaded
        var c = [Double](repeating: 0, count: n * n)
        c.withUnsafeMutableBufferPointer { cp in
            guard let base = cp.baseAddress else { return }
            cblas_dsyrk(CblasRowMajor, CblasUpper, ofColumns ? CblasTrans : CblasNoTrans, Int32(n),
                        Int32(ofColumns ? rows : columns), 1, a, Int32(max(columns, 1)), 0, base, Int32(n))
            for i in 0..<n { for j in 0..<i { base[i * n + j] = base[j * n + i] } }
        }
        return c
    }

    /// The largest eigenvalue of the symmetric `n×n` matrix `a` (row-major, both triangles
    /// filled) and a unit eigenvector for it, by LAPACK's `dsyevr` (relatively robust
    /// representations, only the one eigenpair computed); `nil` if LAPACK reports a failure.
    ///
    /// The eigenvector's sign is LAPACK's: callers that need a deterministic sign choose it.
    public static func largestEigenpair(symmetric a: [Double], n: Int) -> (value: Double, vector: [Double])? {
        precondition(a.count == n * n, "a \(n)×\(n) matrix needs \(n * n) values, got \(a.count)")
        guard n > 0 else { return nil }
        _ = BLAS.singleThreaded
        // Row-major with both triangles equals its column-major transpose: LAPACK reads the lower one.
        var matrix = a
        var jobz = CChar(UInt8(ascii: "V")), range = CChar(UInt8(ascii: "I")), uplo = CChar(UInt8(ascii: "L"))
        var order = Int32(n), lda = Int32(n), il = Int32(n), iu = Int32(n), ldz = Int32(n)
        var vl = 0.0, vu = 0.0, abstol = Double.leastNormalMagnitude
        var found: Int32 = 0, info: Int32 = 0
        var values = [Double](repeating: 0, count: n), vector = [Double](repeating: 0, count: n)
        var support = [Int32](repeating: 0, count: 2)
        var workSize = 0.0, iworkSize: Int32 = 0, query: Int32 = -1
        func call(_ work: UnsafeMutablePointer<Double>, _ lwork: UnsafeMutablePointer<Int32>,
                  _ iwork: UnsafeMutablePointer<Int32>, _ liwork: UnsafeMutablePointer<Int32>) {
            #if canImport(Accelerate)
            dsyevr_(&jobz, &range, &uplo, &order, &matrix, &lda, &vl, &vu, &il, &iu, &abstol, &found, &values,
                    &vector, &ldz, &support, work, lwork, iwork, liwork, &info)
            #else
            dsyevr_(&jobz, &range, &uplo, &order, &matrix, &lda, &vl, &vu, &il, &iu, &abstol, &found, &values,
                    &vector, &ldz, &support, work, lwork, iwork, liwork, &info, 1, 1, 1)
            #endif
        }
        var queryCount = query
        call(&workSize, &query, &iworkSize, &queryCount)
        guard info == 0 else { return nil }
        var lwork = Int32(workSize), liwork = iworkSize
        var work = [Double](repeating: 0, count: Int(lwork))
        var iwork = [Int32](repeating: 0, count: Int(liwork))
        call(&work, &lwork, &iwork, &liwork)
        guard info == 0, found == 1 else { return nil }
        return (values[0], vector)
    }
}
