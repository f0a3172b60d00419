// Softmax and log-softmax along one axis, each with its pullback below it.
//
// Both subtract the slice's maximum before exponentiating (so no overflow for large logits), use a
// vectorised exp (Cephes-style: range reduction by ln 2 and a degree-6 polynomial, within a few
// ulp; results that would be subnormal, below e^-87.3, are flushed to 0), and carry the slice sum
// in Double across blocks of 4096 elements (terms are ≤ 1, so a Float block loses < 1e-6).

import Foundation

// MARK: - Vectorised exp

/// `e^x` for 16 lanes at once without libm calls. Inputs above 88.38 are clamped there; results
/// below e^-87.34 (subnormal) are flushed to 0.
@inline(__always)
private func simdExp(_ input: SIMD16<Float>) -> SIMD16<Float> {
    let x = input.replacing(with: 88.3762626647949, where: input .> 88.3762626647949)
        .replacing(with: -87.3365478515625, where: input .< -87.3365478515625)
    // n = round(x / ln 2) via the 1.5·2²³ trick: the sum's low mantissa bits hold n.
    let magic = SIMD16<Float>(repeating: 12582912.0)
    let t = x * 1.44269504088896341 + magic
    let n = t - magic
    var r = x - n * 0.693359375
    r = r - n * -2.12194440e-4
    var p = SIMD16<Float>(repeating: 1.9875691500e-4)
    p = p * r + 1.3981999507e-3
    p = p * r + 8.3334519073e-3
    p = p * r + 4.1665795894e-2
    p = p * r + 1.6666665459e-1
    p = p * r + 5.0000001201e-1
    p = p * (r * r) + r + 1
    let bits = unsafeBitCast(t, to: SIMD16<Int32>.self) &- 0x4B40_0000 &+ 127
    let scale = unsafeBitCast(bits &<< 23, to: SIMD16<Float>.self)
    // Below e^-87.3 the result would be subnormal: flush to 0 (so exp(-∞) is exactly 0).
    return (p * scale).replacing(with: 0, where: input .< -87.3365478515625)
}

/// Loads up to 16 floats (missing lanes are `fill`).
@inline(__always)
private func loadPartial(_ p: UnsafePointer<Float>, _ count: Int, fill: Float) -> SIMD16<Float> {
    var v = SIMD16<Float>(repeating: fill)
    for i in 0..<count { v[i] = p[i] }
    return v
}

/// Stores the first `count` lanes of `v`.
@inline(__always)
private func storePartial(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>, _ count: Int) {
    for i in 0..<count { p[i] = v[i] }
}

/// `dst[i] = exp(src[i] - shift)` for `n` contiguous elements; returns their sum (Float lanes per
/// block of 4096, Double across blocks).
@inline(__always)
private func expShiftedRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>?, _ n: Int, shift: Float) -> Double {
    var total = 0.0
    var i = 0
    let s = SIMD16<Float>(repeating: shift)
    while i < n {
        let end = Swift.min(n, i + 4096)
        var acc = SIMD16<Float>(repeating: 0)
        while i + 16 <= end {
            let e = simdExp(UnsafeRawPointer(src + i).loadUnaligned(as: SIMD16<Float>.self) - s)
            if let dst { UnsafeMutableRawPointer(dst + i).storeBytes(of: e, as: SIMD16<Float>.self) }
            acc += e
            i &+= 16
        }
        if i < end {
            let c = end - i
            let e = simdExp(loadPartial(src + i, c, fill: -.infinity) - s)
            if let dst { storePartial(e, dst + i, c) }
            for l in 0..<c { acc[l] += e[l] }
            i = end
        }
        total += Double(acc.sum())
    }
    return total
}

/// The largest of `n` contiguous elements.
@inline(__always)
private func rowMaximum(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = SIMD16<Float>(repeating: -.infinity)
    var i = 0
    while i + 16 <= n {
        let v = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD16<Float>.self)
        acc = acc.replacing(with: v, where: v .> acc)
        i &+= 16
    }
    var m = acc.max()
    while i < n { if p[i] > m { m = p[i] }; i &+= 1 }
    return m
}

/// Splits `shape` at `axis` into `(outer, axis extent, inner)`.
private func softmaxLayout(_ shape: [Int], _ axis: Int) -> (outer: Int, r: Int, inner: Int) {
    let rank = shape.count
    precondition(axis >= -rank && axis < rank, "softmax axis \(axis) out of range for rank \(rank)")
    let a = axis < 0 ? axis + rank : axis
    return (shape[..<a].reduce(1, *), shape[a], shape[(a + 1)...].reduce(1, *))
}

