import TensorCore

// Flatten — https://onnx.ai/onnx/operators/onnx__Flatten.html
// Opsets 1, 9, 11, 13, 21 (CAMKit: 11–21). Any dtype. Output is 2-D:
// [prod(shape[..<axis]), prod(shape[axis...])], axis in [-rank, rank] (default 1). No copy.

/// ONNX `Flatten`.
struct FlattenOperator: DifferentiableOperator {
    /// The first dim of the second output dim (may be negative).
    let axis: Int

    init(node: Node, opset: Int) throws {
        axis = try node.int("axis", default: 1)
    }

    private func outputShape(_ shape: [Int]) throws -> [Int] {
        let r = shape.count
        guard axis >= -r && axis <= r else { throw OperatorError("axis \(axis) is out of range for rank \(r)") }
        let a = axis < 0 ? axis + r : axis
        return [shape[..<a].reduce(1, *), shape[a...].reduce(1, *)]
    }

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        let x = try required(inputs, 0, "input")
        return [ValueInfo(shape: try outputShape(x.shape), dtype: x.dtype)]
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try required(inputs, 0, "input")
        return [x.reshaped(to: try outputShape(x.shape))]
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        guard let g = ShapingSupport.gradient(outputGradients), ShapingSupport.wants(needed, inputs, 0),
              let x = inputs[0] else { return [nil] }
        return [g.reshaped(to: x.shape)]
    }
}
