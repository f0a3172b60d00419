// Indexing ops: slice, gather and scatter. Semantics follow the ONNX operators `Slice`, `Gather`
// and `ScatterND` (https://onnx.ai/onnx/operators/). Slice and gather move bits, so they work on
// Float32, Int64 and Bool tensors alike; index tensors are Int64.

// MARK: - Slice

/// The elements one axis keeps after a slice: `count` elements from `start`, `step` apart
/// (`step` may be negative; `start` is only meaningful when `count > 0`).
public struct SliceRange: Sendable, Equatable {
    /// The first kept index.
    public var start: Int
    /// The distance between kept indices (non-zero).
    public var step: Int
    /// The number of kept indices.
    public var count: Int

    /// Creates a range.
    public init(start: Int, step: Int, count: Int) {
        self.start = start
        self.step = step
        self.count = count
    }

    /// The whole axis of extent `n`.
    public static func all(_ n: Int) -> SliceRange { SliceRange(start: 0, step: 1, count: n) }
}

/// Resolves ONNX/NumPy slice bounds into one ``SliceRange`` per dim of `shape`.
///
/// Follows the ONNX `Slice` spec: negative starts/ends count from the end; then for a positive
/// step start and end are clamped to `[0, n]`, for a negative step start to `[0, n−1]` and end to
/// `[−1, n−1]`, so huge values such as `Int64.max`/`Int64.min` mean "to the end"/"to the
/// beginning". Like ONNX Runtime, an end of `Int32.max` or `Int64.max` means "through the last
/// element in the step's direction" also for negative steps. Note that with a negative step a start
/// below `−n` clamps to 0 and keeps element 0, where NumPy keeps nothing (the ONNX rule).
/// Dims not named in `axes` are kept whole.
/// - Parameters:
///   - axes: the axes the bounds apply to (negative counts from the end); `nil` means `0..<starts.count`.
///   - steps: one non-zero step per axis; `nil` means all 1.
/// - Precondition: equal lengths, distinct in-range axes, non-zero steps (the ONNX operator
///   validates these and throws first).
public func sliceRanges(shape: [Int], starts: [Int], ends: [Int], axes: [Int]? = nil, steps: [Int]? = nil) -> [SliceRange] {
    let rank = shape.count
    let axes = axes ?? Array(0..<starts.count)
    let steps = steps ?? [Int](repeating: 1, count: starts.count)
    precondition(starts.count == ends.count && axes.count == starts.count && steps.count == starts.count,
                 "slice bounds of different lengths")
    var ranges = shape.map { SliceRange.all($0) }
    var seen = Set<Int>()
    for i in 0..<axes.count {
        let ax = axes[i] < 0 ? axes[i] + rank : axes[i]
        precondition(ax >= 0 && ax < rank && seen.insert(ax).inserted, "bad slice axis \(axes[i])")
        let n = shape[ax], step = steps[i]
        precondition(step != 0, "slice step 0")
        var start = starts[i], end = ends[i]
        if start < 0 { start += n }
        if end == Int(Int32.max) || end == Int(Int64.max) {
            end = step < 0 ? -1 : n     // ONNX Runtime: INT_MAX means "to the end" in either direction
        } else if end < 0 {
            end += n
        }
        let count: Int
        if step > 0 {
            start = min(max(start, 0), n)
            end = min(max(end, 0), n)
            count = end > start ? (end - start + step - 1) / step : 0
        } else {
            start = min(max(start, 0), n - 1)
            end = min(max(end, -1), n - 1)
            count = start > end ? (start - end - step - 1) / (-step) : 0
        }
        ranges[ax] = SliceRange(start: count > 0 ? start : 0, step: step, count: count)
    }
    return ranges
}

