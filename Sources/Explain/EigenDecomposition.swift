import TensorCore

/// Symmetric eigen-decomposition and the first-principal-component projection behind EigenCAM,
/// EigenGradCAM and `eigen_smooth`.
///
/// Reference: pytorch-grad-cam `utils/svd_on_activations.py`, `get_2d_projection`: per image,
/// NaN → 0, reshape (K, H·W) → (H·W, K), subtract each column's mean, full SVD, projection
/// `X · V[0]` (the first right-singular vector), reshape to (H, W).
///
/// CAMKit computes the same vector as the top eigenvector of the smaller Gram matrix (`XᵀX`, K×K,
/// or `XXᵀ`, HW×HW, from which `V[0] = Xᵀu / ‖Xᵀu‖`) with the cyclic Jacobi method in Double: exact
/// to rounding, deterministic, no LAPACK.
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
    /// Eigenvalues (descending) and unit eigenvectors (`vectors[i]` belongs to `values[i]`) of the
    /// symmetric `n×n` matrix `a` (row-major), by cyclic Jacobi rotations.
    static func symmetricEigen(_ a: [Double], n: Int) -> (values: [Double], vectors: [[Double]]) {
        precondition(a.count == n * n)
        var m = a
        var v = [Double](repeating: 0, count: n * n)
        for i in 0..<n { v[i * n + i] = 1 }
        let maxSweeps = 100
        var total = 0.0
        for x in m { total += x * x }
        let tiny = Double.leastNormalMagnitude
        for _ in 0..<maxSweeps {
            var off = 0.0
            for p in 0..<n { for q in (p + 1)..<n where q < n { off += m[p * n + q] * m[p * n + q] } }
            if off <= max(total * 1e-26, tiny) { break }
            for p in 0..<(n - 1) {
                for q in (p + 1)..<n {
                    let apq = m[p * n + q]
                    if abs(apq) < tiny { continue }
                    let app = m[p * n + p], aqq = m[q * n + q]
                    // Rotation angle (Golub & Van Loan, Algorithm 8.4.1 "sym.schur2").
                    let theta = (aqq - app) / (2 * apq)
                    let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot(), s = t * c
                    m.withUnsafeMutableBufferPointer { mp in
                        for k in 0..<n {
                            let akp = mp[k * n + p], akq = mp[k * n + q]
                            mp[k * n + p] = c * akp - s * akq
                            mp[k * n + q] = s * akp + c * akq
                        }
                        for k in 0..<n {
                            let apk = mp[p * n + k], aqk = mp[q * n + k]
                            mp[p * n + k] = c * apk - s * aqk
                            mp[q * n + k] = s * apk + c * aqk
                        }
                    }
                    v.withUnsafeMutableBufferPointer { vp in
                        for k in 0..<n {
                            let vkp = vp[k * n + p], vkq = vp[k * n + q]
                            vp[k * n + p] = c * vkp - s * vkq
                            vp[k * n + q] = s * vkp + c * vkq
                        }
                    }
                }
            }
        }
        let order = (0..<n).sorted { m[$0 * n + $0] > m[$1 * n + $1] }
        return (order.map { m[$0 * n + $0] }, order.map { j in (0..<n).map { v[$0 * n + j] } })
    }

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
        if columns <= rows {
            // XᵀX (columns × columns).
            var g = [Double](repeating: 0, count: columns * columns)
            xc.withUnsafeBufferPointer { x in
                for a in 0..<columns {
                    for b in a..<columns {
                        var s = 0.0
                        for r in 0..<rows { s += x[a * rows + r] * x[b * rows + r] }
                        g[a * columns + b] = s
                        g[b * columns + a] = s
                    }
                }
            }
            let (values, vectors) = symmetricEigen(g, n: columns)
            guard let top = values.first, top > 0 else { return [Double](repeating: 0, count: columns) }
            return vectors[0]
        } else {
            // XXᵀ (rows × rows); V[0] = Xᵀu / ‖Xᵀu‖.
            var g = [Double](repeating: 0, count: rows * rows)
            xc.withUnsafeBufferPointer { x in
                for c in 0..<columns {
                    let col = c * rows
                    for a in 0..<rows {
                        let xa = x[col + a]
                        if xa == 0 { continue }
                        for b in a..<rows { g[a * rows + b] += xa * x[col + b] }
                    }
                }
            }
            for a in 0..<rows { for b in 0..<a { g[a * rows + b] = g[b * rows + a] } }
            let (values, vectors) = symmetricEigen(g, n: rows)
            guard let top = values.first, top > 0 else { return [Double](repeating: 0, count: columns) }
            let u = vectors[0]
            var v = [Double](repeating: 0, count: columns)
            var norm = 0.0
            for c in 0..<columns {
                var s = 0.0
                for r in 0..<rows { s += xc[c * rows + r] * u[r] }
                v[c] = s
                norm += s * s
            }
            norm = norm.squareRoot()
            guard norm > 0 else { return v }
            return v.map { $0 / norm }
        }
    }
}
