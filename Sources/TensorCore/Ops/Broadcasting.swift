// NumPy-style multidirectional broadcasting, as specified by "Broadcasting in ONNX"
// (https://onnx.ai/onnx/repo-docs/Broadcasting.html): shapes are aligned on their trailing
// dimensions, missing leading dimensions count as 1, and two extents are compatible when they are
// equal or one of them is 1.
//
// Every broadcasting kernel of CAMKit goes through ``BroadcastLayout``: it drops the extents of 1,
// merges neighbouring dimensions in which each operand is either fully present or fully broadcast,
// and so reduces the common cases to tight loops over a contiguous inner dimension:
// same shape → one dimension; a scalar operand → one dimension with stride 0; a per-channel
// `(1, C, 1, 1)` operand against `(N, C, H, W)` → `(N, C, H·W)` with an inner scalar per row.

/// The shape that broadcasting `a` and `b` against each other produces, or `nil` when the shapes
/// are incompatible (an extent pair that differs and has no 1).
///
/// A zero extent broadcasts like any other extent: `(0)` with `(1)` gives `(0)`, `(0)` with `(3)` is
/// incompatible.
public func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int]? {
    let rank = max(a.count, b.count)
    var result = [Int](repeating: 1, count: rank)
    for i in 0..<rank {
        let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
        let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
        if da == db || db == 1 {
            result[i] = da
        } else if da == 1 {
            result[i] = db
        } else {
            return nil
        }
    }
    return result
}

/// The shape that broadcasting all of `shapes` together produces, or `nil` when they are
/// incompatible. An empty list gives the scalar shape `[]`.
public func broadcastShape(_ shapes: [[Int]]) -> [Int]? {
    var result: [Int] = []
    for s in shapes {
        guard let r = broadcastShape(result, s) else { return nil }
        result = r
    }
    return result
}

/// Whether `shape` broadcasts to exactly `target` (unidirectional broadcasting, as `Expand` and
/// gradient reduction need).
public func isBroadcastable(_ shape: [Int], to target: [Int]) -> Bool {
    guard shape.count <= target.count else { return false }
    let offset = target.count - shape.count
    for i in 0..<shape.count where shape[i] != target[i + offset] && shape[i] != 1 { return false }
    return true
}

/// Up to three operands broadcast against one output, with the dimensions collapsed.
///
/// `dims` are the merged output extents (at least one; the last is the contiguous inner
/// dimension); `strides[k][d]` is operand `k`'s element stride along merged dimension `d`
/// (0 where the operand is broadcast). Inner strides are therefore 0 or 1.
struct BroadcastLayout {
    /// The number of output elements.
    let count: Int
    /// Merged extents, outermost first; never empty.
    let dims: [Int]
    /// Per operand, the stride of each merged dimension (0 when broadcast).
    let strides: [[Int]]

    /// The contiguous inner extent.
    var inner: Int { dims[dims.count - 1] }

    /// Collapses `operandShapes` (each broadcastable to `outShape`).
    init(outShape: [Int], operandShapes: [[Int]]) {
        let rank = outShape.count
        let n = operandShapes.count
        count = outShape.reduce(1, *)
        // Aligned extents of each operand.
        let aligned: [[Int]] = operandShapes.map { s in
            precondition(isBroadcastable(s, to: outShape), "shape \(s) does not broadcast to \(outShape)")
            return [Int](repeating: 1, count: rank - s.count) + s
        }
        var mergedDims: [Int] = []
        var mergedFlags: [[Bool]] = []  // per merged dim, per operand: present (not broadcast)
        for d in 0..<rank where outShape[d] != 1 {
            let flags = (0..<n).map { aligned[$0][d] != 1 }
            if let last = mergedFlags.last, last == flags {
                mergedDims[mergedDims.count - 1] *= outShape[d]
            } else {
                mergedDims.append(outShape[d])
                mergedFlags.append(flags)
            }
        }
        if mergedDims.isEmpty {
            mergedDims = [1]
            mergedFlags = [[Bool](repeating: true, count: n)]
        }
        var strides = [[Int]](repeating: [Int](repeating: 0, count: mergedDims.count), count: n)
        for k in 0..<n {
            var s = 1
            for d in stride(from: mergedDims.count - 1, through: 0, by: -1) where mergedFlags[d][k] {
                strides[k][d] = s
                s *= mergedDims[d]
            }
        }
        self.dims = mergedDims
        self.strides = strides
    }

