#if canImport(Accelerate)
import Accelerate
#else
import CBLAS
#endif

/// Thin, typed access to the system BLAS (OpenBLAS on Linux, Accelerate on Apple platforms).
///
/// All matrices are row-major Float32.
public enum BLAS {
    /// `C = alpha · op(A) · op(B) + beta · C` with row-major matrices.
    ///
    /// - Parameters:
    ///   - transposeA, transposeB: whether `A` (stored `m×k`, or `k×m` if transposed) and `B`
    ///     (`k×n`, or `n×k`) are used transposed.
    ///   - lda, ldb, ldc: leading dimensions (row strides) of the stored matrices.
    @inlinable
    public static func sgemm(
        transposeA: Bool = false, transposeB: Bool = false,
        m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        guard m > 0, n > 0 else { return }
        if k == 0 {
            // BLAS leaves C untouched when k == 0 only if beta == 1; make the result well defined.
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
            return
        }
        if n == 1 && !transposeB {
            // A matrix-vector product: sgemv is several times faster than sgemm for one column.
            sgemv(transpose: transposeA, rows: transposeA ? k : m, columns: transposeA ? m : k,
                  alpha: alpha, a: a, lda: lda, x: b, incX: ldb, beta: beta, y: c, incY: ldc)
            return
        }
        cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// `y = alpha · op(A) · x + beta · y` with a row-major `rows×columns` matrix `A`.
    @inlinable
    public static func sgemv(
        transpose: Bool, rows: Int, columns: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, x: UnsafePointer<Float>, incX: Int = 1,
        beta: Float = 0, y: UnsafeMutablePointer<Float>, incY: Int = 1
    ) {
        cblas_sgemv(CblasRowMajor, transpose ? CblasTrans : CblasNoTrans, Int32(rows), Int32(columns),
                    alpha, a, Int32(lda), x, Int32(incX), beta, y, Int32(incY))
    }

    #if !canImport(Accelerate)
    /// The number of threads OpenBLAS uses.
    public static var threadCount: Int {
        get { Int(openblas_get_num_threads()) }
        set { openblas_set_num_threads(Int32(max(1, newValue))) }
    }

    /// The name of the kernel family OpenBLAS chose (e.g. "Haswell", "Cooperlake"); it honours the
    /// `OPENBLAS_CORETYPE` environment variable read when the library loads.
    public static var coreName: String { String(cString: openblas_get_corename()) }
    #else
    public static var threadCount: Int { get { 0 } set {} }
    public static var coreName: String { "Accelerate" }
    #endif
}