extension Tensor {
    /// The sub-tensor selected by one ``SliceRange`` per dim (ONNX `Slice` once bounds are
    /// resolved with ``sliceRanges(shape:starts:ends:axes:steps:)``). Copies the elements.
    /// - Precondition: one in-bounds range per dim.
    public func sliced(_ ranges: [SliceRange]) -> Tensor {
        precondition(ranges.count == rank, "\(ranges.count) slice ranges for rank \(rank)")
        let strides = contiguousStrides(shape)
        var offset = 0
        for d in 0..<rank where ranges[d].count > 0 {
            let r = ranges[d]
            precondition(r.start >= 0 && r.start < shape[d] && r.start + (r.count - 1) * r.step >= 0
                         && r.start + (r.count - 1) * r.step < shape[d], "slice range \(r) outside dim \(d) of \(shape)")
            offset += r.start * strides[d]
        }
        return gatheredStrided(shape: ranges.map(\.count), offset: offset,
                               strides: (0..<rank).map { ranges[$0].step * strides[$0] })
    }

    /// The sub-tensor `starts..<ends` (with `steps`) along `axes`, with ONNX `Slice` semantics
    /// (see ``sliceRanges(shape:starts:ends:axes:steps:)``).
    public func sliced(starts: [Int], ends: [Int], axes: [Int]? = nil, steps: [Int]? = nil) -> Tensor {
        sliced(sliceRanges(shape: shape, starts: starts, ends: ends, axes: axes, steps: steps))
    }
}

/// Pullback of ``Tensor/sliced(_:)``: the output gradient scattered into zeros of `inputShape`.
public func slicePullback(_ gradient: Tensor, inputShape: [Int], ranges: [SliceRange]) -> Tensor {
    precondition(gradient.shape == ranges.map(\.count), "gradient shape \(gradient.shape) does not match the slice")
    let out = Tensor(zeros: inputShape, dtype: gradient.dtype)
    if gradient.count == 0 { return out }
    let strides = contiguousStrides(inputShape)
    var offset = 0
    for d in 0..<inputShape.count { offset += ranges[d].start * strides[d] }
    withExtendedLifetime(gradient) {
        stridedCopy(shape: gradient.shape, elementSize: gradient.dtype.byteSize,
                    src: UnsafeRawPointer(gradient.storage.pointer), srcOffset: 0,
                    srcStrides: contiguousStrides(gradient.shape),
                    dst: out.storage.pointer, dstOffset: offset,
                    dstStrides: (0..<inputShape.count).map { ranges[$0].step * strides[$0] })
    }
    return out
}

// MARK: - Gather

/// Elements below which a gather is not worth splitting across threads.
private let gatherGrain = 1 << 15

private func gatherTyped<T>(_ src: UnsafePointer<T>, _ dst: UnsafeMutablePointer<T>, _ idx: UnsafePointer<Int64>,
                            outer: Int, n: Int, m: Int, inner: Int) {
    let s = UncheckedSendable(src), d = UncheckedSendable(dst), ix = UncheckedSendable(idx)
    parallelFor(outer * m, minimumChunk: max(1, gatherGrain / max(1, inner))) { range in
        for item in range {
            let o = item / m, j = item % m
            var i = Int(ix.value[j])
            if i < 0 { i += n }
            let sp = s.value + (o * n + i) * inner
            let dp = d.value + item * inner
            if inner == 1 { dp.pointee = sp.pointee } else { dp.update(from: sp, count: inner) }
        }
    }
}

