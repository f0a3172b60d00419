#if canImport(Accelerate)
import Accelerate
#else
import CBLAS
#endif

/// Thin, typed access to the system BLAS (OpenBLAS on Linux, Accelerate on Apple platforms).
///
/// All matrices are row-major Float32.
///
/// Threads: OpenBLAS itself runs single-threaded inside CAMKit (set on first use). A large product
/// is split into ``ComputeSettings/threadCount`` parts — bands of rows or columns of `C` — run on
/// CAMKit's ``WorkerPool``, so one pool of threads serves every kernel: OpenBLAS's own workers
/// spin for a long while after each call and, on a 2-core machine, took the cores from the
/// kernels that followed. Inside an already parallel kernel a product runs as one single-threaded
/// call. The split depends only on the thread count and the call structure, never on timing, so
/// results are reproducible run to run.
public enum BLAS {
    /// Products with fewer multiply-accumulates than this run as one call.
    static let minimumSplitWork = 1 << 20

    /// `C = alpha · op(A) · op(B) + beta · C` with row-major matrices.
    ///
    /// - Parameters:
    ///   - transposeA, transposeB: whether `A` (stored `m×k`, or `k×m` if transposed) and `B`
    ///     (`k×n`, or `n×k`) are used transposed.
    ///   - lda, ldb, ldc: leading dimensions (row strides) of the stored matrices.
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
        let parts = splitCount(work: m * n * k, extent: max(m, n))
        if parts <= 1 {
            singleThreadedSgemm(transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        } else if m >= n {
            // Bands of rows of C (and of op(A)).
            parallelFor(parts) { range in
                for part in range {
                    let r0 = m * part / parts, r1 = m * (part + 1) / parts
                    singleThreadedSgemm(transposeA, transposeB, r1 - r0, n, k, alpha,
                                        transposeA ? a + r0 : a + r0 * lda, lda, b, ldb, beta, c + r0 * ldc, ldc)
                }
            }
        } else {
            // Bands of columns of C (and of op(B)).
            parallelFor(parts) { range in
                for part in range {
                    let c0 = n * part / parts, c1 = n * (part + 1) / parts
                    singleThreadedSgemm(transposeA, transposeB, m, c1 - c0, k, alpha, a, lda,
                                        transposeB ? b + c0 * ldb : b + c0, ldb, beta, c + c0, ldc)
                }
            }
        }
    }

    /// `y = alpha · op(A) · x + beta · y` with a row-major `rows×columns` matrix `A`.
    public static func sgemv(
        transpose: Bool, rows: Int, columns: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, x: UnsafePointer<Float>, incX: Int = 1,
        beta: Float = 0, y: UnsafeMutablePointer<Float>, incY: Int = 1
    ) {
        let outputs = transpose ? columns : rows
        let parts = splitCount(work: rows * columns, extent: outputs / 64)
        if parts <= 1 {
            singleThreadedSgemv(transpose, rows, columns, alpha, a, lda, x, incX, beta, y, incY)
            return
        }
        // Bands of the output vector: rows of A, or (transposed) columns of A.
        parallelFor(parts) { range in
            for part in range {
                let o0 = outputs * part / parts, o1 = outputs * (part + 1) / parts
                if transpose {
                    singleThreadedSgemv(true, rows, o1 - o0, alpha, a + o0, lda, x, incX, beta, y + o0 * incY, incY)
                } else {
                    singleThreadedSgemv(false, o1 - o0, columns, alpha, a + o0 * lda, lda, x, incX, beta,
                                        y + o0 * incY, incY)
                }
            }
        }
    }

    /// How many parts a product of `work` multiply-accumulates is split into (1: not at all).
    private static func splitCount(work: Int, extent: Int) -> Int {
        let threads = ComputeSettings.threadCount
        guard threads > 1, work >= minimumSplitWork, !WorkerPool.isInsideParallelRegion else { return 1 }
        return max(1, min(threads, extent))
    }

    private static func singleThreadedSgemm(
        _ transposeA: Bool, _ transposeB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
        _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int, _ beta: Float,
        _ c: UnsafeMutablePointer<Float>, _ ldc: Int
    ) {
        _ = singleThreaded
        cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    private static func singleThreadedSgemv(
        _ transpose: Bool, _ rows: Int, _ columns: Int, _ alpha: Float, _ a: UnsafePointer<Float>, _ lda: Int,
        _ x: UnsafePointer<Float>, _ incX: Int, _ beta: Float, _ y: UnsafeMutablePointer<Float>, _ incY: Int
    ) {
        _ = singleThreaded
        cblas_sgemv(CblasRowMajor, transpose ? CblasTrans : CblasNoTrans, Int32(rows), Int32(columns),
                    alpha, a, Int32(lda), x, Int32(incX), beta, y, Int32(incY))
    }

    /// Limits OpenBLAS to one thread, once.
    static let singleThreaded: Bool = {
        #if !canImport(Accelerate)
        openblas_set_num_threads(1)
        #endif
        return true
    }()

    #if !canImport(Accelerate)
    /// The name of the kernel family OpenBLAS chose (e.g. "Haswell", "Cooperlake"); it honours the
    /// `OPENBLAS_CORETYPE` environment variable read when the library loads.
    public static var coreName: String { String(cString: openblas_get_corename()) }
    #else
    public static var coreName: String { "Accelerate" }
    #endif
}
