// Data-movement ops: transpose, concatenate, split, expand (broadcast), tile, and the strided-copy
// engine they share with slicing (Indexing.swift). All of them move bits, so they work unchanged on
// Float32, Int64 and Bool tensors. Semantics follow the ONNX operators of the same names
// (https://onnx.ai/onnx/operators/).

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Strided copy engine (internal)

/// Row-major (contiguous) strides of `shape`, in elements.
@usableFromInline
func contiguousStrides(_ shape: [Int]) -> [Int] {
    var strides = [Int](repeating: 1, count: shape.count)
    var s = 1
    for d in stride(from: shape.count - 1, through: 0, by: -1) {
        strides[d] = s
        s *= shape[d]
    }
    return strides
}

/// Copies every element of an index space: for each multi-index `i` of `shape`,
/// `dst[dstOffset + Σ i_d·dstStrides_d] = src[srcOffset + Σ i_d·srcStrides_d]` (strides in elements,
/// possibly zero or negative on the source side). Destination positions must be distinct.
///
/// Dims of extent 1 are dropped and adjacent dims that are contiguous in both operands are merged
/// first, so e.g. an NCHW→NHWC transpose becomes a batched 2-D transpose; a source whose innermost
/// stride is not 1 while some other dim has unit stride is copied in cache-sized 2-D tiles.
/// Multi-threaded over rows or tiles.
func stridedCopy(
    shape: [Int], elementSize: Int,
    src: UnsafeRawPointer, srcOffset: Int, srcStrides: [Int],
    dst: UnsafeMutableRawPointer, dstOffset: Int, dstStrides: [Int]
) {
    precondition(shape.count == srcStrides.count && shape.count == dstStrides.count)
    if shape.contains(0) { return }
    // Drop unit dims, then merge contiguous neighbours.
    var dims: [(n: Int, s: Int, d: Int)] = []
    for k in 0..<shape.count where shape[k] != 1 {
        dims.append((shape[k], srcStrides[k], dstStrides[k]))
    }
    var merged: [(n: Int, s: Int, d: Int)] = []
    for dim in dims {
        if let last = merged.last, last.s == dim.s * dim.n, last.d == dim.d * dim.n {
            merged[merged.count - 1] = (last.n * dim.n, dim.s, dim.d)
        } else {
            merged.append(dim)
        }
    }
    if merged.isEmpty { merged = [(1, 1, 1)] }
    switch elementSize {
    case 1:
        stridedCopyTyped(merged, src.assumingMemoryBound(to: UInt8.self) + srcOffset,
                         dst.assumingMemoryBound(to: UInt8.self) + dstOffset)
    case 4:
        stridedCopyTyped(merged, src.assumingMemoryBound(to: UInt32.self) + srcOffset,
                         dst.assumingMemoryBound(to: UInt32.self) + dstOffset)
    case 8:
        stridedCopyTyped(merged, src.assumingMemoryBound(to: UInt64.self) + srcOffset,
                         dst.assumingMemoryBound(to: UInt64.self) + dstOffset)
    default:
        preconditionFailure("unsupported element size \(elementSize)")
    }
}

/// Elements per work item below which handing work to another thread does not pay.
private let parallelGrain = 1 << 15