    /// Calls `body(outOffset, offset0, offset1, offset2, length)` for each run of consecutive
    /// output elements in `range` that lies within one inner row. Operand offsets of missing
    /// operands are 0.
    @inline(__always)
    func forEachSegment(in range: Range<Int>, _ body: (Int, Int, Int, Int, Int) -> Void) {
        guard !range.isEmpty else { return }
        let inner = self.inner
        let outer = dims.count - 1
        let s0 = strides.count > 0 ? strides[0] : [Int](repeating: 0, count: dims.count)
        let s1 = strides.count > 1 ? strides[1] : [Int](repeating: 0, count: dims.count)
        let s2 = strides.count > 2 ? strides[2] : [Int](repeating: 0, count: dims.count)
        let i0 = s0[outer], i1 = s1[outer], i2 = s2[outer]
        var row = range.lowerBound / inner
        var col = range.lowerBound - row * inner
        // Odometer over the outer dimensions, and each operand's row base offset.
        var index = [Int](repeating: 0, count: max(outer, 1))
        var b0 = 0, b1 = 0, b2 = 0
        var r = row
        for d in stride(from: outer - 1, through: 0, by: -1) {
            let q = r / dims[d]
            let i = r - q * dims[d]
            index[d] = i
            b0 += i * s0[d]; b1 += i * s1[d]; b2 += i * s2[d]
            r = q
        }
        var pos = range.lowerBound
        let end = range.upperBound
        while pos < end {
            let len = min(inner - col, end - pos)
            body(pos, b0 + col * i0, b1 + col * i1, b2 + col * i2, len)
            pos += len
            col = 0
            row += 1
            if pos >= end { break }
            // Advance the odometer by one row.
            var d = outer - 1
            while d >= 0 {
                index[d] += 1
                b0 += s0[d]; b1 += s1[d]; b2 += s2[d]
                if index[d] < dims[d] { break }
                b0 -= dims[d] * s0[d]; b1 -= dims[d] * s1[d]; b2 -= dims[d] * s2[d]
                index[d] = 0
                d -= 1
            }
        }
    }
}

/// Work below this many elements per thread is not worth a thread hop for memory-bound kernels.
let elementwiseMinimumChunk = 1 << 15
/// The same for kernels that call a transcendental function per element.
let transcendentalMinimumChunk = 1 << 12

extension Tensor {
    /// The raw element pointer (internal: kernels of this module read tensors without closures).
    @inline(__always)
    func elementPointer<T>(_: T.Type) -> UnsafePointer<T> {
        UnsafePointer(storage.pointer.assumingMemoryBound(to: T.self))
    }

    /// The raw element pointer for writing (internal: only on freshly created, unique tensors).
    @inline(__always)
    func mutableElementPointer<T>(_: T.Type) -> UnsafeMutablePointer<T> {
        storage.pointer.assumingMemoryBound(to: T.self)
    }

    /// This tensor repeated along broadcast dimensions to `shape` (ONNX `Expand` semantics with an
    /// exact target shape).
    /// - Precondition: `isBroadcastable(self.shape, to: shape)`.
    public func broadcasted(toShape shape: [Int]) -> Tensor {
        precondition(isBroadcastable(self.shape, to: shape), "cannot broadcast \(self.shape) to \(shape)")
        if self.shape == shape { return self }
        let out = Tensor(uninitializedShape: shape, dtype: dtype)
        let layout = BroadcastLayout(outShape: shape, operandShapes: [self.shape])
        let size = dtype.byteSize
        let src = UnsafeRawPointer(storage.pointer)
        let dst = out.storage.pointer
        parallelFor(layout.count, minimumChunk: elementwiseMinimumChunk) { range in
            layout.forEachSegment(in: range) { o, x, _, _, n in
                if layout.strides[0][layout.dims.count - 1] == 1 {
                    (dst + o * size).copyMemory(from: src + x * size, byteCount: n * size)
                } else {
                    for j in 0..<n { (dst + (o + j) * size).copyMemory(from: src + x * size, byteCount: size) }
                }
            }
        }
        return out
    }

