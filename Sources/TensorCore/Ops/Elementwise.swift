import Foundation

// Elementwise arithmetic, comparison, selection and unary math, with NumPy-style broadcasting
// (see Broadcasting.swift). Float32 carries the compute; Int64 is supported where ONNX shape
// arithmetic needs it (Add, Sub, Mul, Div, Pow, Mod, Max, Min, Sum, Equal, Where, Abs, Neg).
// Integer arithmetic wraps on overflow (like ONNX Runtime's C++ arithmetic) and never traps.
// Each op's pullback (vector-Jacobian product) follows its forward.

// MARK: - Binary arithmetic

/// `a + b` elementwise with broadcasting (Float32 or Int64; both operands of one dtype).
/// - Precondition: same dtype, broadcastable shapes.
public func add(_ a: Tensor, _ b: Tensor) -> Tensor {
    precondition(a.dtype == b.dtype, "add of \(a.dtype) and \(b.dtype)")
    switch a.dtype {
    case .float32: return broadcastBinary(a, b, Float.self, Float.self, to: .float32, Float.self) { binaryRun($0, $1, $2, $3, $4, $5) { $0 + $1 } }
    case .int64: return broadcastBinary(a, b, Int64.self, Int64.self, to: .int64, Int64.self) { binaryRun($0, $1, $2, $3, $4, $5) { $0 &+ $1 } }
    case .bool: preconditionFailure("add of bool tensors")
    }
}

/// The gradients of `add(a, b)`: the output gradient summed back to each operand's shape.
/// - Parameters:
///   - grad: the gradient with respect to the (broadcast) sum.
///   - aShape, bShape: the operands' shapes.
/// - Returns: the gradients with respect to `a` and `b`.
public func addPullback(_ grad: Tensor, aShape: [Int], bShape: [Int]) -> (a: Tensor, b: Tensor) {
    (grad.summed(toShape: aShape), grad.summed(toShape: bShape))
}

/// `a − b` elementwise with broadcasting (Float32 or Int64).
/// - Precondition: same dtype, broadcastable shapes.
public func subtract(_ a: Tensor, _ b: Tensor) -> Tensor {
    precondition(a.dtype == b.dtype, "subtract of \(a.dtype) and \(b.dtype)")
    switch a.dtype {
    case .float32: return broadcastBinary(a, b, Float.self, Float.self, to: .float32, Float.self) { binaryRun($0, $1, $2, $3, $4, $5) { $0 - $1 } }
    case .int64: return broadcastBinary(a, b, Int64.self, Int64.self, to: .int64, Int64.self) { binaryRun($0, $1, $2, $3, $4, $5) { $0 &- $1 } }
    case .bool: preconditionFailure("subtract of bool tensors")
    }
}

/// The gradients of `subtract(a, b)`: `grad` and `−grad`, each summed to its operand's shape.
public func subtractPullback(_ grad: Tensor, aShape: [Int], bShape: [Int]) -> (a: Tensor, b: Tensor) {
    (grad.summed(toShape: aShape), negative(grad.summed(toShape: bShape)))
}

/// `a · b` elementwise with broadcasting (Float32 or Int64).
/// - Precondition: same dtype, broadcastable shapes.
public func multiply(_ a: Tensor, _ b: Tensor) -> Tensor {
    precondition(a.dtype == b.dtype, "multiply of \(a.dtype) and \(b.dtype)")
    switch a.dtype {
    case .float32: return broadcastBinary(a, b, Float.self, Float.self, to: .float32, Float.self) { binaryRun($0, $1, $2, $3, $4, $5) { $0 * $1 } }
    case .int64: return broadcastBinary(a, b, Int64.self, Int64.self, to: .int64, Int64.self) { binaryRun($0, $1, $2, $3, $4, $5) { $0 &* $1 } }
    case .bool: preconditionFailure("multiply of bool tensors")
    }
}

