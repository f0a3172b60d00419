// 2-D max and average pooling and global pooling over NCHW tensors, with their pullbacks.
//
// Window semantics follow ONNX MaxPool / AveragePool (and PyTorch `max_pool2d` / `avg_pool2d`):
// window `(oy, ox)` covers input rows `oy·sh − top + ki·dh` for `ki` in `0..<kh` (same for
// columns). Taps outside the input (padding, or past the end in ceil mode) are skipped by max
// pooling; average pooling divides by the number of taps inside the input, or — with
// `countIncludePad` — by the number of taps inside the *padded* input `[−top, H + bottom)`
// (taps that ceil mode pushes past the bottom/right padding are never counted, as in PyTorch).
// Each plane `(n, c)` is independent: the kernels split planes over threads with `parallelFor`.
// Max pooling and its pullback run CKernels' SIMD kernels (`ck_maxpool2d`, `ck_maxpool2d_backward`:
// branch-free, vectorised along output columns; the scalar loop of `maxPool2DIndices` spells out
// the same winner rule).

import CKernels

/// The number of pooling windows along one axis (ONNX MaxPool / AveragePool):
/// `⌊span / stride⌋ + 1` with `span = input + padBegin + padEnd − ((kernel − 1)·dilation + 1)`, or
/// with `ceilMode` `⌈span / stride⌉ + 1`, dropping a last window that would start past
/// `input + padBegin` (entirely in the end padding), as PyTorch and ONNX Runtime do.
/// Returns 0 when the padded input is smaller than the dilated kernel.
public func poolingOutputSize(input: Int, kernel: Int, stride: Int, dilation: Int,
                              padBegin: Int, padEnd: Int, ceilMode: Bool) -> Int {
    let span = input + padBegin + padEnd - ((kernel - 1) * dilation + 1)
    if span < 0 { return 0 }
    if !ceilMode { return span / stride + 1 }
    var out = (span + stride - 1) / stride + 1
    if (out - 1) * stride >= input + padBegin { out -= 1 }
    return out
}

/// The shapes of one pooling (internal).
struct Pool2DGeometry {
    let n, c, h, w: Int
    let kh, kw, sh, sw, dh, dw: Int
    let padding: Padding2D
    let oh, ow: Int

    init(input: [Int], kernelSize: (Int, Int), strides: (Int, Int), padding: Padding2D,
         dilations: (Int, Int), ceilMode: Bool) {
        precondition(input.count == 4, "pooling input must be NCHW, got shape \(input)")
        precondition(kernelSize.0 >= 1 && kernelSize.1 >= 1 && strides.0 >= 1 && strides.1 >= 1
                     && dilations.0 >= 1 && dilations.1 >= 1, "pooling: kernel, strides and dilations must be positive")
        n = input[0]; c = input[1]; h = input[2]; w = input[3]
        kh = kernelSize.0; kw = kernelSize.1
        sh = strides.0; sw = strides.1; dh = dilations.0; dw = dilations.1
        self.padding = padding
        oh = poolingOutputSize(input: h, kernel: kh, stride: sh, dilation: dh,
                               padBegin: padding.top, padEnd: padding.bottom, ceilMode: ceilMode)
        ow = poolingOutputSize(input: w, kernel: kw, stride: sw, dilation: dw,
                               padBegin: padding.left, padEnd: padding.right, ceilMode: ceilMode)
    }

    var outputShape: [Int] { [n, c, oh, ow] }
    var planes: Int { n * c }
    var minimumChunk: Int { max(1, 16_384 / max(1, oh * ow * kh * kw)) }

    /// The C kernels' description of one plane (`C` unused).
    var cGeometry: ck_conv_geom {
        ck_conv_geom(C: 1, H: Int32(h), W: Int32(w), KH: Int32(kh), KW: Int32(kw), SH: Int32(sh), SW: Int32(sw),
                     DH: Int32(dh), DW: Int32(dw), PT: Int32(padding.top), PL: Int32(padding.left),
                     OH: Int32(oh), OW: Int32(ow))
    }
}

