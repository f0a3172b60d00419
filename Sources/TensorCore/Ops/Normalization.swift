// Normalisation layers at inference: batch norm (folded into a per-channel scale and shift), layer
// norm, group norm and instance norm, each with its pullback below it.
//
// Layout: `NC…` (channels on axis 1) for batch, group and instance norm; layer norm normalises the
// trailing axes from `axis` on.
//
// Precision: means and variances are accumulated in Double across blocks of 256 Float terms (SIMD
// Float within a block); the mean is summed from `x − x₀` (x₀ a value of the slice) and the
// variance is the two-pass `Σ(x − μ)² / n`, never `E[x²] − μ²`, which cancels catastrophically when
// |μ| ≫ σ; and outputs use `(x − μ_Float) − δ`, δ being the mean's Float rounding error. With
// values 10⁴ ± 1 this matches a Double reference to ~1e-6 instead of ~1e-3.

import Foundation

// MARK: - Shared row kernels

/// The most contiguous Float terms summed in Float before carrying into a Double.
private let normalizationBlock = 256

/// `Σ (p[i] − shift)` over `n` contiguous elements: Float SIMD lanes per block of 256, block totals
/// in Double. Shifting by a value of the row first keeps the terms O(σ) even when |mean| ≫ σ.
@inline(__always)
private func normalizationShiftedSum(_ p: UnsafePointer<Float>, _ n: Int, shift: Float) -> Double {
    var total = 0.0
    var i = 0
    let raw = UnsafeRawPointer(p)
    let sv = SIMD16<Float>(repeating: shift)
    while i < n {
        let end = Swift.min(n, i + normalizationBlock)
        var acc = SIMD16<Float>(repeating: 0)
        while i + 16 <= end {
            acc += raw.loadUnaligned(fromByteOffset: i &* 4, as: SIMD16<Float>.self) - sv
            i &+= 16
        }
        var tail: Float = 0
        while i < end { tail += p[i] - shift; i &+= 1 }
        total += Double(acc.sum()) + Double(tail)
    }
    return total
}

/// `Σ (p[i] − mean)²` over `n` contiguous elements, blocked like ``normalizationShiftedSum(_:_:shift:)``.
@inline(__always)
private func normalizationRowSquaredDeviation(_ p: UnsafePointer<Float>, _ n: Int, mean: Float) -> Double {
    var total = 0.0
    var i = 0
    let raw = UnsafeRawPointer(p)
    let m = SIMD16<Float>(repeating: mean)
    while i < n {
        let end = Swift.min(n, i + normalizationBlock)
        var acc = SIMD16<Float>(repeating: 0)
        while i + 16 <= end {
            let d = raw.loadUnaligned(fromByteOffset: i &* 4, as: SIMD16<Float>.self) - m
            acc += d * d
            i &+= 16
        }
        var tail: Float = 0
        while i < end { let d = p[i] - mean; tail += d * d; i &+= 1 }
        total += Double(acc.sum()) + Double(tail)
    }
    return total
}

/// The statistics of one normalised slice.
private struct RowStatistics {
    /// The mean rounded to Float.
    var mean: Float
    /// What the rounding lost (`mean_Double − mean`): kernels compute `(x − mean) − correction`,
    /// where `x − mean` is exact for x near the mean, so a large offset costs no precision.
    var correction: Float
    /// `1/√(variance + ε)`.
    var inverseStd: Float
}

/// The mean and `1/√(variance + epsilon)` of `n` contiguous elements (biased variance, as ONNX and
/// PyTorch use for normalisation), accumulated in Double from a shifted two-pass computation.
@inline(__always)
private func rowStatistics(_ p: UnsafePointer<Float>, _ n: Int, epsilon: Float) -> RowStatistics {
    guard n > 0 else { return RowStatistics(mean: 0, correction: 0, inverseStd: 1 / epsilon.squareRoot()) }
    let shift = p[0]
    let mean = Double(shift) + normalizationShiftedSum(p, n, shift: shift) / Double(n)
    let rounded = Float(mean)
    let correction = mean - Double(rounded)
    // Σ(x − m̃)² = Σ(x − μ)² + n·δ² with m̃ = μ − δ.
    let squares = normalizationRowSquaredDeviation(p, n, mean: rounded) / Double(n)
    let variance = Swift.max(0, squares - correction * correction)
    return RowStatistics(mean: rounded, correction: Float(correction),
                         inverseStd: Float(1 / (variance + Double(epsilon)).squareRoot()))
}