extension Tensor {
    /// The entries of `self` along `axis` picked by `indices` (ONNX `Gather`, NumPy `take`).
    ///
    /// The output shape is `shape[..<axis] + indices.shape + shape[(axis+1)...]`; a scalar index
    /// drops the axis. Negative indices count from the end.
    /// - Parameters:
    ///   - indices: an Int64 tensor of indices in `-n..<n` where `n = shape[axis]`.
    ///   - axis: the axis to index; negative counts from the end.
    /// - Precondition: indices in range (the ONNX operator checks and throws first).
    public func gathered(indices: Tensor, alongAxis axis: Int) -> Tensor {
        precondition(indices.dtype == .int64, "gather indices must be Int64")
        let ax = axis < 0 ? axis + rank : axis
        precondition(ax >= 0 && ax < rank, "axis \(axis) out of range for rank \(rank)")
        let n = shape[ax]
        let outShape = Array(shape[..<ax]) + indices.shape + Array(shape[(ax + 1)...])
        let out = Tensor(uninitializedShape: outShape, dtype: dtype)
        let outer = shape[..<ax].reduce(1, *), inner = shape[(ax + 1)...].reduce(1, *)
        let m = indices.count
        if out.count == 0 { return out }
        indices.withUnsafeInt64BufferPointer { ib in
            for v in ib { precondition(v >= -Int64(n) && v < Int64(n), "gather index \(v) outside 0..<\(n)") }
            let idx = ib.baseAddress!
            withExtendedLifetime(self) {
                let src = UnsafeRawPointer(storage.pointer), dst = out.storage.pointer
                switch dtype.byteSize {
                case 1: gatherTyped(src.assumingMemoryBound(to: UInt8.self), dst.assumingMemoryBound(to: UInt8.self), idx,
                                    outer: outer, n: n, m: m, inner: inner)
                case 4: gatherTyped(src.assumingMemoryBound(to: UInt32.self), dst.assumingMemoryBound(to: UInt32.self), idx,
                                    outer: outer, n: n, m: m, inner: inner)
                default: gatherTyped(src.assumingMemoryBound(to: UInt64.self), dst.assumingMemoryBound(to: UInt64.self), idx,
                                     outer: outer, n: n, m: m, inner: inner)
                }
            }
        }
        return out
    }
}

/// Pullback of ``Tensor/gathered(indices:alongAxis:)``: the output gradient scatter-added into
/// zeros of `inputShape` (repeated indices accumulate).
public func gatherPullback(_ gradient: Tensor, indices: Tensor, alongAxis axis: Int, inputShape: [Int]) -> Tensor {
    let rank = inputShape.count
    let ax = axis < 0 ? axis + rank : axis
    let n = inputShape[ax]
    let outer = inputShape[..<ax].reduce(1, *), inner = inputShape[(ax + 1)...].reduce(1, *)
    let m = indices.count
    var out = Tensor(zeros: inputShape)
    if gradient.count == 0 { return out }
    gradient.withUnsafeBufferPointer { gb in
        indices.withUnsafeInt64BufferPointer { ib in
            out.withUnsafeMutableBufferPointer { ob in
                let g = UncheckedSendable(gb.baseAddress!), ix = UncheckedSendable(ib.baseAddress!)
                let o = UncheckedSendable(ob.baseAddress!)
                parallelFor(outer, minimumChunk: max(1, gatherGrain / max(1, m * inner))) { range in
                    for oi in range {
                        for j in 0..<m {
                            var i = Int(ix.value[j])
                            if i < 0 { i += n }
                            let dp = o.value + (oi * n + i) * inner
                            let sp = g.value + (oi * m + j) * inner
                            for k in 0..<inner { dp[k] += sp[k] }
                        }
                    }
                }
            }
        }
    }
    return out
}

// MARK: - ScatterND

/// How ``scatteredND(_:indices:updates:reduction:)`` combines an update with the existing value.
public enum ScatterReduction: String, Sendable {
    /// Overwrite (ONNX `reduction="none"`).
    case none
    /// Add the update.
    case add
    /// Multiply by the update.
    case mul
    /// Keep the larger value.
    case max
    /// Keep the smaller value.
    case min
}

/// The element offsets (into `dataShape`) and the slice length of each index tuple of a ScatterND.
private func scatterOffsets(dataShape: [Int], indices: Tensor) -> (offsets: [Int], sliceCount: Int) {
    let k = indices.shape.last ?? 0
    let tuples = indices.count / max(1, k)
    let strides = contiguousStrides(dataShape)
    let sliceCount = dataShape[k...].reduce(1, *)
    var offsets = [Int](repeating: 0, count: k == 0 ? indices.shape.dropLast().reduce(1, *) : tuples)
    indices.withUnsafeInt64BufferPointer { ib in
        for t in 0..<tuples {
            var off = 0
            for d in 0..<k {
                var i = Int(ib[t * k + d])
                if i < 0 { i += dataShape[d] }
                precondition(i >= 0 && i < dataShape[d], "scatter index \(ib[t * k + d]) outside 0..<\(dataShape[d])")
                off += i * strides[d]
            }
            offsets[t] = off
        }
    }
    return (offsets, sliceCount)
}

