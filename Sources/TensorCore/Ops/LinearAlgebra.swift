// Matrix products: NumPy-style `matmul` (batched, broadcasting) and ONNX-style `gemm`, each with its
// pullback (vector-Jacobian product) right below. All GEMM work goes through the system BLAS.

// MARK: - Shapes

/// The layout of one `matmul` call: the operands promoted to rank ≥ 2, the broadcast batch shape,
/// and for each batch item the index of the `a` and `b` matrices it reads.
private struct MatMulLayout {
    var m = 0, k = 0, n = 0
    /// The broadcast batch dimensions of the result.
    var batchShape: [Int] = []
    var batchCount = 1
    /// The number of matrices stored in `a` and in `b`.
    var aBatchCount = 1, bBatchCount = 1
    /// For each result batch item, the index of the matrix of `a` (of `b`) it multiplies.
    var aIndex: [Int] = [], bIndex: [Int] = []
    /// The shape of the result (1-D operands' extra dimension removed, NumPy semantics).
    var outputShape: [Int] = []

    init?(_ aShape: [Int], _ bShape: [Int]) {
        guard !aShape.isEmpty, !bShape.isEmpty else { return nil }
        let a2 = aShape.count == 1 ? [1] + aShape : aShape
        let b2 = bShape.count == 1 ? bShape + [1] : bShape
        m = a2[a2.count - 2]
        k = a2[a2.count - 1]
        n = b2[b2.count - 1]
        guard b2[b2.count - 2] == k else { return nil }
        let aBatch = Array(a2.dropLast(2)), bBatch = Array(b2.dropLast(2))
        let rank = Swift.max(aBatch.count, bBatch.count)
        let aPadded = [Int](repeating: 1, count: rank - aBatch.count) + aBatch
        let bPadded = [Int](repeating: 1, count: rank - bBatch.count) + bBatch
        var batch: [Int] = []
        for i in 0..<rank {
            let x = aPadded[i], y = bPadded[i]
            if x == y || y == 1 { batch.append(x) } else if x == 1 { batch.append(y) } else { return nil }
        }
        batchShape = batch
        batchCount = batch.reduce(1, *)
        aBatchCount = aBatch.reduce(1, *)
        bBatchCount = bBatch.reduce(1, *)
        if aBatchCount == batchCount && bBatchCount == 1 {
            aIndex = Array(0..<batchCount)
            bIndex = [Int](repeating: 0, count: batchCount)
        } else if batchCount > 0 {
            aIndex = MatMulLayout.broadcastIndices(from: aPadded, to: batch)
            bIndex = MatMulLayout.broadcastIndices(from: bPadded, to: batch)
        }
        var out = batch
        if aShape.count > 1 { out.append(m) }
        if bShape.count > 1 { out.append(n) }
        outputShape = out
    }

    /// For each row-major multi-index of `target`, the flat index into `source` (same rank, extents
    /// equal or 1) that broadcasting reads.
    static func broadcastIndices(from source: [Int], to target: [Int]) -> [Int] {
        let rank = target.count
        var strides = [Int](repeating: 0, count: rank)
        var s = 1
        for d in stride(from: rank - 1, through: 0, by: -1) {
            strides[d] = source[d] == 1 ? 0 : s
            s *= source[d]
        }
        let total = target.reduce(1, *)
        var result = [Int](repeating: 0, count: total)
        var index = [Int](repeating: 0, count: rank)
        var offset = 0
        for i in 0..<total {
            result[i] = offset
            var d = rank - 1
            while d >= 0 {
                index[d] += 1
                offset += strides[d]
                if index[d] < target[d] { break }
                offset -= strides[d] * index[d]
                index[d] = 0
                d -= 1
            }
        }
        return result
    }

    /// For each stored matrix `0..<count`, the batch items that read it (used to accumulate
    /// gradients of broadcast operands without write races).
    static func itemsBySource(_ index: [Int], count: Int) -> [[Int]] {
        var groups = [[Int]](repeating: [], count: count)
        for (item, source) in index.enumerated() { groups[source].append(item) }
        return groups
    }
}