/// `(N, C, S)`: batch, channels, and the product of the remaining (spatial) extents.
private func channelLayout(_ shape: [Int]) -> (n: Int, c: Int, s: Int) {
    precondition(shape.count >= 2, "normalisation input needs rank ≥ 2 (N, C, …), got \(shape)")
    return (shape[0], shape[1], shape[2...].reduce(1, *))
}

// MARK: - Batch normalisation (inference)

/// The per-channel factor `scale / √(variance + ε)` and shift `bias − mean · factor` that batch
/// normalisation at inference reduces to (computed in Double).
private func foldedBatchNorm(scale: Tensor, bias: Tensor, mean: Tensor, variance: Tensor, epsilon: Float)
    -> (factor: [Float], shift: [Float]) {
    let s = scale.scalars, b = bias.scalars, m = mean.scalars, v = variance.scalars
    precondition(s.count == b.count && s.count == m.count && s.count == v.count, "batch norm parameter sizes differ")
    var factor = [Float](repeating: 0, count: s.count), shift = factor
    for c in 0..<s.count {
        let f = Double(s[c]) / (Double(v[c]) + Double(epsilon)).squareRoot()
        factor[c] = Float(f)
        shift[c] = Float(Double(b[c]) - Double(m[c]) * f)
    }
    return (factor, shift)
}

/// Batch normalisation in inference mode (ONNX `BatchNormalization` with `training_mode = 0`):
/// `y = scale · (x − mean) / √(variance + ε) + bias` per channel, folded into one multiply-add.
///
/// - Parameters:
///   - x: `(N, C, …)`.
///   - scale, bias, mean, variance: `(C)` each (the running statistics).
/// - Precondition: Float32; parameters of `C` elements.
public func batchNormInference(_ x: Tensor, scale: Tensor, bias: Tensor, mean: Tensor, variance: Tensor,
                               epsilon: Float = 1e-5) -> Tensor {
    let (n, c, s) = channelLayout(x.shape)
    precondition(scale.count == c, "batch norm: \(scale.count) scales for \(c) channels")
    let (factor, shift) = foldedBatchNorm(scale: scale, bias: bias, mean: mean, variance: variance, epsilon: epsilon)
    var out = Tensor(uninitializedShape: x.shape)
    x.withUnsafeBufferPointer { px in
        out.withUnsafeMutableBufferPointer { po in
            factor.withUnsafeBufferPointer { pf in
                shift.withUnsafeBufferPointer { ps in
                    guard let X = px.baseAddress, let Y = po.baseAddress, let F = pf.baseAddress,
                          let S = ps.baseAddress else { return }
                    parallelFor(n * c, minimumChunk: Swift.max(1, 16384 / Swift.max(1, s))) { range in
                        for t in range {
                            let f = F[t % c], b = S[t % c]
                            let xs = X + t * s, ys = Y + t * s
                            for j in 0..<s { ys[j] = xs[j] * f + b }
                        }
                    }
                }
            }
        }
    }
    return out
}

