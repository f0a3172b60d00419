import TensorCore

// BatchNormalization — https://onnx.ai/onnx/operators/onnx__BatchNormalization.html
// Opsets 9, 14 (`training_mode` attribute), 15 (CAMKit: 11–21), inference mode only:
// `Y = scale · (X − input_mean) / √(input_var + epsilon) + B` per channel (axis 1), folded into one
// per-channel multiply-add. Training mode (`training_mode = 1`, or before opset 14 a node asking
// for the mean/var outputs) is refused. Types: float32.

/// ONNX `BatchNormalization` (inference).
struct BatchNormalizationOperator: DifferentiableOperator {
    let epsilon: Float

    init(node: Node, opset: Int) throws {
        epsilon = try node.float("epsilon", default: 1e-5)
        let trainingMode = opset >= 14 ? try node.int("training_mode", default: 0) != 0 : false
        let extraOutputs = node.outputs.dropFirst().contains { !$0.isEmpty }
        if trainingMode || extraOutputs {
            throw OperatorError("BatchNormalization in training mode (training_mode=1, or running-statistics outputs "
                                + "requested) is not supported: CAMKit runs inference; export the model after model.eval()")
        }
    }

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        let x = try required(inputs, 0, "X")
        try LinearAlgebraSupport.require(x, [.float32], "input X")
        guard x.shape.count >= 2 else {
            throw OperatorError("input X must have rank ≥ 2 (N, C, …), got \(x.shape)")
        }
        let c = x.shape[1]
        for (index, name) in [(1, "scale"), (2, "B"), (3, "input_mean"), (4, "input_var")] {
            let p = try required(inputs, index, name)
            try LinearAlgebraSupport.require(p, [.float32], "input \(name)")
            guard p.shape.reduce(1, *) == c, p.shape.count <= 1 else {
                throw OperatorError("input \(name) has shape \(p.shape); expected [\(c)] (one value per channel of X \(x.shape))")
            }
        }
        return [ValueInfo(shape: x.shape, dtype: .float32)]
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        [batchNormInference(try required(inputs, 0, "X"), scale: try required(inputs, 1, "scale"),
                            bias: try required(inputs, 2, "B"), mean: try required(inputs, 3, "input_mean"),
                            variance: try required(inputs, 4, "input_var"), epsilon: epsilon)]
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        var result = [Tensor?](repeating: nil, count: 5)
        let wantX = LinearAlgebraSupport.wants(needed, inputs, 0)
        let wantParameters = LinearAlgebraSupport.wants(needed, inputs, 1) || LinearAlgebraSupport.wants(needed, inputs, 2)
        guard let g = LinearAlgebraSupport.gradient(outputGradients), wantX || wantParameters else { return result }
        let x = try required(inputs, 0, "X")
        let (dx, dScale, dBias) = batchNormInferencePullback(
            x, scale: try required(inputs, 1, "scale"), mean: try required(inputs, 3, "input_mean"),
            variance: try required(inputs, 4, "input_var"), epsilon: epsilon, gradient: g,
            needInput: wantX, needParameters: wantParameters)
        result[0] = dx
        if LinearAlgebraSupport.wants(needed, inputs, 1) { result[1] = dScale }
        if LinearAlgebraSupport.wants(needed, inputs, 2) { result[2] = dBias }
        return result
    }
}