    /// Sums a gradient of a broadcast result back to the shape of one operand: every dimension
    /// along which the operand was broadcast (missing or of extent 1 in `shape`) is summed over.
    ///
    /// This is the reduction every binary op's pullback ends with. Float32 only; per-thread partial
    /// sums are combined at the end, so the result does not depend on the thread count beyond
    /// Float rounding of the final combination.
    /// - Precondition: `isBroadcastable(shape, to: self.shape)` and `dtype == .float32`.
    public func summed(toShape shape: [Int]) -> Tensor {
        precondition(dtype == .float32, "summed(toShape:) of a \(dtype) tensor")
        precondition(isBroadcastable(shape, to: self.shape), "cannot sum \(self.shape) to \(shape)")
        if shape == self.shape { return self }
        let targetCount = shape.reduce(1, *)
        if targetCount == count { return reshaped(to: shape) }
        var out = Tensor(zeros: shape)
        if count == 0 { return out }
        let src = elementPointer(Float.self)
        if targetCount == 1 {
            let total = sumAll(src, count)
            out.withUnsafeMutableBufferPointer { $0[0] = total }
            return out
        }
        // Layout of the target as a broadcast operand of self.
        let layout = BroadcastLayout(outShape: self.shape, operandShapes: [shape])
        let inner = layout.inner
        let innerStride = layout.strides[0][layout.dims.count - 1]
        let rows = layout.count / inner
        let threads = min(ComputeSettings.threadCount, max(1, layout.count / elementwiseMinimumChunk), rows)
        let partials = UnsafeMutablePointer<Float>.allocate(capacity: threads * targetCount)
        partials.initialize(repeating: 0, count: threads * targetCount)
        defer { partials.deallocate() }
        parallelFor(threads, minimumChunk: 1) { chunkRange in
            for chunk in chunkRange {
                let dst = partials + chunk * targetCount
                let start = rows * chunk / threads * inner, end = rows * (chunk + 1) / threads * inner
                layout.forEachSegment(in: start..<end) { o, t, _, _, n in
                    if innerStride == 0 {
                        dst[t] += sumAll(src + o, n)
                    } else {
                        let d = dst + t, s = src + o
                        for j in 0..<n { d[j] += s[j] }
                    }
                }
            }
        }
        out.withUnsafeMutableBufferPointer { o in
            guard let base = o.baseAddress else { return }
            for chunk in 0..<threads {
                let p = partials + chunk * targetCount
                for j in 0..<targetCount { base[j] += p[j] }
            }
        }
        return out
    }
}

/// The sum of `n` contiguous floats, with 16 independent accumulators (vectorisable, and more
/// accurate than one running sum); large counts are split across threads.
func sumAll(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
    if n >= 4 * elementwiseMinimumChunk && ComputeSettings.threadCount > 1 {
        let threads = min(ComputeSettings.threadCount, n / elementwiseMinimumChunk)
        let partials = UnsafeMutablePointer<Double>.allocate(capacity: threads)
        partials.initialize(repeating: 0, count: threads)
        defer { partials.deallocate() }
        parallelFor(threads, minimumChunk: 1) { r in
            for c in r {
                let s = n * c / threads, e = n * (c + 1) / threads
                partials[c] = Double(sumContiguous(p + s, e - s))
            }
        }
        var total = 0.0
        for c in 0..<threads { total += partials[c] }
        return Float(total)
    }
    return sumContiguous(p, n)
}

/// Single-threaded blocked sum of `n` contiguous floats.
@inline(__always)
private func sumContiguous(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = SIMD16<Float>(repeating: 0)
    var i = 0
    let raw = UnsafeRawPointer(p)
    // Blocks of 4096 accumulated in Float, combined in Double to bound the error growth.
    var total = 0.0
    while i + 16 <= n {
        let blockEnd = min(n - 15, i + 4096)
        while i < blockEnd {
            acc += raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            i += 16
        }
        total += Double(acc.sum())
        acc = SIMD16<Float>(repeating: 0)
    }
    var tail: Float = 0
    while i < n { tail += p[i]; i += 1 }
    return Float(total + Double(tail))
}