/// The gradients of `multiply(a, b)`: `grad · b` and `grad · a`, summed to the operands' shapes.
/// - Parameters:
///   - computingA, computingB: whether each gradient is wanted (`nil` is returned otherwise).
public func multiplyPullback(_ grad: Tensor, _ a: Tensor, _ b: Tensor,
                             computingA: Bool = true, computingB: Bool = true) -> (a: Tensor?, b: Tensor?) {
    let ga = computingA ? multiply(grad, b).summed(toShape: a.shape) : nil
    let gb = computingB ? multiply(grad, a).summed(toShape: b.shape) : nil
    return (ga, gb)
}

/// `a / b` elementwise with broadcasting. Float32 follows IEEE 754; Int64 truncates toward zero
/// (C++ `/`, as ONNX Runtime does). Integer division by zero gives 0 instead of trapping.
/// - Precondition: same dtype, broadcastable shapes.
public func divide(_ a: Tensor, _ b: Tensor) -> Tensor {
    precondition(a.dtype == b.dtype, "divide of \(a.dtype) and \(b.dtype)")
    switch a.dtype {
    case .float32: return broadcastBinary(a, b, Float.self, Float.self, to: .float32, Float.self) { binaryRun($0, $1, $2, $3, $4, $5) { $0 / $1 } }
    case .int64: return broadcastBinary(a, b, Int64.self, Int64.self, to: .int64, Int64.self) { binaryRun($0, $1, $2, $3, $4, $5) { truncatingDivide($0, $1) } }
    case .bool: preconditionFailure("divide of bool tensors")
    }
}

/// Int64 division truncating toward zero; 0 for a zero divisor; wraps for `Int64.min / −1`.
@inline(__always)
func truncatingDivide(_ a: Int64, _ b: Int64) -> Int64 {
    b == 0 ? 0 : a.dividedReportingOverflow(by: b).partialValue
}

/// The gradients of `divide(a, b)` for Float32: `grad / b` and `−grad · a / b²`, summed to the
/// operands' shapes.
/// - Parameters:
///   - computingA, computingB: whether each gradient is wanted (`nil` is returned otherwise).
public func dividePullback(_ grad: Tensor, _ a: Tensor, _ b: Tensor,
                           computingA: Bool = true, computingB: Bool = true) -> (a: Tensor?, b: Tensor?) {
    let ga = computingA ? divide(grad, b).summed(toShape: a.shape) : nil
    var gb: Tensor? = nil
    if computingB {
        // −g·a/b² computed as −(g/b)·(a/b) to avoid overflowing b².
        let gOverB = divide(grad, b), aOverB = divide(a, b)
        gb = broadcastBinary(gOverB, aOverB, Float.self, Float.self, to: .float32, Float.self) { binaryRun($0, $1, $2, $3, $4, $5) { -($0 * $1) } }
            .summed(toShape: b.shape)
    }
    return (ga, gb)
}

/// `a ^ b` elementwise with broadcasting (ONNX `Pow`): the result has `a`'s dtype.
///
/// Float32 bases use `powf` (an Int64 exponent is converted to Float); Int64 bases with an Int64
/// exponent use exact integer powers (wrapping on overflow; a negative exponent gives the
/// truncated real result: 0, or ±1 for bases ±1); Int64 bases with a Float32 exponent truncate
/// `pow(Double(a), Double(b))`.
/// - Precondition: `a` is Float32 or Int64, `b` Float32 or Int64, broadcastable shapes.
public func pow(_ a: Tensor, _ b: Tensor) -> Tensor {
    switch (a.dtype, b.dtype) {
    case (.float32, .float32):
        if b.count == 1 {
            // Common exponents (x², √x, x³ in decomposed normalisations / GELU) without powf.
            let e = b.elementPointer(Float.self).pointee
            let shape = broadcastShape(a.shape, b.shape) ?? a.shape
            let base = a.shape == shape ? a : a.broadcasted(toShape: shape)
            switch e {
            case 1: return base
            case 2: return mapElements(base, Float.self, to: .float32, Float.self) { mapLoop($0, $1, $2) { $0 * $0 } }
            case 3: return mapElements(base, Float.self, to: .float32, Float.self) { mapLoop($0, $1, $2) { $0 * $0 * $0 } }
            case 0.5: return mapElements(base, Float.self, to: .float32, Float.self) { mapLoop($0, $1, $2) { $0.squareRoot() } }
            default: break
            }
        }
        return broadcastBinary(a, b, Float.self, Float.self, to: .float32, Float.self,
                               minimumChunk: transcendentalMinimumChunk) { binaryRun($0, $1, $2, $3, $4, $5) { Foundation.pow($0, $1) } }
    case (.float32, .int64):
        return pow(a, cast(b, to: .float32))
    case (.int64, .int64):
        return broadcastBinary(a, b, Int64.self, Int64.self, to: .int64, Int64.self) { binaryRun($0, $1, $2, $3, $4, $5) { integerPower($0, $1) } }
    case (.int64, .float32):
        return broadcastBinary(a, b, Int64.self, Float.self, to: .int64, Int64.self) { binaryRun($0, $1, $2, $3, $4, $5) {
            saturatingInt64(Foundation.pow(Double($0), Double($1)))
        } }
    default:
        preconditionFailure("pow of \(a.dtype) and \(b.dtype)")
    }
}

