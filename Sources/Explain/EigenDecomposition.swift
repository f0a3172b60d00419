import TensorCore

/// Symmetric eigen-decomposition and the first-principal-component projection behind EigenCAM,
/// EigenGradCAM and `eigen_smooth`.
///
/// Reference: pytorch-grad-cam `utils/svd_on_activations.py`, `get_2d_projection`: per image,
/// NaN → 0, reshape (K, H·W) → (H·W, K), subtract each column's mean, full SVD, projection
/// `X · V[0]` (the first right-singular vector), reshape to (H, W).
///
/// CAMKit computes the same vector as the top eigenvector of the smaller Gram matrix (`XᵀX`, K×K,
/// or `XXᵀ`, HW×HW, from which `V[0] = Xᵀu / ‖Xᵀu‖`) in Double: the Gram matrix by BLAS `dsyrk`,
/// the one eigenpair by LAPACK `dsyevr` (``LAPACK/largestEigenpair(symmetric:n:)``), exact to
/// rounding and deterministic.
///
/// **Sign (deliberate difference).** A singular vector is defined up to sign, and the reference
/// keeps whatever LAPACK returns, so its map can come out inverted (pytorch-grad-cam issue #364).
/// CAMKit chooses the sign with `Σ_k V[0]_k ≥ 0`, which is the same as requiring the projection to
/// correlate positively with the unprojected weighted sum `Σ_k X_k = Σ_k w_k A_k`:
/// `(X_c v)ᵀ(X_c 𝟙) = vᵀX_cᵀX_c 𝟙 = σ₁² (vᵀ𝟙)` because `v` is an eigenvector of `X_cᵀX_c`.
/// Results therefore equal the reference's exactly or up to sign. When `Σ_k V[0]_k` is negligible
/// the channel sum does not pick a direction (a LayerNorm output sums to ~0 over channels at every
/// token, so the unprojected sum is flat) and CAMKit makes the projection's largest-magnitude value
/// positive instead (see ``deterministicSign(v:projection:)``); the reference's sign there is noise.
enum EigenDecomposition {
    /// The first-principal-component projection of each image of `x` (B, K, H, W) → (B, H, W),
    /// with CAMKit's deterministic sign (see the type's documentation).
    static func firstComponentProjection(_ x: Tensor) -> Tensor {
        precondition(x.rank == 4, "projection expects (B, K, H, W), got \(x.shape)")
        let (b, k, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let hw = h * w
        var out = Tensor(zeros: [b, h, w])
        x.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for i in 0..<b {
                    // Centred (HW, K) matrix in Double, stored channel-major: xc[c * hw + p].
                    var xc = [Double](repeating: 0, count: k * hw)
                    for c in 0..<k {
                        let base = (i * k + c) * hw
                        var mean = 0.0
                        for p in 0..<hw {
                            let v = src[base + p]
                            let d = v.isNaN ? 0 : Double(v)
                            xc[c * hw + p] = d
                            mean += d
                        }
                        mean /= Double(hw)
                        for p in 0..<hw { xc[c * hw + p] -= mean }
                    }
                    let v = firstRightSingularVector(xc, rows: hw, columns: k)
                    var proj = [Double](repeating: 0, count: hw)
                    for c in 0..<k where v[c] != 0 {
                        for p in 0..<hw { proj[p] += xc[c * hw + p] * v[c] }
                    }
                    let sign = deterministicSign(v: v, projection: proj) * (invertSigns ? -1 : 1)
                    for p in 0..<hw { dst[i * hw + p] = Float(sign * proj[p]) }
                }
            }
        }
        return out
    }

    /// Tests only: invert every projection's sign, to check a result against the reference
    /// "up to sign" where the reference's own sign is numerical noise.
    @TaskLocal static var invertSigns = false

    /// The relative size of `Σ_k v_k` below which the channel-sum rule is undecidable.
    static let signTolerance = 1e-4

    /// +1 or −1: the sign that makes `Σ_k v_k ≥ 0`; when that sum is negligible
    /// (`|Σ v| ≤ 1e-4 · Σ |v|`, e.g. a LayerNorm output whose channels sum to 0 at every position,
    /// so the channel sum carries no direction), the sign that makes the projection's
    /// largest-magnitude value positive (Seg-Eigen-CAM's rule, Chung & Ying 2025, eq. 13).
    static func deterministicSign(v: [Double], projection: [Double]) -> Double {
        var sum = 0.0, l1 = 0.0
        for x in v { sum += x; l1 += abs(x) }
        if abs(sum) > signTolerance * l1 { return sum < 0 ? -1 : 1 }
        var extreme = 0.0
        for p in projection where abs(p) > abs(extreme) { extreme = p }
        return extreme < 0 ? -1 : 1
    }

    /// The unit right-singular vector of the largest singular value of the (rows × columns) matrix
    /// stored column-major in `xc` (`xc[c * rows + r]`); zeros when the matrix is zero.
    static func firstRightSingularVector(_ xc: [Double], rows: Int, columns: Int) -> [Double] {
        let zeros = [Double](repeating: 0, count: columns)
        guard rows > 0, columns > 0 else { return zeros }
        // xc is the row-major (columns × rows) matrix A = Xᵀ.
        if columns <= rows {
            // XᵀX = A·Aᵀ (columns × columns): its top eigenvector is V[0].
            let g = xc.withUnsafeBufferPointer { LAPACK.gram($0.baseAddress!, rows: columns, columns: rows, ofColumns: false) }
            guard let (value, vector) = LAPACK.largestEigenpair(symmetric: g, n: columns), value > 0 else { return zeros }
            return vector
        }
        // XXᵀ = Aᵀ·A (rows × rows) with top eigenvector u; V[0] = Xᵀu / ‖Xᵀu‖.
        let g = xc.withUnsafeBufferPointer { LAPACK.gram($0.baseAddress!, rows: columns, columns: rows, ofColumns: true) }
        guard let (value, u) = LAPACK.largestEigenpair(symmetric: g, n: rows), value > 0 else { return zeros }
        var v = zeros
        var norm = 0.0
        xc.withUnsafeBufferPointer { x in
            for c in 0..<columns {
                var s = 0.0
                for r in 0..<rows { s += x[c * rows + r] * u[r] }
                v[c] = s
                norm += s * s
            }
        }
        norm = norm.squareRoot()
        guard norm > 0 else { return v }
        return v.map { $0 / norm }
    }
}