/// The taps `k` in `0..<kernel` of a window starting at `start` (dilation `d`) that land in
/// `0..<size`: a contiguous range because positions grow with `k`.
@inline(__always)
private func tapRange(start: Int, kernel: Int, dilation: Int, size: Int) -> Range<Int> {
    let lo = start >= 0 ? 0 : (-start + dilation - 1) / dilation
    let hi = start >= size ? 0 : min(kernel, (size - 1 - start) / dilation + 1)
    return lo < hi ? lo..<hi : 0..<0
}

// MARK: - Max pooling

/// Max pooling over the two spatial axes of an NCHW tensor.
///
/// - Parameters:
///   - input: `[N, C, H, W]`, Float32.
///   - kernelSize: window (height, width).
///   - strides, dilations: (vertical, horizontal).
///   - padding: explicit padding; padded positions never win the max.
///   - ceilMode: round the window count up (see ``poolingOutputSize(input:kernel:stride:dilation:padBegin:padEnd:ceilMode:)``).
/// - Returns: `[N, C, OH, OW]`. A window without any input tap (only possible with padding at
///   least as large as the kernel) yields `-Float.greatestFiniteMagnitude`, as ONNX Runtime does.
///   NaN propagates (a NaN in a window is its maximum).
public func maxPool2D(
    _ input: Tensor, kernelSize: (Int, Int), strides: (Int, Int) = (1, 1), padding: Padding2D = .zero,
    dilations: (Int, Int) = (1, 1), ceilMode: Bool = false
) -> Tensor {
    let geo = Pool2DGeometry(input: input.shape, kernelSize: kernelSize, strides: strides, padding: padding,
                             dilations: dilations, ceilMode: ceilMode)
    var output = Tensor(uninitializedShape: geo.outputShape)
    if output.count == 0 { return output }
    if input.count == 0 {
        // Empty planes (the windows lie in the padding only).
        output.withUnsafeMutableBufferPointer { $0.update(repeating: -Float.greatestFiniteMagnitude) }
        return output
    }
    input.withUnsafeBufferPointer { xb in
        output.withUnsafeMutableBufferPointer { yb in
            let x = xb.baseAddress!, y = yb.baseAddress!
            withUnsafePointer(to: geo.cGeometry) { cg in
                parallelFor(geo.planes, minimumChunk: geo.minimumChunk) { planes in
                    let status = ck_maxpool2d(x, y, cg, Int32(planes.lowerBound), Int32(planes.upperBound))
                    precondition(status == 0, "maxPool2D: out of memory in the pooling kernel")
                }
            }
        }
    }
    return output
}

/// The pullback of ``maxPool2D(_:kernelSize:strides:padding:dilations:ceilMode:)``: each output
/// gradient goes to the input element that won its window.
///
/// Ties: the gradient goes to the **first** maximal element in scan order (row by row, left to
/// right within the window), like PyTorch's CPU `max_pool2d_with_indices` (which keeps the first
/// index because it only replaces the running maximum on a strictly greater value or a NaN).
/// Overlapping windows add their gradients. No indices are stored by the forward pass: the winner
/// is found again from `input`.
///
/// - Parameters:
///   - input: the forward pass's input `[N, C, H, W]`.
///   - outputGradient: `[N, C, OH, OW]`.
///   - the others: as in the forward pass.
/// - Returns: the input gradient `[N, C, H, W]`.
public func maxPool2DPullback(
    _ input: Tensor, outputGradient: Tensor, kernelSize: (Int, Int), strides: (Int, Int) = (1, 1),
    padding: Padding2D = .zero, dilations: (Int, Int) = (1, 1), ceilMode: Bool = false
) -> Tensor {
    let geo = Pool2DGeometry(input: input.shape, kernelSize: kernelSize, strides: strides, padding: padding,
                             dilations: dilations, ceilMode: ceilMode)
    precondition(outputGradient.shape == geo.outputShape,
                 "maxPool2DPullback: gradient \(outputGradient.shape), expected \(geo.outputShape)")
    var dx = Tensor(zeros: input.shape)
    if outputGradient.count == 0 || dx.count == 0 { return dx }
    input.withUnsafeBufferPointer { xb in
        outputGradient.withUnsafeBufferPointer { gb in
            dx.withUnsafeMutableBufferPointer { db in
                let x = xb.baseAddress!, dy = gb.baseAddress!, d = db.baseAddress!
                withUnsafePointer(to: geo.cGeometry) { cg in
                    parallelFor(geo.planes, minimumChunk: geo.minimumChunk) { planes in
                        let status = ck_maxpool2d_backward(x, dy, d, cg, Int32(planes.lowerBound),
                                                           Int32(planes.upperBound))
                        precondition(status == 0, "maxPool2DPullback: out of memory in the pooling kernel")
                    }
                }
            }
        }
    }
    return dx
}