/// The shape of `matmul(a, b)` for operands of the given shapes, or `nil` when they cannot be
/// multiplied (NumPy `matmul` rules: see ``matmul(_:_:)``).
public func matmulResultShape(_ a: [Int], _ b: [Int]) -> [Int]? {
    MatMulLayout(a, b)?.outputShape
}

/// Row-major `C = alpha·op(A)·op(B) + beta·C` that also routes single-row products (`m == 1`, a
/// vector times a matrix, e.g. a fully connected layer at batch 1) to `sgemv`, which OpenBLAS runs
/// several times faster than `sgemm` for one row. ``BLAS/sgemm(transposeA:transposeB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:)``
/// already does so for one column.
@inline(__always)
private func gemmRows(
    transposeA: Bool = false, transposeB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
    a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float = 0,
    c: UnsafeMutablePointer<Float>, ldc: Int
) {
    if m == 1 && n > 1 && k > 0 {
        // c (1×n) = op(B)ᵀ-free form: c = op(B)ᵀ · a as a column, i.e. y = Bᵀx (B stored k×n) or Bx (n×k).
        BLAS.sgemv(transpose: !transposeB, rows: transposeB ? n : k, columns: transposeB ? k : n, alpha: alpha,
                   a: b, lda: ldb, x: a, incX: transposeA ? lda : 1, beta: beta, y: c, incY: 1)
        return
    }
    BLAS.sgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
               a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
}

/// Runs `body(i)` for every batch item across threads with ``parallelFor(_:minimumChunk:_:)`` (each
/// item's product is then one single-threaded BLAS call).
@inline(__always)
private func forEachBatchItem(_ count: Int, _ body: (Int) -> Void) {
    parallelFor(count) { range in for i in range { body(i) } }
}

// MARK: - MatMul

/// The matrix product with NumPy `matmul` semantics (ONNX `MatMul`).
///
/// - A 1-D `a` of shape `(K)` is promoted to `(1, K)` and a 1-D `b` of shape `(K)` to `(K, 1)`; the
///   added dimension is removed from the result.
/// - Dimensions before the last two are batch dimensions and broadcast against each other, e.g.
///   `(B, H, N, D) × (B, H, D, N) → (B, H, N, N)`, `(B, N, C) × (C, D) → (B, N, D)`.
/// - When `b` has no batch dimensions (the ViT/Swin linear layer `(B, N, C) × (C, D)`), the product is
///   a single GEMM with `M = B·N`; otherwise one GEMM per batch item (split across threads when the
///   BLAS is single-threaded).
///
/// - Precondition: both are Float32 and their shapes are compatible (``matmulResultShape(_:_:)``
///   is non-nil).
public func matmul(_ a: Tensor, _ b: Tensor) -> Tensor {
    precondition(a.dtype == .float32 && b.dtype == .float32, "matmul of \(a.dtype) and \(b.dtype) tensors")
    guard let p = MatMulLayout(a.shape, b.shape) else {
        preconditionFailure("matmul: incompatible shapes \(a.shape) and \(b.shape)")
    }
    var out = Tensor(uninitializedShape: p.outputShape)
    let m = p.m, k = p.k, n = p.n
    a.withUnsafeBufferPointer { pa in
        b.withUnsafeBufferPointer { pb in
            out.withUnsafeMutableBufferPointer { pc in
                guard let A = pa.baseAddress, let B = pb.baseAddress, let C = pc.baseAddress else { return }
                if p.bBatchCount == 1 {
                    // One big GEMM: the batch dimensions of `a` fold into its rows.
                    gemmRows(m: p.batchCount * m, n: n, k: k, a: A, lda: k, b: B, ldb: n, c: C, ldc: n)
                } else {
                    let aIndex = p.aIndex, bIndex = p.bIndex
                    forEachBatchItem(p.batchCount) { i in
                        gemmRows(m: m, n: n, k: k, a: A + aIndex[i] * m * k, lda: k,
                                 b: B + bIndex[i] * k * n, ldb: n, c: C + i * m * n, ldc: n)
                    }
                }
            }
        }
    }
    return out
}

