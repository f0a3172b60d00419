import TensorCore

// Reshape — https://onnx.ai/onnx/operators/onnx__Reshape.html
// Opsets 5, 13, 14 (allowzero), 19, 21 (CAMKit: 11–21). Any dtype; the shape input must be constant.
// A 0 in the requested shape copies the input's extent at that index unless allowzero = 1; one −1
// is inferred from the element count. The data are never copied.

/// ONNX `Reshape`.
struct ReshapeOperator: DifferentiableOperator {
    /// Whether a 0 in the shape means an extent of 0 (opset 14 `allowzero`).
    let allowZero: Bool

    init(node: Node, opset: Int) throws {
        allowZero = try node.int("allowzero", default: 0) != 0
    }

    /// The output shape for `input` given the requested shape.
    static func outputShape(input: [Int], requested: [Int], allowZero: Bool) throws -> [Int] {
        var out = requested
        var inferred: Int?
        for (i, d) in requested.enumerated() {
            if d == -1 {
                guard inferred == nil else { throw OperatorError("shape \(requested) has more than one -1") }
                inferred = i
            } else if d == 0 && !allowZero {
                guard i < input.count else {
                    throw OperatorError("shape \(requested) copies dim \(i) (a 0) but the input \(input) has rank \(input.count)")
                }
                out[i] = input[i]
            } else if d < -1 {
                throw OperatorError("shape \(requested) has a negative extent \(d)")
            }
        }
        if allowZero && inferred != nil && requested.contains(0) {
            throw OperatorError("shape \(requested) has both -1 and 0 with allowzero = 1")
        }
        let total = input.reduce(1, *)
        if let i = inferred {
            let known = out.enumerated().filter { $0.offset != i }.reduce(1) { $0 * $1.element }
            guard known != 0, total % known == 0 else {
                throw OperatorError("cannot reshape \(input) (\(total) elements) to \(requested)")
            }
            out[i] = total / known
        }
        guard out.reduce(1, *) == total else {
            throw OperatorError("cannot reshape \(input) (\(total) elements) to \(requested) (\(out.reduce(1, *)) elements)")
        }
        return out
    }

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        let data = try required(inputs, 0, "data")
        let shape = try ShapingSupport.ints(try constant(inputs, 1, "shape"), "shape")
        return [ValueInfo(shape: try Self.outputShape(input: data.shape, requested: shape, allowZero: allowZero), dtype: data.dtype)]
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let data = try required(inputs, 0, "data")
        let shape = try ShapingSupport.ints(try required(inputs, 1, "shape"), "shape")
        return [data.reshaped(to: try Self.outputShape(input: data.shape, requested: shape, allowZero: allowZero))]
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        guard let g = ShapingSupport.gradient(outputGradients), ShapingSupport.wants(needed, inputs, 0),
              let x = inputs[0] else { return [nil, nil] }
        return [g.reshaped(to: x.shape), nil]
    }
}
