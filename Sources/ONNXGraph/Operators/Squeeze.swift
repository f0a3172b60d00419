import TensorCore

// Squeeze — https://onnx.ai/onnx/operators/onnx__Squeeze.html
// Opsets 11 (axes attribute, negative axes), 13 (axes as optional input 1), 21 (CAMKit: 11–21).
// Any dtype. Without axes every extent-1 dim is removed. No copy.

/// ONNX `Squeeze`.
struct SqueezeOperator: DifferentiableOperator {
    /// Axes from the attribute (opset < 13).
    let axesAttribute: [Int]?
    /// Whether axes come from input 1.
    let axesFromInput: Bool

    init(node: Node, opset: Int) throws {
        axesFromInput = opset >= 13
        axesAttribute = opset < 13 ? try node.ints("axes") : nil
    }

    private func outputShape(_ shape: [Int], axesTensor: Tensor?) throws -> [Int] {
        var axes: [Int]?
        if axesFromInput {
            if let t = axesTensor { axes = try ShapingSupport.ints(t, "axes") }
        } else {
            axes = axesAttribute
        }
        guard let axes else { return shape.filter { $0 != 1 } }
        let normalized = Set(try ShapingSupport.axes(axes, rank: shape.count))
        for a in normalized where shape[a] != 1 {
            throw OperatorError("cannot squeeze axis \(a) of shape \(shape): its extent is \(shape[a]), not 1")
        }
        return shape.enumerated().filter { !normalized.contains($0.offset) }.map(\.element)
    }

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        let x = try required(inputs, 0, "data")
        let axes: Tensor? = axesFromInput && ShapingSupport.optional(inputs, 1) != nil ? try constant(inputs, 1, "axes") : nil
        return [ValueInfo(shape: try outputShape(x.shape, axesTensor: axes), dtype: x.dtype)]
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try required(inputs, 0, "data")
        return [x.reshaped(to: try outputShape(x.shape, axesTensor: ShapingSupport.optional(inputs, 1)))]
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        var result: [Tensor?] = inputs.map { _ in nil }
        guard let g = ShapingSupport.gradient(outputGradients), ShapingSupport.wants(needed, inputs, 0),
              let x = inputs[0] else { return result }
        result[0] = g.reshaped(to: x.shape)
        return result
    }
}
