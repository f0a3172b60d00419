// The drivers every elementwise op of this family shares: a unary map, a zip of two same-shaped
// tensors, a broadcasting binary map and a broadcasting ternary map. Each splits the work over the
// threads and calls a per-chunk loop that the call site writes (`{ mapLoop($0, $1, $2) { f } }`),
// so that every op's loop is its own function with the element function inlined and vectorised.

/// Applies a per-element function to every element of `x` (read as `A`), writing a new tensor of
/// dtype `output`. `chunk(source, destination, count)` processes one contiguous chunk; call sites
/// write it as `{ mapLoop($0, $1, $2) { element function } }`.
///
/// Why the loop is written at the call site: the closure handed to the worker threads is compiled
/// once per closure literal. Were the loop inside this shared engine, every op of one element type
/// would share it and call its element function through a pointer per element (10× slower than
/// the vectorised loop); written at each call site, the loop and the element function are one
/// function, which LLVM vectorises.
@inline(__always)
func mapElements<A, R>(_ x: Tensor, _: A.Type, to output: DType, _: R.Type,
                       minimumChunk: Int = elementwiseMinimumChunk,
                       _ chunk: (UnsafePointer<A>, UnsafeMutablePointer<R>, Int) -> Void) -> Tensor {
    let out = Tensor(uninitializedShape: x.shape, dtype: output)
    let n = out.count
    guard n > 0 else { return out }
    let src = x.elementPointer(A.self)
    let dst = out.mutableElementPointer(R.self)
    parallelFor(n, minimumChunk: minimumChunk) { r in
        chunk(src + r.lowerBound, dst + r.lowerBound, r.count)
    }
    return out
}

/// The loop of one ``mapElements(_:_:to:_:minimumChunk:_:)`` chunk: `d[i] = f(s[i])`.
@inline(__always)
func mapLoop<A, R>(_ s: UnsafePointer<A>, _ d: UnsafeMutablePointer<R>, _ n: Int, _ f: (A) -> R) {
    for i in 0..<n { d[i] = f(s[i]) }
}

/// Applies a function to corresponding elements of two tensors of the same shape (the result has
/// `x`'s shape). Used by pullbacks, whose operands always match. Call sites write the chunk as
/// `{ zipLoop($0, $1, $2, $3) { element function } }` (see ``mapElements(_:_:to:_:minimumChunk:_:)``).
@inline(__always)
func zipElements<A, B, R>(_ x: Tensor, _ y: Tensor, _: A.Type, _: B.Type, to output: DType, _: R.Type,
                          minimumChunk: Int = elementwiseMinimumChunk,
                          _ chunk: (UnsafePointer<A>, UnsafePointer<B>, UnsafeMutablePointer<R>, Int) -> Void) -> Tensor {
    precondition(x.count == y.count, "element counts differ: \(x.shape) and \(y.shape)")
    let out = Tensor(uninitializedShape: x.shape, dtype: output)
    let n = out.count
    guard n > 0 else { return out }
    let pa = x.elementPointer(A.self), pb = y.elementPointer(B.self)
    let dst = out.mutableElementPointer(R.self)
    parallelFor(n, minimumChunk: minimumChunk) { r in
        chunk(pa + r.lowerBound, pb + r.lowerBound, dst + r.lowerBound, r.count)
    }
    return out
}

/// The loop of one ``zipElements(_:_:_:_:to:_:minimumChunk:_:)`` chunk: `d[i] = f(a[i], b[i])`.
@inline(__always)
func zipLoop<A, B, R>(_ a: UnsafePointer<A>, _ b: UnsafePointer<B>, _ d: UnsafeMutablePointer<R>, _ n: Int,
                      _ f: (A, B) -> R) {
    for i in 0..<n { d[i] = f(a[i], b[i]) }
}

/// One run of a broadcast binary op (the chunk loop call sites of
/// ``broadcastBinary(_:_:_:_:to:_:minimumChunk:_:)`` write as
/// `{ binaryRun($0, $1, $2, $3, $4, $5) { element function } }`): `sa`/`sb` are 1 for a
/// contiguous operand, 0 for a repeated one.
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

/// Broadcasts `a` (read as `A`) against `b` (read as `B`) and applies an element function; `run(a,
/// strideA, b, strideB, out, count)` processes one run (see ``binaryRun(_:_:_:_:_:_:_:)``).
/// - Precondition: the shapes broadcast.
@inline(__always)
func broadcastBinary<A, B, R>(_ a: Tensor, _ b: Tensor, _: A.Type, _: B.Type, to output: DType, _: R.Type,
                              minimumChunk: Int = elementwiseMinimumChunk,
                              _ run: (UnsafePointer<A>, Int, UnsafePointer<B>, Int, UnsafeMutablePointer<R>, Int) -> Void) -> Tensor {
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
            run(pa + r.lowerBound, 1, pb + r.lowerBound, 1, po + r.lowerBound, r.count)
        }
    } else if cb == 1 && ca == count {
        parallelFor(count, minimumChunk: minimumChunk) { r in
            run(pa + r.lowerBound, 1, pb, 0, po + r.lowerBound, r.count)
        }
    } else if ca == 1 && cb == count {
        parallelFor(count, minimumChunk: minimumChunk) { r in
            run(pa, 0, pb + r.lowerBound, 1, po + r.lowerBound, r.count)
        }
    } else {
        let layout = BroadcastLayout(outShape: shape, operandShapes: [a.shape, b.shape])
        let last = layout.dims.count - 1
        let ia = layout.strides[0][last], ib = layout.strides[1][last]
        parallelFor(count, minimumChunk: minimumChunk) { r in
            layout.forEachSegment(in: r) { o, x, y, _, n in
                run(pa + x, ia, pb + y, ib, po + o, n)
            }
        }
    }
    return out
}

/// Broadcasts three tensors together and applies an element function (`Where`); `run(a, ia, b, ib,
/// c, ic, out, count)` processes one run (see ``ternaryRun(_:_:_:_:_:_:_:_:_:)``).
/// - Precondition: the shapes broadcast.
@inline(__always)
func broadcastTernary<A, B, C, R>(
    _ a: Tensor, _ b: Tensor, _ c: Tensor, _: A.Type, _: B.Type, _: C.Type, to output: DType, _: R.Type,
    _ run: (UnsafePointer<A>, Int, UnsafePointer<B>, Int, UnsafePointer<C>, Int, UnsafeMutablePointer<R>, Int) -> Void
) -> Tensor {
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
            run(pa + x, ia, pb + y, ib, pc + z, ic, po + o, n)
        }
    }
    return out
}

/// One run of ``broadcastTernary(_:_:_:_:_:_:to:_:_:)``: `d[i] = f(a[i·ia], b[i·ib], c[i·ic])`.
@inline(__always)
func ternaryRun<A, B, C, R>(_ a: UnsafePointer<A>, _ ia: Int, _ b: UnsafePointer<B>, _ ib: Int,
                            _ c: UnsafePointer<C>, _ ic: Int, _ d: UnsafeMutablePointer<R>, _ n: Int,
                            _ f: (A, B, C) -> R) {
    if ia == 1 && ib == 1 && ic == 1 {
        for i in 0..<n { d[i] = f(a[i], b[i], c[i]) }
    } else {
        for i in 0..<n { d[i] = f(a[i * ia], b[i * ib], c[i * ic]) }
    }
}