/// The position of each window's maximum in ``maxPool2D(_:kernelSize:strides:padding:dilations:ceilMode:)``,
/// as ONNX MaxPool's `Indices` output: an index into the flattened input, the first maximum in scan
/// order on ties (the element that receives the gradient in ``maxPool2DPullback(_:outputGradient:kernelSize:strides:padding:dilations:ceilMode:)``).
///
/// - Parameter columnMajor: ONNX `storage_order = 1`: within a plane, `w · H + h` instead of `h · W + w`.
/// - Returns: an Int64 tensor `[N, C, OH, OW]`; `plane · H · W` plus the position within the plane
///   (−1 for a window without input taps).
public func maxPool2DIndices(
    _ input: Tensor, kernelSize: (Int, Int), strides: (Int, Int) = (1, 1), padding: Padding2D = .zero,
    dilations: (Int, Int) = (1, 1), ceilMode: Bool = false, columnMajor: Bool = false
) -> Tensor {
    let geo = Pool2DGeometry(input: input.shape, kernelSize: kernelSize, strides: strides, padding: padding,
                             dilations: dilations, ceilMode: ceilMode)
    var output = Tensor(uninitializedShape: geo.outputShape, dtype: .int64)
    if output.count == 0 { return output }
    input.withUnsafeBufferPointer { xb in
        output.withUnsafeMutableInt64BufferPointer { ib in
            let x = xb.baseAddress!, indices = ib.baseAddress!
            parallelFor(geo.planes, minimumChunk: geo.minimumChunk) { planes in
                for plane in planes {
                    let xp = x + plane * geo.h * geo.w
                    let ip = indices + plane * geo.oh * geo.ow
                    for oy in 0..<geo.oh {
                        let y0 = oy * geo.sh - geo.padding.top
                        let rows = tapRange(start: y0, kernel: geo.kh, dilation: geo.dh, size: geo.h)
                        for ox in 0..<geo.ow {
                            let x0 = ox * geo.sw - geo.padding.left
                            let cols = tapRange(start: x0, kernel: geo.kw, dilation: geo.dw, size: geo.w)
                            var best = -Float.greatestFiniteMagnitude
                            var bestRow = -1, bestCol = -1
                            for ki in rows {
                                let iy = y0 + ki * geo.dh
                                for kj in cols {
                                    let ix = x0 + kj * geo.dw
                                    let v = xp[iy * geo.w + ix]
                                    if v > best || (v.isNaN && !best.isNaN) || bestRow < 0 {
                                        best = v
                                        bestRow = iy
                                        bestCol = ix
                                    }
                                }
                            }
                            let within = columnMajor ? bestCol * geo.h + bestRow : bestRow * geo.w + bestCol
                            ip[oy * geo.ow + ox] = bestRow < 0 ? -1 : Int64(plane * geo.h * geo.w + within)
                        }
                    }
                }
            }
        }
    }
    return output
}

// MARK: - Average pooling