/// The pullback of ``matmul(_:_:)``: given `gradient` (the shape of `matmul(a, b)`), returns
/// `∂/∂a = gradient · bᵀ` and `∂/∂b = aᵀ · gradient`, each summed over the batch dimensions its
/// operand was broadcast along and reshaped to the operand's shape (1-D operands included).
///
/// - Parameters:
///   - needA, needB: whether to compute each gradient (`nil` is returned for the other); the
///     weight gradient of a linear layer costs as much as the forward product.
public func matmulPullback(_ a: Tensor, _ b: Tensor, gradient: Tensor,
                           needA: Bool = true, needB: Bool = true) -> (a: Tensor?, b: Tensor?) {
    guard let p = MatMulLayout(a.shape, b.shape) else {
        preconditionFailure("matmul: incompatible shapes \(a.shape) and \(b.shape)")
    }
    precondition(gradient.shape == p.outputShape, "matmul gradient shape \(gradient.shape) ≠ \(p.outputShape)")
    let m = p.m, k = p.k, n = p.n
    var da: Tensor? = nil, db: Tensor? = nil
    a.withUnsafeBufferPointer { pa in
        b.withUnsafeBufferPointer { pb in
            gradient.withUnsafeBufferPointer { pg in
                guard let A = pa.baseAddress, let B = pb.baseAddress, let G = pg.baseAddress else { return }
                if needA {
                    var t = Tensor(zeros: a.shape)
                    t.withUnsafeMutableBufferPointer { pd in
                        guard let D = pd.baseAddress else { return }
                        if p.bBatchCount == 1 {
                            // dA (batch·m × k) = G (batch·m × n) · Bᵀ.
                            gemmRows(transposeB: true, m: p.batchCount * m, n: k, k: n, a: G, lda: n, b: B, ldb: n,
                                     c: D, ldc: k)
                        } else {
                            let groups = MatMulLayout.itemsBySource(p.aIndex, count: p.aBatchCount)
                            let bIndex = p.bIndex
                            forEachBatchItem(p.aBatchCount) { j in
                                for (order, i) in groups[j].enumerated() {
                                    gemmRows(transposeB: true, m: m, n: k, k: n, a: G + i * m * n, lda: n,
                                             b: B + bIndex[i] * k * n, ldb: n, beta: order == 0 ? 0 : 1,
                                             c: D + j * m * k, ldc: k)
                                }
                            }
                        }
                    }
                    da = t
                }
                if needB {
                    var t = Tensor(zeros: b.shape)
                    t.withUnsafeMutableBufferPointer { pd in
                        guard let D = pd.baseAddress else { return }
                        if p.bBatchCount == 1 {
                            // dB (k × n) = Aᵀ (k × batch·m) · G (batch·m × n).
                            gemmRows(transposeA: true, m: k, n: n, k: p.batchCount * m, a: A, lda: k, b: G, ldb: n,
                                     c: D, ldc: n)
                        } else {
                            let groups = MatMulLayout.itemsBySource(p.bIndex, count: p.bBatchCount)
                            let aIndex = p.aIndex
                            forEachBatchItem(p.bBatchCount) { j in
                                for (order, i) in groups[j].enumerated() {
                                    gemmRows(transposeA: true, m: k, n: n, k: m, a: A + aIndex[i] * m * k, lda: k,
                                             b: G + i * m * n, ldb: n, beta: order == 0 ? 0 : 1,
                                             c: D + j * k * n, ldc: n)
                                }
                            }
                        }
                    }
                    db = t
                }
            }
        }
    }
    return (da, db)
}

// MARK: - Gemm

