// Padding (ONNX `Pad`, https://onnx.ai/onnx/operators/onnx__Pad.html): constant, reflect and edge
// modes, negative pads crop. Also the "gather through one index map per axis" engine that
// nearest-neighbour resizing (Resize.swift) shares.

// MARK: - Per-axis index-map engine (internal)

/// Copies `dst[i0, ..., ik] = src[maps[0][i0], ..., maps[k][ik]]` for every output multi-index,
/// writing `fill` where any map entry is −1. `dst` has shape `maps.map(\.count)`.
func gatherByAxisMaps<T>(_ src: UnsafePointer<T>, inShape: [Int], maps: [[Int]], fill: T, _ dst: UnsafeMutablePointer<T>) {
    let rank = inShape.count
    if rank == 0 { dst.pointee = src.pointee; return }
    let outShape = maps.map(\.count)
    if outShape.contains(0) { return }
    let inStrides = contiguousStrides(inShape)
    let last = maps[rank - 1], m = last.count
    let rows = outShape.dropLast().reduce(1, *)
    // Runs of the last map that read consecutive source elements (or all fill) copy as blocks.
    var segments: [(dst: Int, src: Int, len: Int)] = []
    for j in 0..<m {
        if let s = segments.last, s.dst + s.len == j,
           (s.src < 0 && last[j] < 0) || (s.src >= 0 && last[j] == s.src + s.len) {
            segments[segments.count - 1].len += 1
        } else {
            segments.append((j, last[j], 1))
        }
    }
    let useSegments = segments.count * 4 <= m
    let s = UncheckedSendable(src), d = UncheckedSendable(dst)
    parallelFor(rows, minimumChunk: max(1, (1 << 15) / m)) { range in
        var idx = [Int](repeating: 0, count: rank - 1)
        var r = range.lowerBound
        for k in stride(from: rank - 2, through: 0, by: -1) {
            idx[k] = r % outShape[k]
            r /= outShape[k]
        }
        last.withUnsafeBufferPointer { lastMap in
            for row in range {
                var base = 0
                var isFill = false
                for k in 0..<(rank - 1) {
                    let v = maps[k][idx[k]]
                    if v < 0 { isFill = true; break }
                    base += v * inStrides[k]
                }
                let dp = d.value + row * m
                if isFill {
                    dp.update(repeating: fill, count: m)
                } else if useSegments {
                    let sp = s.value + base
                    for seg in segments {
                        if seg.src < 0 {
                            (dp + seg.dst).update(repeating: fill, count: seg.len)
                        } else {
                            (dp + seg.dst).update(from: sp + seg.src, count: seg.len)
                        }
                    }
                } else {
                    let sp = s.value + base
                    for j in 0..<m {
                        let v = lastMap[j]
                        dp[j] = v < 0 ? fill : sp[v]
                    }
                }
                var k = rank - 2
                while k >= 0 {
                    idx[k] += 1
                    if idx[k] < outShape[k] { break }
                    idx[k] = 0
                    k -= 1
                }
            }
        }
    }
}

/// The adjoint of ``gatherByAxisMaps(_:inShape:maps:fill:_:)`` for Float32:
/// `dst[maps[0][i0], ...] += src[i0, ...]`, skipping −1 entries. `dst` (shape `inShape`) must
/// be zeroed (or hold values to add to) by the caller.
func scatterAddByAxisMaps(_ src: UnsafePointer<Float>, inShape: [Int], maps: [[Int]], _ dst: UnsafeMutablePointer<Float>) {
    let rank = inShape.count
    if rank == 0 { dst.pointee += src.pointee; return }
    let outShape = maps.map(\.count)
    if outShape.contains(0) { return }
    let inStrides = contiguousStrides(inShape)
    let last = maps[rank - 1], m = last.count
    // Leading axes whose maps are the identity write disjoint slices: split them across threads.
    var lead = 0
    while lead < rank - 1, maps[lead] == Array(0..<inShape[lead]) { lead += 1 }
    let leadCount = outShape[..<lead].reduce(1, *)
    let restShape = Array(outShape[lead..<(rank - 1)])
    let restRows = restShape.reduce(1, *)
    let s = UncheckedSendable(src), d = UncheckedSendable(dst)
    parallelFor(leadCount, minimumChunk: max(1, (1 << 15) / max(1, restRows * m))) { range in
        last.withUnsafeBufferPointer { lastMap in
            for l in range {
                var leadBase = 0
                var rem = l
                for k in stride(from: lead - 1, through: 0, by: -1) {
                    leadBase += (rem % outShape[k]) * inStrides[k]
                    rem /= outShape[k]
                }
                var idx = [Int](repeating: 0, count: restShape.count)
                for r in 0..<restRows {
                    var base = leadBase
                    var skip = false
                    for k in 0..<restShape.count {
                        let v = maps[lead + k][idx[k]]
                        if v < 0 { skip = true; break }
                        base += v * inStrides[lead + k]
                    }
                    if !skip {
                        let sp = s.value + (l * restRows + r) * m
                        let dp = d.value + base
                        for j in 0..<m {
                            let v = lastMap[j]
                            if v >= 0 { dp[v] += sp[j] }
                        }
                    }
                    var k = restShape.count - 1
                    while k >= 0 {
                        idx[k] += 1
                        if idx[k] < restShape[k] { break }
                        idx[k] = 0
                        k -= 1
                    }
                }
            }
        }
    }
}