/// The pullback of ``batchNormInference(_:scale:bias:mean:variance:epsilon:)`` with the running
/// statistics held constant: `∂/∂x = g · scale / √(variance + ε)`,
/// `∂/∂scale = Σ_{n,…} g · (x − mean) / √(variance + ε)`, `∂/∂bias = Σ_{n,…} g`.
///
/// - Parameter needParameters: whether to compute the scale and bias gradients (else `nil`).
public func batchNormInferencePullback(_ x: Tensor, scale: Tensor, mean: Tensor, variance: Tensor,
                                       epsilon: Float = 1e-5, gradient: Tensor, needInput: Bool = true,
                                       needParameters: Bool = true) -> (input: Tensor?, scale: Tensor?, bias: Tensor?) {
    let (n, c, s) = channelLayout(x.shape)
    precondition(gradient.shape == x.shape, "batch norm gradient shape \(gradient.shape) ≠ \(x.shape)")
    let m = mean.scalars, v = variance.scalars, sc = scale.scalars
    let inverseStd = v.map { Float(1 / (Double($0) + Double(epsilon)).squareRoot()) }
    var dx: Tensor? = nil, dScale: Tensor? = nil, dBias: Tensor? = nil
    if needInput {
        let factor = (0..<c).map { sc[$0] * inverseStd[$0] }
        var out = Tensor(uninitializedShape: x.shape)
        gradient.withUnsafeBufferPointer { pg in
            out.withUnsafeMutableBufferPointer { po in
                factor.withUnsafeBufferPointer { pf in
                    guard let G = pg.baseAddress, let D = po.baseAddress, let F = pf.baseAddress else { return }
                    parallelFor(n * c, minimumChunk: Swift.max(1, 16384 / Swift.max(1, s))) { range in
                        for t in range {
                            let f = F[t % c], gs = G + t * s, ds = D + t * s
                            for j in 0..<s { ds[j] = gs[j] * f }
                        }
                    }
                }
            }
        }
        dx = out
    }
    if needParameters {
        // Per (n, c) sums in Double, then summed over n.
        var sumG = [Double](repeating: 0, count: n * c), sumGX = sumG
        x.withUnsafeBufferPointer { px in
            gradient.withUnsafeBufferPointer { pg in
                sumG.withUnsafeMutableBufferPointer { p1 in
                    sumGX.withUnsafeMutableBufferPointer { p2 in
                        m.withUnsafeBufferPointer { pm in
                            guard let X = px.baseAddress, let G = pg.baseAddress, let S1 = p1.baseAddress,
                                  let S2 = p2.baseAddress, let M = pm.baseAddress else { return }
                            parallelFor(n * c, minimumChunk: Swift.max(1, 16384 / Swift.max(1, s))) { range in
                                for t in range {
                                    let mu = M[t % c], xs = X + t * s, gs = G + t * s
                                    var ta = 0.0, tb = 0.0, j0 = 0
                                    while j0 < s {
                                        let end = Swift.min(s, j0 + 4096)
                                        var a: Float = 0, b: Float = 0
                                        for j in j0..<end {
                                            a += gs[j]
                                            b += gs[j] * (xs[j] - mu)
                                        }
                                        ta += Double(a)
                                        tb += Double(b)
                                        j0 = end
                                    }
                                    S1[t] = ta
                                    S2[t] = tb
                                }
                            }
                        }
                    }
                }
            }
        }
        var gs = [Float](repeating: 0, count: c), gb = gs
        for ch in 0..<c {
            var a = 0.0, b = 0.0
            for i in 0..<n { a += sumG[i * c + ch]; b += sumGX[i * c + ch] }
            gb[ch] = Float(a)
            gs[ch] = Float(b * Double(inverseStd[ch]))
        }
        dScale = Tensor(shape: scale.shape, scalars: gs)
        dBias = Tensor(shape: scale.shape, scalars: gb)
    }
    return (dx, dScale, dBias)
}

// MARK: - Layer normalisation

/// `parameter` broadcast (NumPy rules, unidirectionally) to `shape`, as a flat Float array.
private func broadcastParameter(_ parameter: Tensor, to shape: [Int]) -> [Float] {
    let total = shape.reduce(1, *)
    let values = parameter.scalars
    if values.count == total { return values }
    let rank = shape.count
    precondition(parameter.rank <= rank, "parameter \(parameter.shape) does not broadcast to \(shape)")
    let padded = [Int](repeating: 1, count: rank - parameter.rank) + parameter.shape
    var strides = [Int](repeating: 0, count: rank)
    var s = 1
    for d in stride(from: rank - 1, through: 0, by: -1) {
        precondition(padded[d] == 1 || padded[d] == shape[d], "parameter \(parameter.shape) does not broadcast to \(shape)")
        strides[d] = padded[d] == 1 ? 0 : s
        s *= padded[d]
    }
    var result = [Float](repeating: 0, count: total)
    for i in 0..<total {
        var rest = i, offset = 0
        for d in stride(from: rank - 1, through: 0, by: -1) {
            offset += (rest % shape[d]) * strides[d]
            rest /= shape[d]
        }
        result[i] = values[offset]
    }
    return result
}