private func stridedCopyTyped<T>(_ dims: [(n: Int, s: Int, d: Int)], _ src: UnsafePointer<T>,
                                 _ dst: UnsafeMutablePointer<T>) {
    let rank = dims.count
    let inner = dims[rank - 1]
    // Tiled path: the innermost destination dim reads the source with a large stride while another
    // dim reads it contiguously (a transpose). Copy square tiles so both sides stay in cache.
    if rank >= 2, inner.s != 1, inner.s != 0, let k = dims.firstIndex(where: { $0.s == 1 }), k != rank - 1 {
        tiledTranspose(dims, k, src, dst)
        return
    }
    let n = inner.n, ss = inner.s, ds = inner.d
    let outer = Array(dims.dropLast())
    let rows = outer.reduce(1) { $0 * $1.n }
    let srcBox = UncheckedSendable(src), dstBox = UncheckedSendable(dst)
    parallelFor(rows, minimumChunk: max(1, parallelGrain / n)) { range in
        let src = srcBox.value, dst = dstBox.value
        // Odometer over the outer dims, starting at range.lowerBound.
        var idx = [Int](repeating: 0, count: outer.count)
        var so = 0, dOff = 0
        var r = range.lowerBound
        for k in stride(from: outer.count - 1, through: 0, by: -1) {
            idx[k] = r % outer[k].n
            r /= outer[k].n
            so += idx[k] * outer[k].s
            dOff += idx[k] * outer[k].d
        }
        for _ in range {
            let sp = src + so, dp = dst + dOff
            if ss == 1 && ds == 1 {
                dp.update(from: sp, count: n)
            } else if ss == 0 {
                let v = sp.pointee
                if ds == 1 { dp.update(repeating: v, count: n) } else { for j in 0..<n { dp[j * ds] = v } }
            } else if ds == 1 {
                for j in 0..<n { dp[j] = sp[j * ss] }
            } else {
                for j in 0..<n { dp[j * ds] = sp[j * ss] }
            }
            // Advance the odometer.
            var k = outer.count - 1
            while k >= 0 {
                idx[k] += 1
                so += outer[k].s
                dOff += outer[k].d
                if idx[k] < outer[k].n { break }
                so -= outer[k].s * outer[k].n
                dOff -= outer[k].d * outer[k].n
                idx[k] = 0
                k -= 1
            }
        }
    }
}

/// Copies with the 2-D plane (dim `k`, last dim) tiled; the other dims are batches.
private func tiledTranspose<T>(_ dims: [(n: Int, s: Int, d: Int)], _ k: Int, _ src: UnsafePointer<T>,
                               _ dst: UnsafeMutablePointer<T>) {
    let tile = 32
    let rank = dims.count
    let a = dims[k], b = dims[rank - 1]
    let batchDims = dims.enumerated().filter { $0.offset != k && $0.offset != rank - 1 }.map { $0.element }
    let batches = batchDims.reduce(1) { $0 * $1.n }
    let aTiles = (a.n + tile - 1) / tile, bTiles = (b.n + tile - 1) / tile
    let items = batches * aTiles
    let srcBox = UncheckedSendable(src), dstBox = UncheckedSendable(dst)
    parallelFor(items, minimumChunk: max(1, parallelGrain / max(1, tile * b.n))) { range in
        let src = srcBox.value, dst = dstBox.value
        for item in range {
            var batch = item / aTiles
            let at = item % aTiles
            var so = 0, dOff = 0
            for bd in batchDims.reversed() {
                let i = batch % bd.n
                batch /= bd.n
                so += i * bd.s
                dOff += i * bd.d
            }
            let a0 = at * tile, a1 = min(a.n, a0 + tile)
            for bt in 0..<bTiles {
                let b0 = bt * tile, b1 = min(b.n, b0 + tile)
                for i in a0..<a1 {
                    let sp = src + (so + i * a.s)
                    let dp = dst + (dOff + i * a.d)
                    for j in b0..<b1 { dp[j * b.d] = sp[j * b.s] }
                }
            }
        }
    }
}

extension Tensor {
    /// A new tensor of `shape` whose elements are gathered from `self` with the given element
    /// strides (0 broadcasts, negative walks backwards) starting at element `offset`.
    func gatheredStrided(shape: [Int], offset: Int, strides: [Int]) -> Tensor {
        let out = Tensor(uninitializedShape: shape, dtype: dtype)
        withExtendedLifetime(self) {
            stridedCopy(shape: shape, elementSize: dtype.byteSize,
                        src: UnsafeRawPointer(storage.pointer), srcOffset: offset, srcStrides: strides,
                        dst: out.storage.pointer, dstOffset: 0, dstStrides: contiguousStrides(shape))
        }
        return out
    }
}

// MARK: - Transpose