/// `base ^ exponent` for integers by repeated squaring (wrapping on overflow).
@inline(__always)
func integerPower(_ base: Int64, _ exponent: Int64) -> Int64 {
    if exponent < 0 {
        if base == 1 { return 1 }
        if base == -1 { return exponent & 1 == 0 ? 1 : -1 }
        return 0
    }
    var result: Int64 = 1, b = base, e = exponent
    while e > 0 {
        if e & 1 == 1 { result = result &* b }
        b = b &* b
        e >>= 1
    }
    return result
}

/// The gradients of Float32 `pow(a, b)`: `grad · b · a^(b−1)` and `grad · a^b · ln a` (taken as 0
/// where `a ≤ 0`, where the real logarithm does not exist), summed to the operands' shapes.
/// - Parameters:
///   - result: the forward output `a^b`.
///   - computingA, computingB: whether each gradient is wanted (`nil` is returned otherwise).
public func powPullback(_ grad: Tensor, _ a: Tensor, _ b: Tensor, result: Tensor,
                        computingA: Bool = true, computingB: Bool = true) -> (a: Tensor?, b: Tensor?) {
    var ga: Tensor? = nil, gb: Tensor? = nil
    if computingA {
        let d = broadcastBinary(a, b, Float.self, Float.self, to: .float32, Float.self,
                                minimumChunk: transcendentalMinimumChunk) { binaryRun($0, $1, $2, $3, $4, $5) { x, e in
            e == 0 ? 0 : (e == 1 ? 1 : (e == 2 ? 2 * x : e * Foundation.pow(x, e - 1)))
        } }
        ga = multiply(grad, d).summed(toShape: a.shape)
    }
    if computingB {
        let lnA = mapElements(a, Float.self, to: .float32, Float.self,
                              minimumChunk: transcendentalMinimumChunk) { mapLoop($0, $1, $2) { $0 > 0 ? Foundation.log($0) : 0 } }
        gb = multiply(multiply(grad, result), lnA).summed(toShape: b.shape)
    }
    return (ga, gb)
}

