import TensorCore

// ConstantOfShape — https://onnx.ai/onnx/operators/onnx__ConstantOfShape.html
// Opsets 9, 20, 21 (CAMKit: 11–21). Input: a 1-D int64 shape (constant; empty means a scalar).
// Attribute `value`: a one-element tensor giving the dtype and fill value (default float 0).

/// ONNX `ConstantOfShape`.
struct ConstantOfShapeOperator: ONNXOperator {
    /// The one-element fill tensor.
    let value: Tensor

    init(node: Node, opset: Int) throws {
        if let t = try node.tensor("value") {
            guard t.count == 1 else { throw OperatorError("'value' must have exactly one element, got shape \(t.shape)") }
            value = t
        } else {
            value = Tensor(shape: [1], scalars: [0])
        }
    }

    private func shape(_ t: Tensor) throws -> [Int] {
        guard t.rank <= 1 else { throw OperatorError("shape input must be 1-D, got shape \(t.shape)") }
        let s = try ShapingSupport.ints(t, "shape")
        guard s.allSatisfy({ $0 >= 0 }) else { throw OperatorError("shape \(s) has a negative extent") }
        return s
    }

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        [ValueInfo(shape: try shape(try constant(inputs, 0, "input")), dtype: value.dtype)]
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let s = try shape(try required(inputs, 0, "input"))
        return [value.reshaped(to: s.map { _ in 1 }).expanded(toShape: s)]
    }
}