extension Tensor {
    /// The tensor with its dimensions permuted: output dim `i` is input dim `permutation[i]`
    /// (ONNX `Transpose`, NumPy `transpose`).
    ///
    /// Consecutive dims that stay consecutive are merged first, so NCHW↔NHWC and 2-D transposes run
    /// as cache-tiled batched 2-D transposes; permutations that keep the last dim copy whole rows.
    /// Multi-threaded for large tensors.
    /// - Precondition: `permutation` is a permutation of `0..<rank`.
    public func transposed(permutation: [Int]) -> Tensor {
        precondition(permutation.count == rank && Set(permutation) == Set(0..<rank),
                     "\(permutation) is not a permutation of the \(rank) dims of \(shape)")
        if permutation == Array(0..<rank) { return self }
        let inStrides = contiguousStrides(shape)
        let outShape = permutation.map { shape[$0] }
        return gatheredStrided(shape: outShape, offset: 0, strides: permutation.map { inStrides[$0] })
    }

    /// The tensor with the order of its dimensions reversed (ONNX `Transpose` without `perm`).
    public func transposed() -> Tensor {
        transposed(permutation: Array((0..<rank).reversed()))
    }
}

/// The permutation that undoes `permutation`.
public func inversePermutation(_ permutation: [Int]) -> [Int] {
    var inverse = [Int](repeating: 0, count: permutation.count)
    for (i, p) in permutation.enumerated() { inverse[p] = i }
    return inverse
}

/// Pullback of ``Tensor/transposed(permutation:)``: transposes the output gradient by the inverse
/// permutation.
public func transposePullback(_ gradient: Tensor, permutation: [Int]) -> Tensor {
    gradient.transposed(permutation: inversePermutation(permutation))
}

// MARK: - Concatenate / split

/// Joins tensors along an existing axis (ONNX `Concat`).
///
/// - Parameters:
///   - tensors: one or more tensors of one dtype and rank whose shapes agree except along `axis`.
///   - axis: the joining axis; negative values count from the end.
/// - Returns: a tensor whose extent along `axis` is the sum of the inputs'.
public func concatenated(_ tensors: [Tensor], alongAxis axis: Int) -> Tensor {
    precondition(!tensors.isEmpty, "concatenating no tensors")
    let first = tensors[0]
    let rank = first.rank
    let ax = axis < 0 ? axis + rank : axis
    precondition(ax >= 0 && ax < rank, "axis \(axis) out of range for rank \(rank)")
    var outShape = first.shape
    outShape[ax] = 0
    for t in tensors {
        precondition(t.dtype == first.dtype && t.rank == rank, "concatenating mismatched tensors")
        for d in 0..<rank where d != ax {
            precondition(t.shape[d] == first.shape[d], "shapes \(first.shape) and \(t.shape) differ off axis \(ax)")
        }
        outShape[ax] += t.shape[ax]
    }
    let out = Tensor(uninitializedShape: outShape, dtype: first.dtype)
    let outer = outShape[..<ax].reduce(1, *)
    let inner = outShape[(ax + 1)...].reduce(1, *)
    let es = first.dtype.byteSize
    let outRow = outShape[ax] * inner * es
    var position = 0
    for t in tensors {
        let rowBytes = t.shape[ax] * inner * es
        if rowBytes > 0 {
            withExtendedLifetime(t) {
                let s = UncheckedSendable(UnsafeRawPointer(t.storage.pointer))
                let d = UncheckedSendable(out.storage.pointer + position)
                parallelFor(outer, minimumChunk: max(1, (parallelGrain * 4) / rowBytes)) { range in
                    for o in range {
                        (d.value + o * outRow).copyMemory(from: s.value + o * rowBytes, byteCount: rowBytes)
                    }
                }
            }
        }
        position += rowBytes
    }
    return out
}