/// The divisor of every window of an average pooling (count of taps in the input, or in the padded
/// input with `countIncludePad`), per output row and per output column; the divisor of window
/// `(oy, ox)` is `rows[oy] · cols[ox]`.
private func averageDivisors(_ geo: Pool2DGeometry, countIncludePad: Bool) -> (rows: [Int], cols: [Int]) {
    let rows = (0..<geo.oh).map { oy -> Int in
        let y0 = oy * geo.sh - geo.padding.top
        if countIncludePad {
            return tapRange(start: y0 + geo.padding.top, kernel: geo.kh, dilation: geo.dh,
                            size: geo.h + geo.padding.top + geo.padding.bottom).count
        }
        return tapRange(start: y0, kernel: geo.kh, dilation: geo.dh, size: geo.h).count
    }
    let cols = (0..<geo.ow).map { ox -> Int in
        let x0 = ox * geo.sw - geo.padding.left
        if countIncludePad {
            return tapRange(start: x0 + geo.padding.left, kernel: geo.kw, dilation: geo.dw,
                            size: geo.w + geo.padding.left + geo.padding.right).count
        }
        return tapRange(start: x0, kernel: geo.kw, dilation: geo.dw, size: geo.w).count
    }
    return (rows, cols)
}

/// Average pooling over the two spatial axes of an NCHW tensor.
///
/// - Parameters:
///   - input: `[N, C, H, W]`, Float32.
///   - kernelSize, strides, padding, dilations, ceilMode: as in ``maxPool2D(_:kernelSize:strides:padding:dilations:ceilMode:)``.
///   - countIncludePad: divide by the taps inside the padded input (ONNX `count_include_pad = 1`)
///     instead of the taps inside the input.
/// - Returns: `[N, C, OH, OW]`; a window with nothing to count yields 0.
public func avgPool2D(
    _ input: Tensor, kernelSize: (Int, Int), strides: (Int, Int) = (1, 1), padding: Padding2D = .zero,
    dilations: (Int, Int) = (1, 1), ceilMode: Bool = false, countIncludePad: Bool = false
) -> Tensor {
    let geo = Pool2DGeometry(input: input.shape, kernelSize: kernelSize, strides: strides, padding: padding,
                             dilations: dilations, ceilMode: ceilMode)
    var output = Tensor(uninitializedShape: geo.outputShape)
    if output.count == 0 { return output }
    let (rowCounts, colCounts) = averageDivisors(geo, countIncludePad: countIncludePad)
    rowCounts.withUnsafeBufferPointer { rc in
        colCounts.withUnsafeBufferPointer { cc in
            input.withUnsafeBufferPointer { xb in
                output.withUnsafeMutableBufferPointer { yb in
                    let x = xb.baseAddress!, y = yb.baseAddress!
                    parallelFor(geo.planes, minimumChunk: geo.minimumChunk) { planes in
                        for plane in planes {
                            let xp = x + plane * geo.h * geo.w
                            let yp = y + plane * geo.oh * geo.ow
                            for oy in 0..<geo.oh {
                                let y0 = oy * geo.sh - geo.padding.top
                                let rows = tapRange(start: y0, kernel: geo.kh, dilation: geo.dh, size: geo.h)
                                for ox in 0..<geo.ow {
                                    let x0 = ox * geo.sw - geo.padding.left
                                    let cols = tapRange(start: x0, kernel: geo.kw, dilation: geo.dw, size: geo.w)
                                    var total: Float = 0
                                    for ki in rows {
                                        let row = xp + (y0 + ki * geo.dh) * geo.w + x0
                                        for kj in cols { total += row[kj * geo.dw] }
                                    }
                                    let divisor = rc[oy] * cc[ox]
                                    yp[oy * geo.ow + ox] = divisor > 0 ? total / Float(divisor) : 0
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    return output
}

/// The pullback of ``avgPool2D(_:kernelSize:strides:padding:dilations:ceilMode:countIncludePad:)``:
/// each output gradient, divided by its window's divisor, is added to every input tap of the window.
///
/// - Parameters:
///   - inputShape: the forward pass's input shape `[N, C, H, W]`.
///   - outputGradient: `[N, C, OH, OW]`.
///   - the others: as in the forward pass.
/// - Returns: the input gradient, `inputShape`.
public func avgPool2DPullback(
    inputShape: [Int], outputGradient: Tensor, kernelSize: (Int, Int), strides: (Int, Int) = (1, 1),
    padding: Padding2D = .zero, dilations: (Int, Int) = (1, 1), ceilMode: Bool = false,
    countIncludePad: Bool = false
) -> Tensor {
    let geo = Pool2DGeometry(input: inputShape, kernelSize: kernelSize, strides: strides, padding: padding,
                             dilations: dilations, ceilMode: ceilMode)
    precondition(outputGradient.shape == geo.outputShape,
                 "avgPool2DPullback: gradient \(outputGradient.shape), expected \(geo.outputShape)")
    var dx = Tensor(zeros: inputShape)
    if outputGradient.count == 0 || dx.count == 0 { return dx }
    let (rowCounts, colCounts) = averageDivisors(geo, countIncludePad: countIncludePad)
    rowCounts.withUnsafeBufferPointer { rc in
        colCounts.withUnsafeBufferPointer { cc in
            outputGradient.withUnsafeBufferPointer { gb in
                dx.withUnsafeMutableBufferPointer { db in
                    let dy = gb.baseAddress!, d = db.baseAddress!
                    parallelFor(geo.planes, minimumChunk: geo.minimumChunk) { planes in
                        for plane in planes {
                            let dp = d + plane * geo.h * geo.w
                            let gp = dy + plane * geo.oh * geo.ow
                            for oy in 0..<geo.oh {
                                let y0 = oy * geo.sh - geo.padding.top
                                let rows = tapRange(start: y0, kernel: geo.kh, dilation: geo.dh, size: geo.h)
                                for ox in 0..<geo.ow {
                                    let divisor = rc[oy] * cc[ox]
                                    if divisor == 0 { continue }
                                    let share = gp[oy * geo.ow + ox] / Float(divisor)
                                    let x0 = ox * geo.sw - geo.padding.left
                                    let cols = tapRange(start: x0, kernel: geo.kw, dilation: geo.dw, size: geo.w)
                                    for ki in rows {
                                        let row = dp + (y0 + ki * geo.dh) * geo.w + x0
                                        for kj in cols { row[kj * geo.dw] += share }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    return dx
}

// MARK: - Global pooling

/// The shape `[N, C, 1, …, 1]` of a global pooling of `shape` (rank ≥ 2).
private func globalPoolShape(_ shape: [Int]) -> [Int] {
    precondition(shape.count >= 2, "global pooling needs [N, C, ...], got \(shape)")
    return [shape[0], shape[1]] + Array(repeating: 1, count: shape.count - 2)
}

/// The mean over every spatial position of each plane: `[N, C, D1, …]` → `[N, C, 1, …, 1]`
/// (ONNX GlobalAveragePool; any number of spatial axes).
public func globalAvgPool(_ input: Tensor) -> Tensor {
    let outShape = globalPoolShape(input.shape)
    let planes = outShape[0] * outShape[1]
    let size = planes == 0 ? 0 : input.count / planes
    var output = Tensor(uninitializedShape: outShape)
    if planes == 0 { return output }
    input.withUnsafeBufferPointer { xb in
        output.withUnsafeMutableBufferPointer { yb in
            let y = yb.baseAddress!
            guard let x = xb.baseAddress, size > 0 else {
                yb.update(repeating: .nan)
                return
            }
            parallelFor(planes, minimumChunk: max(1, 32_768 / size)) { range in
                for plane in range {
                    let xp = x + plane * size
                    // Eight partial sums: vectorisable and more accurate than one running sum.
                    var s0: Float = 0, s1: Float = 0, s2: Float = 0, s3: Float = 0
                    var s4: Float = 0, s5: Float = 0, s6: Float = 0, s7: Float = 0
                    var i = 0
                    while i + 8 <= size {
                        s0 += xp[i]; s1 += xp[i + 1]; s2 += xp[i + 2]; s3 += xp[i + 3]
                        s4 += xp[i + 4]; s5 += xp[i + 5]; s6 += xp[i + 6]; s7 += xp[i + 7]
                        i += 8
                    }
                    var total = ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
                    while i < size { total += xp[i]; i += 1 }
                    y[plane] = total / Float(size)
                }
            }
        }
    }
    return output
}

/// The pullback of ``globalAvgPool(_:)``: each plane's gradient spread evenly over its positions.
/// - Parameters:
///   - inputShape: the forward pass's input shape.
///   - outputGradient: `[N, C, 1, …, 1]`.
public func globalAvgPoolPullback(inputShape: [Int], outputGradient: Tensor) -> Tensor {
    let outShape = globalPoolShape(inputShape)
    precondition(outputGradient.count == outShape[0] * outShape[1],
                 "globalAvgPoolPullback: gradient \(outputGradient.shape) for input \(inputShape)")
    let planes = outShape[0] * outShape[1]
    var dx = Tensor(uninitializedShape: inputShape)
    if dx.count == 0 { return dx }
    let size = dx.count / planes
    outputGradient.withUnsafeBufferPointer { gb in
        dx.withUnsafeMutableBufferPointer { db in
            let g = gb.baseAddress!, d = db.baseAddress!
            parallelFor(planes, minimumChunk: max(1, 32_768 / size)) { range in
                for plane in range {
                    UnsafeMutableBufferPointer(start: d + plane * size, count: size)
                        .update(repeating: g[plane] / Float(size))
                }
            }
        }
    }
    return dx
}

/// The maximum over every spatial position of each plane: `[N, C, D1, …]` → `[N, C, 1, …, 1]`
/// (ONNX GlobalMaxPool; any number of spatial axes). NaN propagates.
public func globalMaxPool(_ input: Tensor) -> Tensor {
    let outShape = globalPoolShape(input.shape)
    let planes = outShape[0] * outShape[1]
    var output = Tensor(uninitializedShape: outShape)
    if planes == 0 { return output }
    let size = input.count / planes
    input.withUnsafeBufferPointer { xb in
        output.withUnsafeMutableBufferPointer { yb in
            let y = yb.baseAddress!
            guard let x = xb.baseAddress, size > 0 else {
                yb.update(repeating: -Float.greatestFiniteMagnitude)
                return
            }
            parallelFor(planes, minimumChunk: max(1, 32_768 / size)) { range in
                for plane in range {
                    let xp = x + plane * size
                    var best = -Float.infinity
                    var sawNaN = false
                    for i in 0..<size {
                        let v = xp[i]
                        best = max(best, v)
                        sawNaN = sawNaN || v.isNaN
                    }
                    y[plane] = sawNaN ? .nan : best
                }
            }
        }
    }
    return output
}

/// The pullback of ``globalMaxPool(_:)``: each plane's gradient goes to its first maximal element
/// (row-major order), like ``maxPool2DPullback(_:outputGradient:kernelSize:strides:padding:dilations:ceilMode:)``.
/// - Parameters:
///   - input: the forward pass's input.
///   - outputGradient: `[N, C, 1, …, 1]`.
public func globalMaxPoolPullback(_ input: Tensor, outputGradient: Tensor) -> Tensor {
    let outShape = globalPoolShape(input.shape)
    let planes = outShape[0] * outShape[1]
    precondition(outputGradient.count == planes,
                 "globalMaxPoolPullback: gradient \(outputGradient.shape) for input \(input.shape)")
    var dx = Tensor(zeros: input.shape)
    if dx.count == 0 { return dx }
    let size = dx.count / planes
    input.withUnsafeBufferPointer { xb in
        outputGradient.withUnsafeBufferPointer { gb in
            dx.withUnsafeMutableBufferPointer { db in
                let x = xb.baseAddress!, g = gb.baseAddress!, d = db.baseAddress!
                parallelFor(planes, minimumChunk: max(1, 32_768 / size)) { range in
                    for plane in range {
                        let xp = x + plane * size
                        var best = xp[0], index = 0
                        for i in 1..<max(1, size) {
                            let v = xp[i]
                            if best.isNaN { break }
                            if v > best || v.isNaN { best = v; index = i }
                        }
                        d[plane * size + index] = g[plane]
                    }
                }
            }
        }
    }
    return dx
}
