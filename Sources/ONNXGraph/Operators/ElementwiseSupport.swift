import TensorCore

// Shared validation for the elementwise operators (Add … Dropout): dtype checks, multidirectional
// broadcasting of input shapes ("Broadcasting in ONNX",
// https://onnx.ai/onnx/repo-docs/Broadcasting.html) and small pullback helpers.

/// The ONNX names of CAMKit's dtypes, for error messages.
func onnxTypeName(_ dtype: DType) -> String {
    switch dtype {
    case .float32: return "tensor(float)"
    case .int64: return "tensor(int64)"
    case .bool: return "tensor(bool)"
    }
}

/// Throws unless `value` has one of the `allowed` dtypes.
func requireDType(_ value: ValueInfo, _ allowed: [DType], _ what: String) throws {
    guard allowed.contains(value.dtype) else {
        let names = allowed.map(onnxTypeName).joined(separator: ", ")
        throw OperatorError("\(what) has type \(onnxTypeName(value.dtype)); CAMKit supports \(names) here")
    }
}

/// The broadcast shape of `values`, or a thrown error listing the incompatible shapes.
func broadcastShapeOrThrow(_ values: [ValueInfo]) throws -> [Int] {
    guard let shape = broadcastShape(values.map(\.shape)) else {
        let list = values.map { "\($0.shape)" }.joined(separator: ", ")
        throw OperatorError("input shapes \(list) are not broadcast-compatible (NumPy rules: trailing extents must be equal or 1)")
    }
    return shape
}

/// Infers a binary op whose two inputs share a dtype from `allowed`; the output has the broadcast
/// shape and `output` dtype (the inputs' dtype when `nil`).
func inferBroadcastBinary(_ inputs: [ValueInfo?], allowed: [DType], output: DType? = nil,
                          names: (String, String) = ("A", "B")) throws -> [ValueInfo] {
    guard inputs.count == 2 else { throw OperatorError("expects 2 inputs, got \(inputs.count)") }
    guard let a = inputs[0] else { throw OperatorError("missing input 0 (\(names.0))") }
    guard let b = inputs[1] else { throw OperatorError("missing input 1 (\(names.1))") }
    try requireDType(a, allowed, "input \(names.0)")
    guard a.dtype == b.dtype else {
        throw OperatorError("inputs \(names.0) and \(names.1) have different types \(onnxTypeName(a.dtype)) and \(onnxTypeName(b.dtype))")
    }
    return [ValueInfo(shape: try broadcastShapeOrThrow([a, b]), dtype: output ?? a.dtype)]
}

/// Infers a unary op: one input of a dtype from `allowed`, one output of the same shape and dtype.
func inferUnary(_ inputs: [ValueInfo?], allowed: [DType] = [.float32], name: String = "X") throws -> [ValueInfo] {
    guard let first = inputs.first, let x = first else { throw OperatorError("missing input 0 (\(name))") }
    try requireDType(x, allowed, "input \(name)")
    return [ValueInfo(shape: x.shape, dtype: x.dtype)]
}

/// Infers a variadic broadcasting op (Max, Min, Sum, Mean): at least one input, all of one dtype.
func inferVariadic(_ inputs: [ValueInfo?], allowed: [DType]) throws -> [ValueInfo] {
    guard !inputs.isEmpty else { throw OperatorError("expects at least one input") }
    var values: [ValueInfo] = []
    for (i, v) in inputs.enumerated() {
        guard let v else { throw OperatorError("missing input \(i)") }
        try requireDType(v, allowed, "input \(i)")
        if let first = values.first, first.dtype != v.dtype {
            throw OperatorError("input \(i) has type \(onnxTypeName(v.dtype)) but input 0 has \(onnxTypeName(first.dtype))")
        }
        values.append(v)
    }
    return [ValueInfo(shape: try broadcastShapeOrThrow(values), dtype: values[0].dtype)]
}

/// All present inputs, or a thrown error naming the first missing one.
func requiredAll(_ inputs: [Tensor?]) throws -> [Tensor] {
    try inputs.enumerated().map { i, t in
        guard let t else { throw OperatorError("missing input \(i)") }
        return t
    }
}

/// The gradient of output `index`, when there is one.
func outputGradient(_ gradients: [Tensor?], _ index: Int = 0) -> Tensor? {
    index < gradients.count ? gradients[index] : nil
}

/// Whether input `index` wants a gradient and is a Float32 tensor.
func wantsGradient(_ needed: [Bool], _ inputs: [Tensor?], _ index: Int) -> Bool {
    index < needed.count && needed[index] && index < inputs.count && inputs[index]?.dtype == .float32
}

/// Input `index` of a forward pass, or `nil` when it is omitted or out of range.
func elementwiseInput(_ inputs: [Tensor?], _ index: Int) -> Tensor? {
    index < inputs.count ? inputs[index] : nil
}