/// A gradient over the full normalised shape summed down to `parameterShape` (the inverse of
/// ``broadcastParameter(_:to:)``).
private func reduceParameterGradient(_ full: [Float], shape: [Int], to parameterShape: [Int]) -> Tensor {
    if parameterShape.reduce(1, *) == full.count { return Tensor(shape: parameterShape, scalars: full) }
    let rank = shape.count
    let padded = [Int](repeating: 1, count: rank - parameterShape.count) + parameterShape
    let axes = (0..<rank).filter { padded[$0] == 1 && shape[$0] != 1 }
    return Tensor(shape: shape, scalars: full).sum(alongAxes: axes, keepingDimensions: true).reshaped(to: parameterShape)
}

/// Splits `shape` at `axis` into the rows count and the normalised extent.
private func layerNormLayout(_ shape: [Int], _ axis: Int) -> (a: Int, rows: Int, d: Int) {
    let rank = shape.count
    precondition(axis >= -rank && axis < rank, "layer norm axis \(axis) out of range for rank \(rank)")
    let a = axis < 0 ? axis + rank : axis
    return (a, shape[..<a].reduce(1, *), shape[a...].reduce(1, *))
}

/// Layer normalisation (ONNX `LayerNormalization`, opset 17): each slice `x[i₀, …, i_{axis−1}, :, …, :]`
/// is normalised to zero mean and unit variance, then scaled and shifted:
/// `y = (x − μ) / √(σ² + ε) · scale + bias`.
///
/// - Parameters:
///   - x: any shape; the axes from `axis` on (negative counts from the end) are normalised together.
///   - scale: broadcastable to `x.shape[axis...]` (usually exactly that shape).
///   - bias: optional, broadcastable likewise.
/// - Returns: the output, and the per-slice mean and inverse standard deviation `1/√(σ² + ε)`,
///   each of shape `x.shape[..<axis] + [1, …, 1]` (ONNX's optional `Mean` and `InvStdDev`).
///   Statistics are accumulated in Double.
public func layerNorm(_ x: Tensor, scale: Tensor, bias: Tensor? = nil, axis: Int = -1, epsilon: Float = 1e-5)
    -> (output: Tensor, mean: Tensor, inverseStandardDeviation: Tensor) {
    precondition(x.dtype == .float32, "layer norm of a \(x.dtype) tensor")
    let (a, rows, d) = layerNormLayout(x.shape, axis)
    let normalizedShape = Array(x.shape[a...])
    let gamma = broadcastParameter(scale, to: normalizedShape)
    let beta = bias.map { broadcastParameter($0, to: normalizedShape) } ?? [Float](repeating: 0, count: d)
    let statsShape = Array(x.shape[..<a]) + [Int](repeating: 1, count: x.rank - a)
    var out = Tensor(uninitializedShape: x.shape)
    var means = Tensor(uninitializedShape: statsShape), inverse = Tensor(uninitializedShape: statsShape)
    x.withUnsafeBufferPointer { px in
        out.withUnsafeMutableBufferPointer { po in
            means.withUnsafeMutableBufferPointer { pm in
                inverse.withUnsafeMutableBufferPointer { pr in
                    gamma.withUnsafeBufferPointer { pgm in
                        beta.withUnsafeBufferPointer { pbt in
                            guard let X = px.baseAddress, let Y = po.baseAddress, let M = pm.baseAddress,
                                  let R = pr.baseAddress, let GM = pgm.baseAddress, let BT = pbt.baseAddress,
                                  d > 0 else { return }
                            parallelFor(rows, minimumChunk: Swift.max(1, 8192 / d)) { range in
                                for row in range {
                                    let xs = X + row * d, ys = Y + row * d
                                    let st = rowStatistics(xs, d, epsilon: epsilon)
                                    let mu = st.mean, delta = st.correction, r = st.inverseStd
                                    M[row] = mu
                                    R[row] = r
                                    for j in 0..<d { ys[j] = (xs[j] - mu - delta) * r * GM[j] + BT[j] }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    return (out, means, inverse)
}

/// The pullback of ``layerNorm(_:scale:bias:axis:epsilon:)`` with respect to its `output` (the
/// statistics outputs are treated as not feeding anything). With `x̂ = (x − μ)·r` and
/// `ĝ = g · scale` per slice of `D` elements:
/// `∂/∂x = r · (ĝ − mean(ĝ) − x̂ · mean(ĝ · x̂))`, `∂/∂scale = Σ_slices g · x̂`, `∂/∂bias = Σ_slices g`
/// (summed further down to the parameters' shapes when they were broadcast).
///
/// - Parameters:
///   - biasShape: the bias's shape, or `nil` when the layer had none (then the bias gradient is `nil`).
///   - needInput, needParameters: which gradients to compute.
public func layerNormPullback(_ x: Tensor, scale: Tensor, biasShape: [Int]?, axis: Int = -1, epsilon: Float = 1e-5,
                              gradient: Tensor, needInput: Bool = true, needParameters: Bool = true)
    -> (input: Tensor?, scale: Tensor?, bias: Tensor?) {
    precondition(gradient.shape == x.shape, "layer norm gradient shape \(gradient.shape) ≠ \(x.shape)")
    let (a, rows, d) = layerNormLayout(x.shape, axis)
    let normalizedShape = Array(x.shape[a...])
    let gamma = broadcastParameter(scale, to: normalizedShape)
    var dx = needInput ? Tensor(uninitializedShape: x.shape) : Tensor(zeros: [0])
    let maxChunks = Swift.max(1, Swift.min(ComputeSettings.threadCount, rows))
    // Per-chunk Double accumulators for the parameter gradients: [chunk][dScale (d) | dBias (d)].
    var partial = [Double](repeating: 0, count: needParameters ? maxChunks * 2 * d : 0)
    var chunks = 1
    x.withUnsafeBufferPointer { px in
        gradient.withUnsafeBufferPointer { pg in
            gamma.withUnsafeBufferPointer { pgm in
                dx.withUnsafeMutableBufferPointer { pd in
                    partial.withUnsafeMutableBufferPointer { pp in
                        guard let X = px.baseAddress, let G = pg.baseAddress, let GM = pgm.baseAddress, d > 0 else { return }
                        let D = needInput ? pd.baseAddress : nil, P = needParameters ? pp.baseAddress : nil
                        let chunkCount = Swift.max(1, Swift.min(maxChunks, rows * d / 16384))
                        chunks = chunkCount
                        parallelFor(chunkCount) { chunkRange in
                            for chunk in chunkRange {
                                let rowRange = (rows * chunk / chunkCount)..<(rows * (chunk + 1) / chunkCount)
                                withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * d) { scratch in
                                    guard let xhat = scratch.baseAddress else { return }
                                    let ghat = xhat + d
                                    for row in rowRange {
                                        let xs = X + row * d, gs = G + row * d
                                        let st = rowStatistics(xs, d, epsilon: epsilon)
                                        let mu = st.mean, delta = st.correction, r = st.inverseStd
                                        var sumG = 0.0, sumGX = 0.0
                                        for j in 0..<d {
                                            let xh = (xs[j] - mu - delta) * r, gh = gs[j] * GM[j]
                                            xhat[j] = xh
                                            ghat[j] = gh
                                            sumG += Double(gh)
                                            sumGX += Double(gh * xh)
                                        }
                                        if let D {
                                            let meanG = Float(sumG / Double(d)), meanGX = Float(sumGX / Double(d))
                                            let ds = D + row * d
                                            for j in 0..<d { ds[j] = r * (ghat[j] - meanG - xhat[j] * meanGX) }
                                        }
                                        if let P {
                                            let dScale = P + chunk * 2 * d, dBias = dScale + d
                                            for j in 0..<d {
                                                dScale[j] += Double(gs[j] * xhat[j])
                                                dBias[j] += Double(gs[j])
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    var dScale: Tensor? = nil, dBias: Tensor? = nil
    if needParameters && d > 0 {
        var s = [Float](repeating: 0, count: d), b = s
        for j in 0..<d {
            var ts = 0.0, tb = 0.0
            for chunk in 0..<chunks { ts += partial[chunk * 2 * d + j]; tb += partial[chunk * 2 * d + d + j] }
            s[j] = Float(ts)
            b[j] = Float(tb)
        }
        dScale = reduceParameterGradient(s, shape: normalizedShape, to: scale.shape)
        if let biasShape { dBias = reduceParameterGradient(b, shape: normalizedShape, to: biasShape) }
    }
    return (needInput ? dx : nil, dScale, dBias)
}

// MARK: - Group and instance normalisation

/// Group normalisation (ONNX `GroupNormalization`, opset-21 semantics): the `C` channels are split
/// into `groupCount` consecutive groups; each `(n, group)` slice (its `C/groupCount` channels × all
/// spatial positions) is normalised to zero mean and unit variance, then each channel is scaled and
/// shifted: `y = scale[c] · (x − μ) / √(σ² + ε) + bias[c]`.
///
/// - Parameters:
///   - x: `(N, C, …)`.
///   - groupCount: divides `C`.
///   - scale, bias: `(C)`, per channel. (Opset 18's per-group parameters expand to this by repeating
///     each group's value over its channels.)
/// - Precondition: Float32; `C` divisible by `groupCount`; parameters of `C` elements.
public func groupNorm(_ x: Tensor, groupCount: Int, scale: Tensor, bias: Tensor, epsilon: Float = 1e-5) -> Tensor {
    let (n, c, s) = channelLayout(x.shape)
    precondition(groupCount > 0 && c % groupCount == 0, "group norm: \(c) channels not divisible into \(groupCount) groups")
    precondition(scale.count == c && bias.count == c, "group norm: parameters must have \(c) elements")
    let perGroup = c / groupCount, d = perGroup * s
    let gamma = scale.scalars, beta = bias.scalars
    var out = Tensor(uninitializedShape: x.shape)
    x.withUnsafeBufferPointer { px in
        out.withUnsafeMutableBufferPointer { po in
            gamma.withUnsafeBufferPointer { pgm in
                beta.withUnsafeBufferPointer { pbt in
                    guard let X = px.baseAddress, let Y = po.baseAddress, let GM = pgm.baseAddress,
                          let BT = pbt.baseAddress, d > 0 else { return }
                    parallelFor(n * groupCount, minimumChunk: Swift.max(1, 8192 / d)) { range in
                        for row in range {
                            let xs = X + row * d, ys = Y + row * d
                            let st = rowStatistics(xs, d, epsilon: epsilon)
                            let mu = st.mean, delta = st.correction
                            let firstChannel = (row % groupCount) * perGroup
                            for k in 0..<perGroup {
                                let f = st.inverseStd * GM[firstChannel + k], b = BT[firstChannel + k]
                                let xc = xs + k * s, yc = ys + k * s
                                for j in 0..<s { yc[j] = (xc[j] - mu - delta) * f + b }
                            }
                        }
                    }
                }
            }
        }
    }
    return out
}

/// The pullback of ``groupNorm(_:groupCount:scale:bias:epsilon:)``. Per `(n, group)` slice of `D`
/// elements, with `x̂ = (x − μ)·r` and `ĝ = g · scale[c]`:
/// `∂/∂x = r · (ĝ − mean(ĝ) − x̂ · mean(ĝ · x̂))`; `∂/∂scale[c] = Σ_{n,…} g · x̂`, `∂/∂bias[c] = Σ_{n,…} g`.
public func groupNormPullback(_ x: Tensor, groupCount: Int, scale: Tensor, epsilon: Float = 1e-5, gradient: Tensor,
                              needInput: Bool = true, needParameters: Bool = true)
    -> (input: Tensor?, scale: Tensor?, bias: Tensor?) {
    let (n, c, s) = channelLayout(x.shape)
    precondition(gradient.shape == x.shape, "group norm gradient shape \(gradient.shape) ≠ \(x.shape)")
    precondition(groupCount > 0 && c % groupCount == 0 && scale.count == c, "group norm: bad groups or scale")
    let perGroup = c / groupCount, d = perGroup * s
    let gamma = scale.scalars
    var dx = needInput ? Tensor(uninitializedShape: x.shape) : Tensor(zeros: [0])
    // Per (n, c) Double sums of g·x̂ and g, summed over n afterwards (no write races).
    var sums = [Double](repeating: 0, count: needParameters ? 2 * n * c : 0)
    x.withUnsafeBufferPointer { px in
        gradient.withUnsafeBufferPointer { pg in
            gamma.withUnsafeBufferPointer { pgm in
                dx.withUnsafeMutableBufferPointer { pd in
                    sums.withUnsafeMutableBufferPointer { ps in
                        guard let X = px.baseAddress, let G = pg.baseAddress, let GM = pgm.baseAddress, d > 0 else { return }
                        let D = needInput ? pd.baseAddress : nil, P = needParameters ? ps.baseAddress : nil
                        parallelFor(n * groupCount, minimumChunk: Swift.max(1, 8192 / d)) { range in
                            for row in range {
                                let xs = X + row * d, gs = G + row * d
                                let st = rowStatistics(xs, d, epsilon: epsilon)
                                let mu = st.mean, delta = st.correction, r = st.inverseStd
                                let firstChannel = (row % groupCount) * perGroup
                                let sample = row / groupCount
                                var sumG = 0.0, sumGX = 0.0
                                for k in 0..<perGroup {
                                    let gamma = GM[firstChannel + k]
                                    // Plain sums of g and g·x̂ over the plane (blocks of 4096 in
                                    // Float, carried in Double); the γ-weighted ones follow.
                                    let xc = xs + k * s, gc = gs + k * s
                                    var pa = 0.0, pb = 0.0, j0 = 0
                                    while j0 < s {
                                        let end = Swift.min(s, j0 + 4096)
                                        var a: Float = 0, b: Float = 0
                                        for j in j0..<end {
                                            a += gc[j]
                                            b += gc[j] * ((xc[j] - mu - delta) * r)
                                        }
                                        pa += Double(a)
                                        pb += Double(b)
                                        j0 = end
                                    }
                                    sumG += Double(gamma) * pa
                                    sumGX += Double(gamma) * pb
                                    if let P {
                                        let ch = sample * c + firstChannel + k
                                        P[2 * ch] = pb
                                        P[2 * ch + 1] = pa
                                    }
                                }
                                if let D {
                                    let meanG = Float(sumG / Double(d)), meanGX = Float(sumGX / Double(d))
                                    for k in 0..<perGroup {
                                        let gamma = GM[firstChannel + k]
                                        let xc = xs + k * s, gc = gs + k * s, dc = D + row * d + k * s
                                        for j in 0..<s {
                                            let xh = (xc[j] - mu - delta) * r
                                            dc[j] = r * (gc[j] * gamma - meanG - xh * meanGX)
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    var dScale: Tensor? = nil, dBias: Tensor? = nil
    if needParameters {
        var ds = [Float](repeating: 0, count: c), db = ds
        for ch in 0..<c {
            var a = 0.0, b = 0.0
            for i in 0..<n { a += sums[2 * (i * c + ch)]; b += sums[2 * (i * c + ch) + 1] }
            ds[ch] = Float(a)
            db[ch] = Float(b)
        }
        dScale = Tensor(shape: scale.shape, scalars: ds)
        dBias = Tensor(shape: scale.shape, scalars: db)
    }
    return (needInput ? dx : nil, dScale, dBias)
}

/// Instance normalisation (ONNX `InstanceNormalization`): each `(n, c)` plane is normalised over its
/// spatial positions, then `y = scale[c] · x̂ + bias[c]`. Equal to ``groupNorm(_:groupCount:scale:bias:epsilon:)``
/// with one group per channel.
///
/// - Parameters:
///   - x: `(N, C, …)`.
///   - scale, bias: `(C)`.
public func instanceNorm(_ x: Tensor, scale: Tensor, bias: Tensor, epsilon: Float = 1e-5) -> Tensor {
    groupNorm(x, groupCount: channelLayout(x.shape).c, scale: scale, bias: bias, epsilon: epsilon)
}

/// The pullback of ``instanceNorm(_:scale:bias:epsilon:)`` (see ``groupNormPullback(_:groupCount:scale:epsilon:gradient:needInput:needParameters:)``).
public func instanceNormPullback(_ x: Tensor, scale: Tensor, epsilon: Float = 1e-5, gradient: Tensor,
                                 needInput: Bool = true, needParameters: Bool = true)
    -> (input: Tensor?, scale: Tensor?, bias: Tensor?) {
    groupNormPullback(x, groupCount: channelLayout(x.shape).c, scale: scale, epsilon: epsilon, gradient: gradient,
                      needInput: needInput, needParameters: needParameters)
}