/// The remainder of `a / b` elementwise with broadcasting (ONNX `Mod`).
///
/// With `fmod == false` (integers only) the result takes the sign of the divisor, like Python's
/// `%`; with `fmod == true` it takes the sign of the dividend, like C's `fmod` (the only mode
/// ONNX allows for floats). A zero integer divisor gives 0 instead of trapping.
/// - Precondition: same dtype; Float32 requires `fmod`.
public func mod(_ a: Tensor, _ b: Tensor, fmod: Bool) -> Tensor {
    precondition(a.dtype == b.dtype, "mod of \(a.dtype) and \(b.dtype)")
    switch a.dtype {
    case .float32:
        precondition(fmod, "Float32 mod requires fmod semantics")
        return broadcastBinary(a, b, Float.self, Float.self, to: .float32, Float.self) { binaryRun($0, $1, $2, $3, $4, $5) {
            $0.truncatingRemainder(dividingBy: $1)
        } }
    case .int64:
        if fmod {
            return broadcastBinary(a, b, Int64.self, Int64.self, to: .int64, Int64.self) { binaryRun($0, $1, $2, $3, $4, $5) {
                $1 == 0 ? 0 : $0.remainderReportingOverflow(dividingBy: $1).partialValue
            } }
        }
        return broadcastBinary(a, b, Int64.self, Int64.self, to: .int64, Int64.self) { binaryRun($0, $1, $2, $3, $4, $5) { x, y in
            if y == 0 { return 0 }
            let r = x.remainderReportingOverflow(dividingBy: y).partialValue
            return (r < 0 && y > 0) || (r > 0 && y < 0) ? r &+ y : r
        } }
    case .bool:
        preconditionFailure("mod of bool tensors")
    }
}

/// The gradients of Float32 `mod(a, b, fmod: true)`: `grad` and `−grad · trunc(a / b)`, summed to
/// the operands' shapes (the remainder is piecewise `a − trunc(a/b)·b`).
/// - Parameters:
///   - computingA, computingB: whether each gradient is wanted (`nil` is returned otherwise).
public func modPullback(_ grad: Tensor, _ a: Tensor, _ b: Tensor,
                        computingA: Bool = true, computingB: Bool = true) -> (a: Tensor?, b: Tensor?) {
    let ga = computingA ? grad.summed(toShape: a.shape) : nil
    var gb: Tensor? = nil
    if computingB {
        let q = broadcastBinary(a, b, Float.self, Float.self, to: .float32, Float.self) { binaryRun($0, $1, $2, $3, $4, $5) { ($0 / $1).rounded(.towardZero) } }
        gb = broadcastBinary(grad, q, Float.self, Float.self, to: .float32, Float.self) { binaryRun($0, $1, $2, $3, $4, $5) { -($0 * $1) } }
            .summed(toShape: b.shape)
    }
    return (ga, gb)
}

// Deliberately no `+ - * /` operator overloads on Tensor: extra overloads of these operators make
// Swift's type checker time out on unrelated integer expressions elsewhere in client code.

// MARK: - Extrema and variadic reductions across tensors

/// The elementwise maximum of `a` and `b` with broadcasting (Float32 or Int64). A NaN operand
/// gives NaN.
/// - Precondition: same dtype, broadcastable shapes.
public func maximum(_ a: Tensor, _ b: Tensor) -> Tensor {
    precondition(a.dtype == b.dtype, "maximum of \(a.dtype) and \(b.dtype)")
    switch a.dtype {
    case .float32: return broadcastBinary(a, b, Float.self, Float.self, to: .float32, Float.self) { binaryRun($0, $1, $2, $3, $4, $5) { ($0 > $1 || $0.isNaN) ? $0 : $1 } }
    case .int64: return broadcastBinary(a, b, Int64.self, Int64.self, to: .int64, Int64.self) { binaryRun($0, $1, $2, $3, $4, $5) { $0 > $1 ? $0 : $1 } }
    case .bool: preconditionFailure("maximum of bool tensors")
    }
}

/// The elementwise minimum of `a` and `b` with broadcasting (Float32 or Int64). A NaN operand
/// gives NaN.
/// - Precondition: same dtype, broadcastable shapes.
public func minimum(_ a: Tensor, _ b: Tensor) -> Tensor {
    precondition(a.dtype == b.dtype, "minimum of \(a.dtype) and \(b.dtype)")
    switch a.dtype {
    case .float32: return broadcastBinary(a, b, Float.self, Float.self, to: .float32, Float.self) { binaryRun($0, $1, $2, $3, $4, $5) { ($0 < $1 || $0.isNaN) ? $0 : $1 } }
    case .int64: return broadcastBinary(a, b, Int64.self, Int64.self, to: .int64, Int64.self) { binaryRun($0, $1, $2, $3, $4, $5) { $0 < $1 ? $0 : $1 } }
    case .bool: preconditionFailure("minimum of bool tensors")
    }
}

