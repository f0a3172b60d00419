import TensorCore

// Unsqueeze — https://onnx.ai/onnx/operators/onnx__Unsqueeze.html
// Opsets 11 (axes attribute, negative axes), 13 (axes as input 1), 21 (CAMKit: 11–21). Any dtype.
// Axes refer to the output's dims (negative ones count from the output's end). No copy.

/// ONNX `Unsqueeze`.
struct UnsqueezeOperator: DifferentiableOperator {
    /// Axes from the attribute (opset < 13).
    let axesAttribute: [Int]?

    init(node: Node, opset: Int) throws {
        if opset < 13 {
            guard let axes = try node.ints("axes") else { throw OperatorError("Unsqueeze (opset \(opset)) needs an 'axes' attribute") }
            axesAttribute = axes
        } else {
            axesAttribute = nil
        }
    }

    private func outputShape(_ shape: [Int], axesTensor: Tensor?) throws -> [Int] {
        let axes: [Int]
        if let a = axesAttribute {
            axes = a
        } else {
            guard let t = axesTensor else { throw OperatorError("missing input 1 (axes)") }
            axes = try ShapingSupport.ints(t, "axes")
        }
        let outRank = shape.count + axes.count
        let normalized = Set(try ShapingSupport.axes(axes, rank: outRank))
        var out: [Int] = []
        var next = 0
        for d in 0..<outRank {
            if normalized.contains(d) {
                out.append(1)
            } else {
                out.append(shape[next])
                next += 1
            }
        }
        return out
    }

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        let x = try required(inputs, 0, "data")
        let axes: Tensor? = axesAttribute == nil ? try constant(inputs, 1, "axes") : nil
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
