import TensorCore

// Where — https://onnx.ai/onnx/operators/onnx__Where.html
// Opsets 9, 16 (CAMKit: 11–21): `X` where `condition`, else `Y`, the three broadcast together.
// Types: condition bool; X and Y float32, int64 or bool (one type).

/// ONNX `Where`.
struct WhereOperator: DifferentiableOperator {
    init(node: Node, opset: Int) throws {}

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        let c = try required(inputs, 0, "condition"), x = try required(inputs, 1, "X"), y = try required(inputs, 2, "Y")
        try requireDType(c, [.bool], "input condition")
        guard x.dtype == y.dtype else {
            throw OperatorError("inputs X and Y have different types \(onnxTypeName(x.dtype)) and \(onnxTypeName(y.dtype))")
        }
        return [ValueInfo(shape: try broadcastShapeOrThrow([c, x, y]), dtype: x.dtype)]
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        [select(try required(inputs, 0, "condition"), try required(inputs, 1, "X"), try required(inputs, 2, "Y"))]
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        guard let g = outputGradient(outputGradients), let c = elementwiseInput(inputs, 0), let x = elementwiseInput(inputs, 1), let y = elementwiseInput(inputs, 2),
              x.dtype == .float32 else { return [nil, nil, nil] }
        let r = selectPullback(g, condition: c, xShape: x.shape, yShape: y.shape,
                               computingX: wantsGradient(needed, inputs, 1), computingY: wantsGradient(needed, inputs, 2))
        return [nil, r.x, r.y]
    }
}
