import TensorCore

// LayerNormalization — https://onnx.ai/onnx/operators/onnx__LayerNormalization.html
// Opset 17 (CAMKit: 17–21; older exporters decompose it into ReduceMean/Sub/Pow/Sqrt/Div):
// the axes from `axis` (default −1) on are normalised together, `Y = (X − Mean) · InvStdDev · Scale + B`
// with optional B and optional outputs Mean and InvStdDev (shape X.shape[..<axis] + [1, …]).
// `stash_type` selects the precision of the statistics; CAMKit always accumulates them in Double
// (at least as precise as stash_type = 1, float32). Types: float32.

/// ONNX `LayerNormalization`.
struct LayerNormalizationOperator: DifferentiableOperator {
    let axis: Int
    let epsilon: Float
    /// How many outputs the node names (1 to 3).
    let outputCount: Int

    init(node: Node, opset: Int) throws {
        axis = try node.int("axis", default: -1)
        epsilon = try node.float("epsilon", default: 1e-5)
        _ = try node.int("stash_type", default: 1)
        outputCount = Swift.max(1, Swift.min(3, node.outputs.count))
    }

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        let x = try required(inputs, 0, "X")
        try LinearAlgebraSupport.require(x, [.float32], "input X")
        let a = try LinearAlgebraSupport.axis(axis, rank: x.shape.count)
        let normalized = Array(x.shape[a...])
        let scale = try required(inputs, 1, "Scale")
        try LinearAlgebraSupport.require(scale, [.float32], "input Scale")
        guard LinearAlgebraSupport.broadcasts(scale.shape, to: normalized) else {
            throw OperatorError("input Scale of shape \(scale.shape) does not broadcast to the normalised shape \(normalized) "
                                + "(X \(x.shape), axis \(axis))")
        }
        if let bias = LinearAlgebraSupport.optional(inputs, 2) {
            try LinearAlgebraSupport.require(bias, [.float32], "input B")
            guard LinearAlgebraSupport.broadcasts(bias.shape, to: normalized) else {
                throw OperatorError("input B of shape \(bias.shape) does not broadcast to the normalised shape \(normalized)")
            }
        }
        let statistics = Array(x.shape[..<a]) + [Int](repeating: 1, count: x.shape.count - a)
        var outputs = [ValueInfo(shape: x.shape, dtype: .float32)]
        for _ in 1..<outputCount { outputs.append(ValueInfo(shape: statistics, dtype: .float32)) }
        return outputs
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let (y, mean, inverse) = layerNorm(try required(inputs, 0, "X"), scale: try required(inputs, 1, "Scale"),
                                           bias: LinearAlgebraSupport.optional(inputs, 2), axis: axis, epsilon: epsilon)
        return Array([y, mean, inverse].prefix(outputCount))
    }

    /// Gradients flow from output Y only; a gradient arriving at Mean or InvStdDev (which only
    /// training graphs consume) is refused.
    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        var result = [Tensor?](repeating: nil, count: 3)
        if LinearAlgebraSupport.gradient(outputGradients, 1) != nil || LinearAlgebraSupport.gradient(outputGradients, 2) != nil {
            throw OperatorError("gradients through LayerNormalization's Mean/InvStdDev outputs are not supported")
        }
        let want = (0..<3).map { LinearAlgebraSupport.wants(needed, inputs, $0) }
        guard let g = LinearAlgebraSupport.gradient(outputGradients), want.contains(true) else { return result }
        let x = try required(inputs, 0, "X"), scale = try required(inputs, 1, "Scale")
        let bias = LinearAlgebraSupport.optional(inputs, 2)
        let (dx, dScale, dBias) = layerNormPullback(x, scale: scale, biasShape: bias?.shape, axis: axis, epsilon: epsilon,
                                                    gradient: g, needInput: want[0], needParameters: want[1] || want[2])
        result[0] = dx
        if want[1] { result[1] = dScale }
        if want[2] { result[2] = dBias }
        return result
    }
}