/// The elementwise maximum of all `tensors`, broadcast together (ONNX `Max`).
/// - Precondition: at least one tensor; same dtype; broadcastable shapes.
public func elementwiseMax(_ tensors: [Tensor]) -> Tensor {
    precondition(!tensors.isEmpty, "elementwiseMax of no tensors")
    return foldBroadcast(tensors, maximum)
}

/// The elementwise minimum of all `tensors`, broadcast together (ONNX `Min`).
/// - Precondition: at least one tensor; same dtype; broadcastable shapes.
public func elementwiseMin(_ tensors: [Tensor]) -> Tensor {
    precondition(!tensors.isEmpty, "elementwiseMin of no tensors")
    return foldBroadcast(tensors, minimum)
}

/// The elementwise sum of all `tensors`, broadcast together (ONNX `Sum`; Float32 or Int64).
/// - Precondition: at least one tensor; same dtype; broadcastable shapes.
public func elementwiseSum(_ tensors: [Tensor]) -> Tensor {
    precondition(!tensors.isEmpty, "elementwiseSum of no tensors")
    return foldBroadcast(tensors, add)
}

/// The elementwise mean of all Float32 `tensors`, broadcast together (ONNX `Mean`).
/// - Precondition: at least one Float32 tensor; broadcastable shapes.
public func elementwiseMean(_ tensors: [Tensor]) -> Tensor {
    precondition(!tensors.isEmpty, "elementwiseMean of no tensors")
    precondition(tensors.allSatisfy { $0.dtype == .float32 }, "elementwiseMean of non-float tensors")
    let s = foldBroadcast(tensors, add)
    if tensors.count == 1 { return s }
    let scale = 1 / Float(tensors.count)
    return mapElements(s, Float.self, to: .float32, Float.self) { mapLoop($0, $1, $2) { $0 * scale } }
}

/// Folds `op` over `tensors`; a single tensor is broadcast to nothing and returned as is.
private func foldBroadcast(_ tensors: [Tensor], _ op: (Tensor, Tensor) -> Tensor) -> Tensor {
    var result = tensors[0]
    for t in tensors.dropFirst() { result = op(result, t) }
    return result
}

/// The gradients of `elementwiseSum(inputs)`: the output gradient summed to each input's shape.
public func elementwiseSumPullback(_ grad: Tensor, inputShapes: [[Int]]) -> [Tensor] {
    inputShapes.map { grad.summed(toShape: $0) }
}

/// The gradients of `elementwiseMean(inputs)`: the output gradient divided by the number of
/// inputs and summed to each input's shape.
public func elementwiseMeanPullback(_ grad: Tensor, inputShapes: [[Int]]) -> [Tensor] {
    let scale = 1 / Float(max(inputShapes.count, 1))
    let g = mapElements(grad, Float.self, to: .float32, Float.self) { mapLoop($0, $1, $2) { $0 * scale } }
    return inputShapes.map { g.summed(toShape: $0) }
}

/// The gradients of `elementwiseMax(inputs)` or `elementwiseMin(inputs)` (also `maximum`,
/// `minimum`): each output element's gradient goes to the inputs equal to the result there,
/// split evenly between ties (PyTorch's convention for `maximum`), then summed to each input's
/// shape.
/// - Parameters:
///   - inputs: the Float32 forward inputs.
///   - result: the forward output.
///   - needed: which gradients to compute (`nil` for the others); defaults to all.
public func elementwiseExtremumPullback(_ grad: Tensor, inputs: [Tensor], result: Tensor,
                                        needed: [Bool]? = nil) -> [Tensor?] {
    // Count the inputs attaining the extremum at each output position.
    var ties = Tensor(zeros: result.shape)
    for x in inputs {
        let hit = broadcastBinary(x, result, Float.self, Float.self, to: .float32, Float.self) { binaryRun($0, $1, $2, $3, $4, $5) { $0 == $1 ? 1 : 0 } }
        ties = add(ties, hit)
    }
    let share = zipElements(grad, ties, Float.self, Float.self, to: .float32, Float.self) { zipLoop($0, $1, $2, $3) { $1 > 0 ? $0 / $1 : 0 } }
    return inputs.enumerated().map { i, x in
        if let needed, i < needed.count, !needed[i] { return nil }
        let expanded = x.shape == result.shape ? x : x.broadcasted(toShape: result.shape)
        return broadcastTernary(expanded, result, share, Float.self, Float.self, Float.self, to: .float32, Float.self) { ternaryRun($0, $1, $2, $3, $4, $5, $6, $7) {
            $0 == $1 ? $2 : 0
        } }.summed(toShape: x.shape)
    }
}