extension Tensor {
    /// A new tensor of shape `maps.map(\.count)` gathered through one index map per axis,
    /// with `fill` (converted to the dtype) where a map entry is −1.
    func gatheredByAxisMaps(_ maps: [[Int]], fill: Double = 0) -> Tensor {
        let out = Tensor(uninitializedShape: maps.map(\.count), dtype: dtype)
        withExtendedLifetime(self) {
            let src = UnsafeRawPointer(storage.pointer), dst = out.storage.pointer
            switch dtype {
            case .float32:
                gatherByAxisMaps(src.assumingMemoryBound(to: UInt32.self), inShape: shape, maps: maps,
                                 fill: Float(fill).bitPattern, dst.assumingMemoryBound(to: UInt32.self))
            case .int64:
                let v = fill.isFinite ? Int64(exactly: fill.rounded(.towardZero)) ?? (fill < 0 ? .min : .max) : 0
                gatherByAxisMaps(src.assumingMemoryBound(to: UInt64.self), inShape: shape, maps: maps,
                                 fill: UInt64(bitPattern: v), dst.assumingMemoryBound(to: UInt64.self))
            case .bool:
                gatherByAxisMaps(src.assumingMemoryBound(to: UInt8.self), inShape: shape, maps: maps,
                                 fill: fill != 0 ? 1 : 0, dst.assumingMemoryBound(to: UInt8.self))
            }
        }
        return out
    }
}

// MARK: - Pad

/// How ``padded(_:before:after:mode:)`` fills the new border.
public enum PaddingMode: Sendable, Equatable {
    /// A constant value (converted to the tensor's dtype: truncated for Int64, non-zero is `true`
    /// for Bool). Double holds every Int64 pad value up to 2⁵³ exactly.
    case constant(Double)
    /// Mirror without repeating the edge element (NumPy `reflect`): `[a b c]` → `c b | a b c | b a`.
    case reflect
    /// Repeat the edge element (NumPy `edge`, PyTorch `replicate`).
    case edge
}

/// The source index of each output index along one axis of extent `n` padded by `before`/`after`
/// (negative values crop); −1 marks constant fill.
func padIndexMap(n: Int, before: Int, after: Int, mode: PaddingMode) -> [Int] {
    let m = n + before + after
    precondition(m >= 0, "padding \(before), \(after) crops more than the extent \(n)")
    return (0..<m).map { i in
        let src = i - before
        if src >= 0 && src < n { return src }
        switch mode {
        case .constant: return -1
        case .edge:
            precondition(n > 0, "edge padding of an empty axis")
            return min(max(src, 0), n - 1)
        case .reflect:
            precondition(n > 0, "reflect padding of an empty axis")
            if n == 1 { return 0 }
            let period = 2 * (n - 1)
            var r = src % period
            if r < 0 { r += period }
            return r >= n ? period - r : r
        }
    }
}

/// The tensor padded by `before[d]` elements before and `after[d]` after each dim `d`
/// (ONNX `Pad`; negative amounts crop). Works for Float32, Int64 and Bool tensors.
///
/// Reflect padding wider than the extent keeps reflecting (NumPy's behaviour).
/// - Precondition: one amount per dim on each side; no dim becomes negative; reflect/edge need a
///   non-empty dim where they pad.
public func padded(_ x: Tensor, before: [Int], after: [Int], mode: PaddingMode = .constant(0)) -> Tensor {
    precondition(before.count == x.rank && after.count == x.rank, "pads \(before), \(after) for rank \(x.rank)")
    if before.allSatisfy({ $0 == 0 }) && after.allSatisfy({ $0 == 0 }) { return x }
    let maps = (0..<x.rank).map { padIndexMap(n: x.shape[$0], before: before[$0], after: after[$0], mode: mode) }
    if case .constant(let v) = mode { return x.gatheredByAxisMaps(maps, fill: v) }
    return x.gatheredByAxisMaps(maps)
}

/// Pullback of ``padded(_:before:after:mode:)`` for Float32: crops the output gradient back to
/// `inputShape` (constant mode), adding the border's gradient onto the elements it copied
/// (reflect and edge modes). Where the forward cropped, the gradient is zero.
public func padPullback(_ gradient: Tensor, inputShape: [Int], before: [Int], after: [Int], mode: PaddingMode) -> Tensor {
    if case .constant = mode {
        return padded(gradient, before: before.map { -$0 }, after: after.map { -$0 }, mode: .constant(0))
    }
    let maps = (0..<inputShape.count).map { padIndexMap(n: inputShape[$0], before: before[$0], after: after[$0], mode: mode) }
    precondition(gradient.shape == maps.map(\.count), "gradient shape \(gradient.shape) does not match the padding")
    var out = Tensor(zeros: inputShape)
    gradient.withUnsafeBufferPointer { g in
        out.withUnsafeMutableBufferPointer { o in
            guard let gp = g.baseAddress, let op = o.baseAddress else { return }
            scatterAddByAxisMaps(gp, inShape: inputShape, maps: maps, op)
        }
    }
    return out
}
