import TensorCore

// Dropout — https://onnx.ai/onnx/operators/onnx__Dropout.html
// Opsets 10 (`ratio` attribute), 12, 13 (`ratio` and `training_mode` as optional inputs 1 and 2)
// (CAMKit: 11–21). CAMKit runs inference: the output is the input and the optional second output
// `mask` is all true. A constant `training_mode` of true with a non-zero ratio is refused.
// Types: data float32.

/// ONNX `Dropout` (inference).
struct DropoutOperator: DifferentiableOperator {
    /// Whether the node asks for the `mask` output.
    let outputCount: Int

    init(node: Node, opset: Int) throws {
        outputCount = max(1, min(node.outputs.count, 2))
    }

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        let x = try required(inputs, 0, "data")
        try requireDType(x, [.float32], "input data")
        if inputs.count > 2, let mode = inputs[2] {
            try requireDType(mode, [.bool], "input training_mode")
            if let training = mode.constant, training.count == 1, training.bools[0] {
                var ratio: Float = 0.5
                if let r = inputs[1], let value = r.constant, value.count == 1 { ratio = value.scalar }
                if ratio != 0 {
                    throw OperatorError("training_mode is true: CAMKit runs inference only and does not apply random dropout")
                }
            }
        }
        var outputs = [ValueInfo(shape: x.shape, dtype: .float32)]
        if outputCount > 1 { outputs.append(ValueInfo(shape: x.shape, dtype: .bool)) }
        return outputs
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try required(inputs, 0, "data")
        if outputCount > 1 {
            return [x, Tensor(shape: x.shape, bools: [Bool](repeating: true, count: x.count))]
        }
        return [x]
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        var result = [Tensor?](repeating: nil, count: max(inputs.count, 1))
        if wantsGradient(needed, inputs, 0) { result[0] = outputGradient(outputGradients) }
        return result
    }
}