// MARK: - Comparison, logic, selection

/// Elementwise `a == b` with broadcasting, as a Bool tensor (ONNX `Equal`; Float32, Int64 or
/// Bool operands of one dtype). Float comparison is IEEE: NaN is unequal to everything.
/// - Precondition: same dtype, broadcastable shapes.
public func equal(_ a: Tensor, _ b: Tensor) -> Tensor {
    precondition(a.dtype == b.dtype, "equal of \(a.dtype) and \(b.dtype)")
    switch a.dtype {
    case .float32: return broadcastBinary(a, b, Float.self, Float.self, to: .bool, UInt8.self) { binaryRun($0, $1, $2, $3, $4, $5) { $0 == $1 ? 1 : 0 } }
    case .int64: return broadcastBinary(a, b, Int64.self, Int64.self, to: .bool, UInt8.self) { binaryRun($0, $1, $2, $3, $4, $5) { $0 == $1 ? 1 : 0 } }
    case .bool: return broadcastBinary(a, b, UInt8.self, UInt8.self, to: .bool, UInt8.self) { binaryRun($0, $1, $2, $3, $4, $5) { $0 == $1 ? 1 : 0 } }
    }
}

/// Elementwise logical negation of a Bool tensor (ONNX `Not`).
/// - Precondition: `x.dtype == .bool`.
public func logicalNot(_ x: Tensor) -> Tensor {
    precondition(x.dtype == .bool, "logicalNot of a \(x.dtype) tensor")
    return mapElements(x, UInt8.self, to: .bool, UInt8.self) { mapLoop($0, $1, $2) { $0 == 0 ? 1 : 0 } }
}

/// Picks `x` where `condition` is true and `y` elsewhere, all three broadcast together
/// (ONNX `Where`). `x` and `y` share a dtype (any), which the result has.
/// - Precondition: `condition` is Bool; `x.dtype == y.dtype`; broadcastable shapes.
public func select(_ condition: Tensor, _ x: Tensor, _ y: Tensor) -> Tensor {
    precondition(condition.dtype == .bool, "select condition of dtype \(condition.dtype)")
    precondition(x.dtype == y.dtype, "select between \(x.dtype) and \(y.dtype)")
    switch x.dtype {
    case .float32:
        return broadcastTernary(condition, x, y, UInt8.self, Float.self, Float.self, to: .float32, Float.self) { ternaryRun($0, $1, $2, $3, $4, $5, $6, $7) { $0 != 0 ? $1 : $2 } }
    case .int64:
        return broadcastTernary(condition, x, y, UInt8.self, Int64.self, Int64.self, to: .int64, Int64.self) { ternaryRun($0, $1, $2, $3, $4, $5, $6, $7) { $0 != 0 ? $1 : $2 } }
    case .bool:
        return broadcastTernary(condition, x, y, UInt8.self, UInt8.self, UInt8.self, to: .bool, UInt8.self) { ternaryRun($0, $1, $2, $3, $4, $5, $6, $7) { $0 != 0 ? $1 : $2 } }
    }
}

