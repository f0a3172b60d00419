import TensorCore

// Pow — https://onnx.ai/onnx/operators/onnx__Pow.html
// Opsets 7, 12, 13, 15 (CAMKit: 11–21): `Z = X ^ Y` with multidirectional broadcasting; since
// opset 12 the exponent may have another type than the base. The output has the base's type.
// Types: base float32 or int64, exponent float32 or int64.

/// ONNX `Pow`.
struct PowOperator: DifferentiableOperator {
    init(node: Node, opset: Int) throws {}

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        let x = try required(inputs, 0, "X"), y = try required(inputs, 1, "Y")
        try requireDType(x, [.float32, .int64], "input X")
        try requireDType(y, [.float32, .int64], "input Y")
        return [ValueInfo(shape: try broadcastShapeOrThrow([x, y]), dtype: x.dtype)]
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        [pow(try required(inputs, 0, "X"), try required(inputs, 1, "Y"))]
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        guard let g = outputGradient(outputGradients), let x = elementwiseInput(inputs, 0), var y = elementwiseInput(inputs, 1),
              x.dtype == .float32 else { return [nil, nil] }
        let wantY = wantsGradient(needed, inputs, 1)
        if y.dtype != .float32 { y = cast(y, to: .float32) }
        let r = powPullback(g, x, y, result: outputs[0], computingA: wantsGradient(needed, inputs, 0),
                            computingB: wantY)
        return [r.a, r.b]
    }
}
