// The loops every elementwise op of this family shares: a unary map, a broadcasting binary map and
// a broadcasting ternary map. Each is generic over the element types and takes the per-element
// function as a closure; under whole-module optimisation they are specialised and the closure is
// inlined, so the inner loops are plain pointer loops that LLVM vectorises.

/// Applies `f` to every element of `x` (read as `A`), writing a new tensor of dtype `output`.
@inline(__always)
func mapElements<A, R>(_ x: Tensor, _: A.Type, to output: DType, _: R.Type,
                       minimumChunk: Int = elementwiseMinimumChunk, _ f: (A) -> R) -> Tensor {
    let out = Tensor(uninitializedShape: x.shape, dtype: output)
    let n = out.count
    guard n > 0 else { return out }
    let src = x.elementPointer(A.self)
    let dst = out.mutableElementPointer(R.self)
    parallelFor(n, minimumChunk: minimumChunk) { r in
        let s = src + r.lowerBound, d = dst + r.lowerBound
        for i in 0..<r.count { d[i] = f(s[i]) }
    }
    return out
}

/// Applies `f` to corresponding elements of two tensors of the same shape (the result has `x`'s
/// shape). Used by pullbacks, whose operands always match.
@inline(__always)
func zipElements<A, B, R>(_ x: Tensor, _ y: Tensor, _: A.Type, _: B.Type, to output: DType, _: R.Type,
                          minimumChunk: Int = elementwiseMinimumChunk, _ f: (A, B) -> R) -> Tensor {
    precondition(x.count == y.count, "element counts differ: \(x.shape) and \(y.shape)")
    let out = Tensor(uninitializedShape: x.shape, dtype: output)
    let n = out.count
    guard n > 0 else { return out }
    let pa = x.elementPointer(A.self), pb = y.elementPointer(B.self)
    let dst = out.mutableElementPointer(R.self)
    parallelFor(n, minimumChunk: minimumChunk) { r in
        let a = pa + r.lowerBound, b = pb + r.lowerBound, d = dst + r.lowerBound
        for i in 0..<r.count { d[i] = f(a[i], b[i]) }
    }
    return out
}

/// One run of a broadcast binary op: `sa`/`sb` are 1 for a contiguous operand, 0 for a repeated one.
@inline(__always)
func binaryRun<A, B, R>(_ a: UnsafePointer<A>, _ sa: Int, _ b: UnsafePointer<B>, _ sb: Int,
                        _ o: UnsafeMutablePointer<R>, _ n: Int, _ f: (A, B) -> R) {
    if sa != 0 && sb != 0 {
        for i in 0..<n { o[i] = f(a[i], b[i]) }
    } else if sa != 0 {
        let y = b.pointee
        for i in 0..<n { o[i] = f(a[i], y) }
    } else if sb != 0 {
        let x = a.pointee
        for i in 0..<n { o[i] = f(x, b[i]) }
    } else {
        let v = f(a.pointee, b.pointee)
        for i in 0..<n { o[i] = v }
    }
}

/// Broadcasts `a` (read as `A`) against `b` (read as `B`) and applies `f` elementwise.
/// - Precondition: the shapes broadcast.
@inline(__always)
func broadcastBinary<A, B, R>(_ a: Tensor, _ b: Tensor, _: A.Type, _: B.Type, to output: DType, _: R.Type,
                              minimumChunk: Int = elementwiseMinimumChunk, _ f: (A, B) -> R) -> Tensor {
    guard let shape = broadcastShape(a.shape, b.shape) else {
        preconditionFailure("shapes \(a.shape) and \(b.shape) do not broadcast")
    }
    let out = Tensor(uninitializedShape: shape, dtype: output)
    let count = out.count
    guard count > 0 else { return out }
    let pa = a.elementPointer(A.self), pb = b.elementPointer(B.self)
    let po = out.mutableElementPointer(R.self)
    let ca = a.count, cb = b.count
    if ca == count && cb == count {
        parallelFor(count, minimumChunk: minimumChunk) { r in
            binaryRun(pa + r.lowerBound, 1, pb + r.lowerBound, 1, po + r.lowerBound, r.count, f)
        }
    } else if cb == 1 && ca == count {
        parallelFor(count, minimumChunk: minimumChunk) { r in
            binaryRun(pa + r.lowerBound, 1, pb, 0, po + r.lowerBound, r.count, f)
        }
    } else if ca == 1 && cb == count {
        parallelFor(count, minimumChunk: minimumChunk) { r in
            binaryRun(pa, 0, pb + r.lowerBound, 1, po + r.lowerBound, r.count, f)
        }
    } else {
        let layout = BroadcastLayout(outShape: shape, operandShapes: [a.shape, b.shape])
        let last = layout.dims.count - 1
        let ia = layout.strides[0][last], ib = layout.strides[1][last]
        parallelFor(count, minimumChunk: minimumChunk) { r in
            layout.forEachSegment(in: r) { o, x, y, _, n in
                binaryRun(pa + x, ia, pb + y, ib, po + o, n, f)
            }
        }
    }
    return out
}

/// Broadcasts three tensors together and applies `f` elementwise (`Where`).
/// - Precondition: the shapes broadcast.
@inline(__always)
func broadcastTernary<A, B, C, R>(_ a: Tensor, _ b: Tensor, _ c: Tensor, _: A.Type, _: B.Type, _: C.Type,
                                  to output: DType, _: R.Type, _ f: (A, B, C) -> R) -> Tensor {
    guard let shape = broadcastShape([a.shape, b.shape, c.shape]) else {
        preconditionFailure("shapes \(a.shape), \(b.shape) and \(c.shape) do not broadcast")
    }
    let out = Tensor(uninitializedShape: shape, dtype: output)
    let count = out.count
    guard count > 0 else { return out }
    let pa = a.elementPointer(A.self), pb = b.elementPointer(B.self), pc = c.elementPointer(C.self)
    let po = out.mutableElementPointer(R.self)
    let layout = BroadcastLayout(outShape: shape, operandShapes: [a.shape, b.shape, c.shape])
    let last = layout.dims.count - 1
    let ia = layout.strides[0][last], ib = layout.strides[1][last], ic = layout.strides[2][last]
    parallelFor(count, minimumChunk: elementwiseMinimumChunk) { r in
        layout.forEachSegment(in: r) { o, x, y, z, n in
            let a = pa + x, b = pb + y, c = pc + z, d = po + o
            if ia == 1 && ib == 1 && ic == 1 {
                for i in 0..<n { d[i] = f(a[i], b[i], c[i]) }
            } else {
                for i in 0..<n { d[i] = f(a[i * ia], b[i * ib], c[i * ic]) }
            }
        }
    }
    return out
}