/// The gradients of Float32 `select(condition, x, y)`: the output gradient where the condition
/// holds (for `x`) or not (for `y`), summed to each operand's shape.
/// - Parameters:
///   - computingX, computingY: whether each gradient is wanted (`nil` is returned otherwise).
public func selectPullback(_ grad: Tensor, condition: Tensor, xShape: [Int], yShape: [Int],
                           computingX: Bool = true, computingY: Bool = true) -> (x: Tensor?, y: Tensor?) {
    let gx = computingX ? broadcastBinary(condition, grad, UInt8.self, Float.self, to: .float32, Float.self) { binaryRun($0, $1, $2, $3, $4, $5) {
        $0 != 0 ? $1 : 0
    } }.summed(toShape: xShape) : nil
    let gy = computingY ? broadcastBinary(condition, grad, UInt8.self, Float.self, to: .float32, Float.self) { binaryRun($0, $1, $2, $3, $4, $5) {
        $0 != 0 ? 0 : $1
    } }.summed(toShape: yShape) : nil
    return (gx, gy)
}

// MARK: - Unary math

/// `−x` elementwise (Float32 or Int64, wrapping for `Int64.min`). Its pullback is `negative(grad)`.
/// - Precondition: `x` is Float32 or Int64.
public func negative(_ x: Tensor) -> Tensor {
    switch x.dtype {
    case .float32: return mapElements(x, Float.self, to: .float32, Float.self) { mapLoop($0, $1, $2) { -$0 } }
    case .int64: return mapElements(x, Int64.self, to: .int64, Int64.self) { mapLoop($0, $1, $2) { 0 &- $0 } }
    case .bool: preconditionFailure("negative of a bool tensor")
    }
}

/// `|x|` elementwise (Float32 or Int64, wrapping for `Int64.min`).
/// - Precondition: `x` is Float32 or Int64.
public func abs(_ x: Tensor) -> Tensor {
    switch x.dtype {
    case .float32: return mapElements(x, Float.self, to: .float32, Float.self) { mapLoop($0, $1, $2) { Swift.abs($0) } }
    case .int64: return mapElements(x, Int64.self, to: .int64, Int64.self) { mapLoop($0, $1, $2) { $0 < 0 ? 0 &- $0 : $0 } }
    case .bool: preconditionFailure("abs of a bool tensor")
    }
}

/// The gradient of `abs(x)`: `grad · sign(x)`, with `sign(0) = 0` (PyTorch's convention).
public func absPullback(_ grad: Tensor, input x: Tensor) -> Tensor {
    zipElements(grad, x, Float.self, Float.self, to: .float32, Float.self) { zipLoop($0, $1, $2, $3) { g, v in
        v > 0 ? g : (v < 0 ? -g : 0)
    } }
}

/// `√x` elementwise (Float32; NaN for negative inputs).
public func sqrt(_ x: Tensor) -> Tensor {
    mapElements(x, Float.self, to: .float32, Float.self) { mapLoop($0, $1, $2) { $0.squareRoot() } }
}

/// The gradient of `sqrt(x)`: `grad / (2·√x)`, from the forward result.
public func sqrtPullback(_ grad: Tensor, result: Tensor) -> Tensor {
    zipElements(grad, result, Float.self, Float.self, to: .float32, Float.self) { zipLoop($0, $1, $2, $3) { g, y in g / (2 * y) } }
}

/// `eˣ` elementwise (Float32).
public func exp(_ x: Tensor) -> Tensor {
    mapElements(x, Float.self, to: .float32, Float.self, minimumChunk: transcendentalMinimumChunk) { mapLoop($0, $1, $2) { Foundation.exp($0) } }
}

/// The gradient of `exp(x)`: `grad · eˣ`, from the forward result.
public func expPullback(_ grad: Tensor, result: Tensor) -> Tensor {
    zipElements(grad, result, Float.self, Float.self, to: .float32, Float.self) { zipLoop($0, $1, $2, $3) { $0 * $1 } }
}

/// The natural logarithm elementwise (Float32; −∞ at 0, NaN below).
public func log(_ x: Tensor) -> Tensor {
    mapElements(x, Float.self, to: .float32, Float.self, minimumChunk: transcendentalMinimumChunk) { mapLoop($0, $1, $2) { Foundation.log($0) } }
}