extension Tensor {
    /// Splits the tensor along `axis` into consecutive pieces of the given extents (ONNX `Split`).
    /// - Precondition: `sizes` are non-negative and sum to the extent of `axis` (negative axes count
    ///   from the end).
    public func split(sizes: [Int], alongAxis axis: Int) -> [Tensor] {
        let ax = axis < 0 ? axis + rank : axis
        precondition(ax >= 0 && ax < rank, "axis \(axis) out of range for rank \(rank)")
        precondition(sizes.allSatisfy { $0 >= 0 } && sizes.reduce(0, +) == shape[ax],
                     "split sizes \(sizes) do not sum to \(shape[ax])")
        let strides = contiguousStrides(shape)
        var start = 0
        return sizes.map { size in
            var s = shape
            s[ax] = size
            let piece = gatheredStrided(shape: s, offset: start * strides[ax], strides: strides)
            start += size
            return piece
        }
    }
}

/// Pullback of ``concatenated(_:alongAxis:)``: the output gradient split back into the inputs'
/// extents along `axis`.
public func concatenatePullback(_ gradient: Tensor, sizes: [Int], alongAxis axis: Int) -> [Tensor] {
    gradient.split(sizes: sizes, alongAxis: axis)
}

/// Pullback of ``Tensor/split(sizes:alongAxis:)``: the pieces' gradients joined back along `axis`;
/// a `nil` gradient (unused output) contributes zeros.
/// - Parameters:
///   - gradients: one gradient (or `nil`) per piece, in order.
///   - inputShape: the shape of the tensor that was split.
public func splitPullback(_ gradients: [Tensor?], sizes: [Int], alongAxis axis: Int, inputShape: [Int]) -> Tensor {
    precondition(gradients.count == sizes.count, "\(gradients.count) gradients for \(sizes.count) pieces")
    let ax = axis < 0 ? axis + inputShape.count : axis
    let pieces: [Tensor] = zip(gradients, sizes).map { g, size in
        var s = inputShape
        s[ax] = size
        return g ?? Tensor(zeros: s)
    }
    return concatenated(pieces, alongAxis: ax)
}

// MARK: - Expand / tile

extension Tensor {
    /// The tensor broadcast to `targetShape` (NumPy rules, aligned at the trailing dims): each
    /// extent of `self` must equal the target's or be 1. Used by ONNX `Expand` once the
    /// bidirectional result shape is known.
    /// - Precondition: `self.shape` broadcasts to `targetShape` (`targetShape.count >= rank`).
    public func expanded(toShape targetShape: [Int]) -> Tensor {
        precondition(targetShape.count >= rank, "cannot expand \(shape) to lower rank \(targetShape)")
        if targetShape == shape { return self }
        let lead = targetShape.count - rank
        let inStrides = contiguousStrides(shape)
        var strides = [Int](repeating: 0, count: targetShape.count)
        for d in 0..<rank {
            let t = targetShape[lead + d]
            precondition(shape[d] == t || shape[d] == 1, "cannot expand \(shape) to \(targetShape)")
            strides[lead + d] = shape[d] == 1 ? 0 : inStrides[d]
        }
        return gatheredStrided(shape: targetShape, offset: 0, strides: strides)
    }

    /// The tensor repeated `multiples[d]` times along each dim `d` (ONNX `Tile`, NumPy `tile`).
    /// - Precondition: one non-negative multiple per dim.
    public func tiled(multiples: [Int]) -> Tensor {
        precondition(multiples.count == rank && multiples.allSatisfy { $0 >= 0 },
                     "tile multiples \(multiples) for shape \(shape)")
        // View as [1, a0, 1, a1, ...], broadcast to [m0, a0, m1, a1, ...] and flatten pairs.
        let inStrides = contiguousStrides(shape)
        var bigShape: [Int] = [], strides: [Int] = []
        for d in 0..<rank {
            bigShape += [multiples[d], shape[d]]
            strides += [0, inStrides[d]]
        }
        let outShape = (0..<rank).map { multiples[$0] * shape[$0] }
        return gatheredStrided(shape: bigShape, offset: 0, strides: strides).reshaped(to: outShape)
    }
}