/// The shape `c` must broadcast to, `(m, n)`, checked: `c` has rank ≤ 2 and each of its last two
/// extents (right-aligned) is 1 or the matching extent of `(m, n)`.
public func gemmBiasIsBroadcastable(_ c: [Int], m: Int, n: Int) -> Bool {
    guard c.count <= 2 else { return false }
    let rows = c.count == 2 ? c[0] : 1
    let cols = c.count >= 1 ? c[c.count - 1] : 1
    return (rows == 1 || rows == m) && (cols == 1 || cols == n)
}

/// `alpha · op(a) · op(b) + beta · c` (ONNX `Gemm`), where `op(x)` is `x` or its transpose.
///
/// - Parameters:
///   - a: `(M, K)`, or `(K, M)` when `transposeA`.
///   - b: `(K, N)`, or `(N, K)` when `transposeB`.
///   - c: an optional bias broadcast (unidirectionally) to `(M, N)`: shape `[]`, `[N]`, `[1, N]`,
///     `[M, 1]`, `[M, N]`...
/// - Returns: `(M, N)`.
/// - Precondition: Float32 rank-2 operands with matching `K`, and a broadcastable `c`.
public func gemm(_ a: Tensor, _ b: Tensor, c: Tensor? = nil, alpha: Float = 1, beta: Float = 1,
                 transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
    precondition(a.rank == 2 && b.rank == 2, "gemm needs rank-2 operands, got \(a.shape) and \(b.shape)")
    precondition(a.dtype == .float32 && b.dtype == .float32, "gemm of \(a.dtype) and \(b.dtype) tensors")
    let m = transposeA ? a.shape[1] : a.shape[0], k = transposeA ? a.shape[0] : a.shape[1]
    let n = transposeB ? b.shape[0] : b.shape[1]
    precondition((transposeB ? b.shape[1] : b.shape[0]) == k, "gemm: inner extents of \(a.shape) and \(b.shape) differ")
    var out = Tensor(uninitializedShape: [m, n])
    var gemmBeta: Float = 0
    if let c, beta != 0 {
        precondition(c.dtype == .float32 && gemmBiasIsBroadcastable(c.shape, m: m, n: n),
                     "gemm: bias \(c.shape) does not broadcast to [\(m), \(n)]")
        let rows = c.rank == 2 ? c.shape[0] : 1, cols = c.rank >= 1 ? c.shape[c.rank - 1] : 1
        c.withUnsafeBufferPointer { pc in
            out.withUnsafeMutableBufferPointer { po in
                guard let C = pc.baseAddress, let O = po.baseAddress else { return }
                for i in 0..<m {
                    let src = C + (rows == 1 ? 0 : i * cols), dst = O + i * n
                    if cols == 1 {
                        let v = beta * src[0]
                        for j in 0..<n { dst[j] = v }
                    } else {
                        for j in 0..<n { dst[j] = beta * src[j] }
                    }
                }
            }
        }
        gemmBeta = 1
    }
    a.withUnsafeBufferPointer { pa in
        b.withUnsafeBufferPointer { pb in
            out.withUnsafeMutableBufferPointer { po in
                guard let A = pa.baseAddress, let B = pb.baseAddress, let O = po.baseAddress else { return }
                gemmRows(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                         a: A, lda: a.shape[1], b: B, ldb: b.shape[1], beta: gemmBeta, c: O, ldc: n)
            }
        }
    }
    return out
}