/// The gradient of `log(x)`: `grad / x`.
public func logPullback(_ grad: Tensor, input x: Tensor) -> Tensor {
    zipElements(grad, x, Float.self, Float.self, to: .float32, Float.self) { zipLoop($0, $1, $2, $3) { $0 / $1 } }
}

/// The error function `erf(x) = 2/√π ∫₀ˣ e^(−t²) dt` elementwise (Float32, the C library's
/// `erff`, accurate to about 1 ulp).
public func erf(_ x: Tensor) -> Tensor {
    mapElements(x, Float.self, to: .float32, Float.self, minimumChunk: transcendentalMinimumChunk) { mapLoop($0, $1, $2) { Foundation.erf($0) } }
}

/// The gradient of `erf(x)`: `grad · 2/√π · e^(−x²)`.
public func erfPullback(_ grad: Tensor, input x: Tensor) -> Tensor {
    let c: Float = 1.1283791670955126  // 2/√π
    return zipElements(grad, x, Float.self, Float.self, to: .float32, Float.self,
                       minimumChunk: transcendentalMinimumChunk) { zipLoop($0, $1, $2, $3) { g, v in g * c * Foundation.exp(-v * v) } }
}

// MARK: - Casting

/// The elements converted to `dtype` without ever trapping (ONNX `Cast` between float32, int64
/// and bool).
///
/// Float → Int64 truncates toward zero; NaN, ±∞ and values outside the Int64 range give
/// `Int64.min` (what x86's conversion, and so ONNX Runtime, produces). Anything → Bool is
/// `value != 0` (NaN is true). Bool → number is 0 or 1.
public func cast(_ x: Tensor, to dtype: DType) -> Tensor {
    if x.dtype == dtype { return x }
    switch (x.dtype, dtype) {
    case (.float32, .int64): return mapElements(x, Float.self, to: .int64, Int64.self) { mapLoop($0, $1, $2) { saturatingInt64(Double($0)) } }
    case (.float32, .bool): return mapElements(x, Float.self, to: .bool, UInt8.self) { mapLoop($0, $1, $2) { $0 != 0 ? 1 : 0 } }
    case (.int64, .float32): return mapElements(x, Int64.self, to: .float32, Float.self) { mapLoop($0, $1, $2) { Float($0) } }
    case (.int64, .bool): return mapElements(x, Int64.self, to: .bool, UInt8.self) { mapLoop($0, $1, $2) { $0 != 0 ? 1 : 0 } }
    case (.bool, .float32): return mapElements(x, UInt8.self, to: .float32, Float.self) { mapLoop($0, $1, $2) { $0 != 0 ? 1 : 0 } }
    case (.bool, .int64): return mapElements(x, UInt8.self, to: .int64, Int64.self) { mapLoop($0, $1, $2) { $0 != 0 ? 1 : 0 } }
    default: return x
    }
}

/// `Int64(v)` truncated toward zero, or `Int64.min` for NaN, ±∞ and out-of-range values.
@inline(__always)
func saturatingInt64(_ v: Double) -> Int64 {
    // 2^63 is exactly representable; every Double in [−2^63, 2^63) converts without trapping.
    (v.isNaN || v >= 9_223_372_036_854_775_808.0 || v < -9_223_372_036_854_775_808.0) ? Int64.min : Int64(v)
}

// MARK: - Accumulation

/// `total += x` in place (same shapes, Float32), split over the worker threads: the gradient
/// accumulation of reverse passes. When `total`'s storage is shared it is copied first.
/// - Precondition: same shape, Float32.
public func accumulate(_ x: Tensor, into total: inout Tensor) {
    precondition(total.shape == x.shape && total.dtype == .float32 && x.dtype == .float32,
                 "accumulate: \(x.shape) (\(x.dtype)) into \(total.shape) (\(total.dtype))")
    total.withUnsafeMutableBufferPointer { t in
        x.withUnsafeBufferPointer { g in
            guard let tp = t.baseAddress, let gp = g.baseAddress else { return }
            parallelFor(t.count, minimumChunk: 1 << 16) { range in
                for i in range { tp[i] += gp[i] }
            }
        }
    }
}