private func scatterTyped<T: Comparable & Numeric>(_ out: UnsafeMutablePointer<T>, _ upd: UnsafePointer<T>,
                                                   _ offsets: [Int], _ sliceCount: Int, _ reduction: ScatterReduction) {
    for (t, off) in offsets.enumerated() {
        let dp = out + off, sp = upd + t * sliceCount
        switch reduction {
        case .none: dp.update(from: sp, count: sliceCount)
        case .add: for j in 0..<sliceCount { dp[j] += sp[j] }
        case .mul: for j in 0..<sliceCount { dp[j] *= sp[j] }
        case .max: for j in 0..<sliceCount { dp[j] = Swift.max(dp[j], sp[j]) }
        case .min: for j in 0..<sliceCount { dp[j] = Swift.min(dp[j], sp[j]) }
        }
    }
}

/// A copy of `data` with slices replaced (or combined) by `updates` at `indices` (ONNX `ScatterND`).
///
/// `indices` has shape `[..., k]`: each k-tuple addresses a slice `data[i0, ..., ik-1, ...]`;
/// `updates` has shape `indices.shape.dropLast() + data.shape[k...]`. Updates are applied in
/// order, so with `.none` a repeated index keeps the last update.
/// - Precondition: Int64 indices in range; matching dtypes; Bool data only with `.none`.
public func scatteredND(_ data: Tensor, indices: Tensor, updates: Tensor, reduction: ScatterReduction = .none) -> Tensor {
    precondition(indices.dtype == .int64 && updates.dtype == data.dtype, "scatterND dtypes")
    let (offsets, sliceCount) = scatterOffsets(dataShape: data.shape, indices: indices)
    precondition(updates.count == offsets.count * sliceCount, "scatterND updates shape \(updates.shape)")
    var out = data
    out.makeUnique()
    if sliceCount == 0 || offsets.isEmpty { return out }
    switch data.dtype {
    case .float32:
        updates.withUnsafeBufferPointer { u in
            out.withUnsafeMutableBufferPointer { o in scatterTyped(o.baseAddress!, u.baseAddress!, offsets, sliceCount, reduction) }
        }
    case .int64:
        updates.withUnsafeInt64BufferPointer { u in
            out.withUnsafeMutableInt64BufferPointer { o in scatterTyped(o.baseAddress!, u.baseAddress!, offsets, sliceCount, reduction) }
        }
    case .bool:
        precondition(reduction == .none, "Bool ScatterND supports only reduction none")
        updates.withUnsafeBoolBufferPointer { u in
            out.withUnsafeMutableBoolBufferPointer { o in scatterTyped(o.baseAddress!, u.baseAddress!, offsets, sliceCount, .none) }
        }
    }
    return out
}

/// Pullback of ``scatteredND(_:indices:updates:reduction:)`` for `.none` and `.add`.
///
/// The data gradient is the output gradient, with the overwritten slices zeroed for `.none`;
/// the updates' gradient gathers the output gradient at the indices.
/// - Precondition: `reduction` is `.none` or `.add`.
public func scatterNDPullback(_ gradient: Tensor, indices: Tensor, updatesShape: [Int],
                              reduction: ScatterReduction = .none) -> (data: Tensor, updates: Tensor) {
    precondition(reduction == .none || reduction == .add, "no pullback for ScatterND reduction \(reduction)")
    let (offsets, sliceCount) = scatterOffsets(dataShape: gradient.shape, indices: indices)
    var dData = gradient
    var dUpdates = Tensor(zeros: updatesShape)
    if sliceCount == 0 || offsets.isEmpty { return (dData, dUpdates) }
    gradient.withUnsafeBufferPointer { g in
        dUpdates.withUnsafeMutableBufferPointer { u in
            for (t, off) in offsets.enumerated() {
                (u.baseAddress! + t * sliceCount).update(from: g.baseAddress! + off, count: sliceCount)
            }
        }
    }
    if reduction == .none {
        dData.withUnsafeMutableBufferPointer { d in
            for off in offsets { (d.baseAddress! + off).update(repeating: 0, count: sliceCount) }
        }
    }
    return (dData, dUpdates)
}