/// Shared forward kernel: `log == false` writes softmax, `true` writes log-softmax.
private func softmaxKernel(_ x: Tensor, axis: Int, log: Bool) -> Tensor {
    precondition(x.dtype == .float32, "softmax of a \(x.dtype) tensor")
    let (outer, r, inner) = softmaxLayout(x.shape, axis)
    var out = Tensor(uninitializedShape: x.shape)
    x.withUnsafeBufferPointer { px in
        out.withUnsafeMutableBufferPointer { po in
            guard let X = px.baseAddress, let Y = po.baseAddress, r > 0 else { return }
            if inner == 1 {
                parallelFor(outer, minimumChunk: Swift.max(1, 8192 / r)) { range in
                    for o in range {
                        let xs = X + o * r, ys = Y + o * r
                        let m = rowMaximum(xs, r)
                        if log {
                            let shift = m + Float(Foundation.log(expShiftedRow(xs, nil, r, shift: m)))
                            for j in 0..<r { ys[j] = xs[j] - shift }
                        } else {
                            let inv = Float(1 / expShiftedRow(xs, ys, r, shift: m))
                            for j in 0..<r { ys[j] *= inv }
                        }
                    }
                }
                return
            }
            // Strided axis: work on whole rows of `inner` columns, vectorised across columns.
            parallelFor(outer, minimumChunk: Swift.max(1, 8192 / (r * inner))) { range in
                withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * inner) { buffer in
                    guard let B = buffer.baseAddress else { return }
                    let colMax = B, colSum = B + inner
                    for o in range {
                        let xs = X + o * r * inner, ys = Y + o * r * inner
                        colMax.update(from: xs, count: inner)
                        for ri in 1..<Swift.max(1, r) {
                            let row = xs + ri * inner
                            for j in 0..<inner where row[j] > colMax[j] { colMax[j] = row[j] }
                        }
                        colSum.update(repeating: 0, count: inner)
                        for ri in 0..<r {
                            let row = xs + ri * inner, yrow = ys + ri * inner
                            var j = 0
                            while j < inner {
                                let c = Swift.min(16, inner - j)
                                let e = simdExp(loadPartial(row + j, c, fill: 0) - loadPartial(colMax + j, c, fill: 0))
                                storePartial(e, yrow + j, c)
                                for l in 0..<c { colSum[j + l] += e[l] }
                                j += 16
                            }
                        }
                        if log {
                            for j in 0..<inner { colSum[j] = colMax[j] + Foundation.log(colSum[j]) }
                            for ri in 0..<r {
                                let row = xs + ri * inner, yrow = ys + ri * inner
                                for j in 0..<inner { yrow[j] = row[j] - colSum[j] }
                            }
                        } else {
                            for j in 0..<inner { colSum[j] = 1 / colSum[j] }
                            for ri in 0..<r {
                                let yrow = ys + ri * inner
                                for j in 0..<inner { yrow[j] *= colSum[j] }
                            }
                        }
                    }
                }
            }
        }
    }
    return out
}

// MARK: - Softmax

/// `softmax(x)_i = exp(x_i − max x) / Σ_j exp(x_j − max x)` along `axis` (ONNX `Softmax`, opset ≥ 13
/// semantics; for the older "coerce to 2-D" semantics reshape to `(outer, rest)` first).
///
/// - Parameter axis: the axis to normalise (negative counts from the end). Default: the last.
/// - Precondition: Float32; `axis` in range.
public func softmax(_ x: Tensor, alongAxis axis: Int = -1) -> Tensor {
    softmaxKernel(x, axis: axis, log: false)
}

/// The pullback of ``softmax(_:alongAxis:)`` from its output `y`:
/// `∂/∂x = y ⊙ (g − Σ_axis g ⊙ y)`.
public func softmaxPullback(output y: Tensor, gradient g: Tensor, alongAxis axis: Int = -1) -> Tensor {
    softmaxFamilyPullback(output: y, gradient: g, axis: axis, log: false)
}

// MARK: - LogSoftmax

/// `logSoftmax(x)_i = x_i − max x − log Σ_j exp(x_j − max x)` along `axis` (ONNX `LogSoftmax`,
/// opset ≥ 13 semantics).
///
/// - Parameter axis: the axis to normalise (negative counts from the end). Default: the last.
/// - Precondition: Float32; `axis` in range.
public func logSoftmax(_ x: Tensor, alongAxis axis: Int = -1) -> Tensor {
    softmaxKernel(x, axis: axis, log: true)
}

/// The pullback of ``logSoftmax(_:alongAxis:)`` from its output `y`:
/// `∂/∂x = g − exp(y) · Σ_axis g`.
public func logSoftmaxPullback(output y: Tensor, gradient g: Tensor, alongAxis axis: Int = -1) -> Tensor {
    softmaxFamilyPullback(output: y, gradient: g, axis: axis, log: true)
}

/// Both pullbacks in one pass per slice along `axis`, with a Double accumulator for the slice sum:
/// softmax `y ⊙ (g − Σ g ⊙ y)`; log-softmax `g − exp(y) · Σ g`.
private func softmaxFamilyPullback(output y: Tensor, gradient g: Tensor, axis: Int, log: Bool) -> Tensor {
    precondition(y.shape == g.shape, "\(log ? "log-softmax" : "softmax") gradient shape \(g.shape) ≠ \(y.shape)")
    let (outer, r, inner) = softmaxLayout(y.shape, axis)
    var out = Tensor(uninitializedShape: y.shape)
    y.withUnsafeBufferPointer { py in
        g.withUnsafeBufferPointer { pg in
            out.withUnsafeMutableBufferPointer { po in
                guard let Y = py.baseAddress, let G = pg.baseAddress, let D = po.baseAddress else { return }
                parallelFor(outer * inner, minimumChunk: Swift.max(1, 8192 / Swift.max(1, r))) { range in
                    for t in range {
                        let o = t / inner, j = t % inner
                        let base = o * r * inner + j
                        var total = 0.0
                        for ri in 0..<r {
                            let i = base + ri * inner
                            total += log ? Double(G[i]) : Double(G[i] * Y[i])
                        }
                        let s = Float(total)
                        for ri in 0..<r {
                            let i = base + ri * inner
                            D[i] = log ? G[i] - Foundation.exp(Y[i]) * s : Y[i] * (G[i] - s)
                        }
                    }
                }
            }
        }
    }
    return out
}