/// Sums a Float32 tensor over the dims where `targetShape` (same rank) is 1 and the gradient is
/// not, giving a tensor of `targetShape`.
private func sumToShapeSameRank(_ g: Tensor, _ targetShape: [Int]) -> Tensor {
    precondition(g.dtype == .float32, "gradient must be Float32")
    let rank = g.rank
    var out = Tensor(zeros: targetShape)
    if g.count == 0 { return out }
    let outStrides = contiguousStrides(targetShape)
    // (extent, source stride, destination stride) with destination stride 0 for summed dims;
    // drop unit dims and merge contiguous neighbours like the copy engine.
    let gStrides = contiguousStrides(g.shape)
    var dims: [(n: Int, s: Int, d: Int)] = []
    for k in 0..<rank where g.shape[k] != 1 {
        precondition(targetShape[k] == g.shape[k] || targetShape[k] == 1)
        let d = targetShape[k] == 1 ? 0 : outStrides[k]
        let entry = (g.shape[k], gStrides[k], d)
        if let last = dims.last, last.s == entry.1 * entry.0, last.d == entry.2 * entry.0 {
            dims[dims.count - 1] = (last.n * entry.0, entry.1, entry.2)
        } else {
            dims.append(entry)
        }
    }
    if dims.isEmpty { dims = [(1, 1, 1)] }
    let inner = dims[dims.count - 1]
    let outer = Array(dims.dropLast())
    // Parallel over the first outer dim when it is kept (its output slices are disjoint).
    let splitFirst = !outer.isEmpty && outer[0].d != 0
    let firstCount = splitFirst ? outer[0].n : 1
    let rest = splitFirst ? Array(outer.dropFirst()) : outer
    let restRows = rest.reduce(1) { $0 * $1.n }
    g.withUnsafeBufferPointer { gb in
        out.withUnsafeMutableBufferPointer { ob in
            let gp = UncheckedSendable(gb.baseAddress!), op = UncheckedSendable(ob.baseAddress!)
            parallelFor(firstCount, minimumChunk: max(1, parallelGrain / max(1, restRows * inner.n))) { range in
                for f in range {
                    var so = splitFirst ? f * outer[0].s : 0
                    var dOff = splitFirst ? f * outer[0].d : 0
                    var idx = [Int](repeating: 0, count: rest.count)
                    for _ in 0..<restRows {
                        let sp = gp.value + so, dp = op.value + dOff
                        if inner.d == 0 {
                            var acc: Float = 0
                            for j in 0..<inner.n { acc += sp[j * inner.s] }
                            dp.pointee += acc
                        } else {
                            for j in 0..<inner.n { dp[j * inner.d] += sp[j * inner.s] }
                        }
                        var k = rest.count - 1
                        while k >= 0 {
                            idx[k] += 1
                            so += rest[k].s
                            dOff += rest[k].d
                            if idx[k] < rest[k].n { break }
                            so -= rest[k].s * rest[k].n
                            dOff -= rest[k].d * rest[k].n
                            idx[k] = 0
                            k -= 1
                        }
                    }
                }
            }
        }
    }
    return out
}

/// Pullback of ``Tensor/expanded(toShape:)``: sums the output gradient over the broadcast dims,
/// giving a gradient of `inputShape`.
public func expandPullback(_ gradient: Tensor, inputShape: [Int]) -> Tensor {
    let lead = gradient.rank - inputShape.count
    precondition(lead >= 0, "gradient rank below input rank")
    if lead == 0 && gradient.shape == inputShape { return gradient }
    let padded = [Int](repeating: 1, count: lead) + inputShape
    return sumToShapeSameRank(gradient, padded).reshaped(to: inputShape)
}

/// Pullback of ``Tensor/tiled(multiples:)``: the sum of the output gradient's tiles.
public func tilePullback(_ gradient: Tensor, inputShape: [Int], multiples: [Int]) -> Tensor {
    var bigShape: [Int] = [], target: [Int] = []
    for d in 0..<inputShape.count {
        bigShape += [multiples[d], inputShape[d]]
        target += [1, inputShape[d]]
    }
    return sumToShapeSameRank(gradient.reshaped(to: bigShape), target).reshaped(to: inputShape)
}
