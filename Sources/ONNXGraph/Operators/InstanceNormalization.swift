import TensorCore

// InstanceNormalization — https://onnx.ai/onnx/operators/onnx__InstanceNormalization.html
// Opsets 6, 22 (CAMKit: 11–21): each (n, c) plane of `input` (N, C, D1, …) is normalised over its
// spatial positions, `y = scale · (x − mean) / √(variance + epsilon) + B`, scale and B of shape (C).
// Types: float32.

/// ONNX `InstanceNormalization`.
struct InstanceNormalizationOperator: DifferentiableOperator {
    let epsilon: Float

    init(node: Node, opset: Int) throws {
        epsilon = try node.float("epsilon", default: 1e-5)
    }

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        let x = try required(inputs, 0, "input")
        try LinearAlgebraSupport.require(x, [.float32], "input")
        guard x.shape.count >= 3 else {
            throw OperatorError("input must have rank ≥ 3 (N, C, D1, …), got \(x.shape)")
        }
        for (index, name) in [(1, "scale"), (2, "B")] {
            let p = try required(inputs, index, name)
            try LinearAlgebraSupport.require(p, [.float32], "input \(name)")
            guard p.shape == [x.shape[1]] else {
                throw OperatorError("input \(name) has shape \(p.shape); expected [\(x.shape[1])] (one value per channel)")
            }
        }
        return [ValueInfo(shape: x.shape, dtype: .float32)]
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        [instanceNorm(try required(inputs, 0, "input"), scale: try required(inputs, 1, "scale"),
                      bias: try required(inputs, 2, "B"), epsilon: epsilon)]
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        var result = [Tensor?](repeating: nil, count: 3)
        let want = (0..<3).map { LinearAlgebraSupport.wants(needed, inputs, $0) }
        guard let g = LinearAlgebraSupport.gradient(outputGradients), want.contains(true) else { return result }
        let (dx, dScale, dBias) = instanceNormPullback(try required(inputs, 0, "input"), scale: try required(inputs, 1, "scale"),
                                                       epsilon: epsilon, gradient: g, needInput: want[0],
                                                       needParameters: want[1] || want[2])
        result[0] = dx
        if want[1] { result[1] = dScale }
        if want[2] { result[2] = dBias }
        return result
    }
}
