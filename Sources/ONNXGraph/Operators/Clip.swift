import TensorCore

// Clip — https://onnx.ai/onnx/operators/onnx__Clip.html
// Opsets 6 (bounds as attributes `min`/`max`), 11 (bounds as optional scalar inputs 1 and 2),
// 12 (integer types), 13. CAMKit: 11–21, and the attribute form for older exports.
// Types: float32, int64. An omitted bound is open.

/// ONNX `Clip`.
struct ClipOperator: DifferentiableOperator {
    /// Bounds given as attributes (opset < 11); `nil` when absent.
    let attributeMin: Float?
    let attributeMax: Float?
    /// Whether the bounds come from inputs 1 and 2 (opset ≥ 11).
    let boundsAreInputs: Bool

    init(node: Node, opset: Int) throws {
        boundsAreInputs = opset >= 11
        if boundsAreInputs {
            attributeMin = nil
            attributeMax = nil
        } else {
            attributeMin = node.attributes["min"] == nil ? nil : try node.float("min", default: 0)
            attributeMax = node.attributes["max"] == nil ? nil : try node.float("max", default: 0)
        }
    }

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        let x = try required(inputs, 0, "input")
        try requireDType(x, [.float32, .int64], "input")
        if boundsAreInputs {
            for (i, name) in [(1, "min"), (2, "max")] where i < inputs.count {
                guard let b = inputs[i] else { continue }
                guard b.dtype == x.dtype else {
                    throw OperatorError("bound '\(name)' has type \(onnxTypeName(b.dtype)) but the input has \(onnxTypeName(x.dtype))")
                }
                guard b.shape.reduce(1, *) == 1 else {
                    throw OperatorError("bound '\(name)' must be a scalar, got shape \(b.shape)")
                }
            }
        }
        return [ValueInfo(shape: x.shape, dtype: x.dtype)]
    }

    /// The bound tensors (inputs) or attribute values as one-element tensors of `x`'s dtype.
    private func bounds(_ inputs: [Tensor?]) -> (min: Tensor?, max: Tensor?) {
        if boundsAreInputs { return (elementwiseInput(inputs, 1), elementwiseInput(inputs, 2)) }
        return (attributeMin.map { Tensor($0) }, attributeMax.map { Tensor($0) })
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try required(inputs, 0, "input")
        let (lo, hi) = bounds(inputs)
        if x.dtype == .int64 {
            // Exact integer bounds (min first, then max, as ONNX Runtime).
            var y = x
            if let lo { y = maximum(y, cast(lo, to: .int64).reshaped(to: [])) }
            if let hi { y = minimum(y, cast(hi, to: .int64).reshaped(to: [])) }
            return [y]
        }
        return [clip(x, min: lo.map { $0.scalar }, max: hi.map { $0.scalar })]
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        guard let g = outputGradient(outputGradients), let x = elementwiseInput(inputs, 0),
              x.dtype == .float32 else { return [Tensor?](repeating: nil, count: max(inputs.count, 1)) }
        let (lo, hi) = bounds(inputs)
        let loValue = lo.map { $0.scalar }, hiValue = hi.map { $0.scalar }
        var result = [Tensor?](repeating: nil, count: max(inputs.count, 1))
        if wantsGradient(needed, inputs, 0) {
            result[0] = clipPullback(g, input: x, min: loValue, max: hiValue)
        }
        // The bounds receive the gradient of the elements they clamp.
        if boundsAreInputs, (wantsGradient(needed, inputs, 1) && lo != nil) || (wantsGradient(needed, inputs, 2) && hi != nil) {
            let sums = clipBoundsPullback(g, input: x, min: loValue, max: hiValue)
            if let lo, wantsGradient(needed, inputs, 1) { result[1] = Tensor(repeating: sums.min, shape: lo.shape) }
            if let hi, wantsGradient(needed, inputs, 2) { result[2] = Tensor(repeating: sums.max, shape: hi.shape) }
        }
        return result
    }
}