/// The pullback of ``gemm(_:_:c:alpha:beta:transposeA:transposeB:)``: given `gradient` `G` of shape
/// `(M, N)`, returns `∂/∂a = alpha·G·op(b)ᵀ` (transposed back when `transposeA`),
/// `∂/∂b = alpha·op(a)ᵀ·G` (likewise), and `∂/∂c = beta·G` summed down to `c`'s shape.
///
/// - Parameters:
///   - cShape: the shape of the bias `c`, or `nil` when there was none (then `c` is `nil`).
///   - needA, needB, needC: which gradients to compute; `nil` is returned for the others.
public func gemmPullback(_ a: Tensor, _ b: Tensor, cShape: [Int]?, alpha: Float = 1, beta: Float = 1,
                         transposeA: Bool = false, transposeB: Bool = false, gradient: Tensor,
                         needA: Bool = true, needB: Bool = true, needC: Bool = true)
    -> (a: Tensor?, b: Tensor?, c: Tensor?) {
    let m = transposeA ? a.shape[1] : a.shape[0], k = transposeA ? a.shape[0] : a.shape[1]
    let n = transposeB ? b.shape[0] : b.shape[1]
    precondition(gradient.shape == [m, n], "gemm gradient shape \(gradient.shape) ≠ [\(m), \(n)]")
    var da: Tensor? = nil, db: Tensor? = nil, dc: Tensor? = nil
    a.withUnsafeBufferPointer { pa in
        b.withUnsafeBufferPointer { pb in
            gradient.withUnsafeBufferPointer { pg in
                guard let A = pa.baseAddress, let B = pb.baseAddress, let G = pg.baseAddress else { return }
                if needA {
                    var t = Tensor(zeros: a.shape)
                    t.withUnsafeMutableBufferPointer { pd in
                        guard let D = pd.baseAddress else { return }
                        if !transposeA {
                            // dA (m×k) = G (m×n) · op(B)ᵀ; op(B)ᵀ is Bᵀ (B stored k×n) or B itself (stored n×k).
                            gemmRows(transposeB: !transposeB, m: m, n: k, k: n, alpha: alpha, a: G, lda: n,
                                     b: B, ldb: b.shape[1], c: D, ldc: k)
                        } else {
                            // dA (k×m) = op(B) (k×n) · Gᵀ.
                            gemmRows(transposeA: transposeB, transposeB: true, m: k, n: m, k: n, alpha: alpha,
                                     a: B, lda: b.shape[1], b: G, ldb: n, c: D, ldc: m)
                        }
                    }
                    da = t
                }
                if needB {
                    var t = Tensor(zeros: b.shape)
                    t.withUnsafeMutableBufferPointer { pd in
                        guard let D = pd.baseAddress else { return }
                        if !transposeB {
                            // dB (k×n) = op(A)ᵀ (k×m) · G (m×n).
                            gemmRows(transposeA: !transposeA, m: k, n: n, k: m, alpha: alpha, a: A, lda: a.shape[1],
                                     b: G, ldb: n, c: D, ldc: n)
                        } else {
                            // dB (n×k) = Gᵀ (n×m) · op(A) (m×k).
                            gemmRows(transposeA: true, transposeB: transposeA, m: n, n: k, k: m, alpha: alpha,
                                     a: G, lda: n, b: A, ldb: a.shape[1], c: D, ldc: k)
                        }
                    }
                    db = t
                }
            }
        }
    }
    if needC, let cShape {
        let rows = cShape.count == 2 ? cShape[0] : 1, cols = cShape.count >= 1 ? cShape[cShape.count - 1] : 1
        // Double accumulators: a bias gradient sums up to M·N terms.
        var sums = [Double](repeating: 0, count: rows * cols)
        gradient.withUnsafeBufferPointer { pg in
            sums.withUnsafeMutableBufferPointer { ps in
                guard let S = ps.baseAddress, let G = pg.baseAddress else { return }
                for i in 0..<m {
                    let row = S + (rows == 1 ? 0 : i * cols), g = G + i * n
                    if cols == 1 {
                        var t = 0.0
                        for j in 0..<n { t += Double(g[j]) }
                        row[0] += t
                    } else {
                        for j in 0..<n { row[j] += Double(g[j]) }
                    }
                }
            }
        }
        dc = Tensor(shape: cShape, scalars: sums.map { Float(Double(beta) * $0) })
    }
    return (da, db, dc)
}
