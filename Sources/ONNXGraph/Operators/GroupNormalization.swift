import TensorCore

// GroupNormalization — https://onnx.ai/onnx/operators/onnx__GroupNormalization.html
// Opsets 18 and 21 (CAMKit: 18–21). The C channels of X (N, C, D1, …) are split into `num_groups`
// consecutive groups; each (n, group) slice is normalised to zero mean and unit variance, then
// scaled and shifted. The versions differ in the parameters:
// - opset 18: `scale` and `bias` have shape (num_groups), one value per group, applied to every
//   channel of the group (deprecated by opset 21 because PyTorch's GroupNorm is per channel);
// - opset 21: `scale` and `bias` have shape (C), one value per channel; `stash_type` selects the
//   statistics' precision (CAMKit accumulates them in Double).
// Types: float32.

/// ONNX `GroupNormalization`.
struct GroupNormalizationOperator: DifferentiableOperator {
    let epsilon: Float
    let groupCount: Int
    /// Opset 18 semantics: parameters per group rather than per channel.
    let parametersPerGroup: Bool

    init(node: Node, opset: Int) throws {
        epsilon = try node.float("epsilon", default: 1e-5)
        groupCount = try node.int("num_groups")
        _ = try node.int("stash_type", default: 1)
        parametersPerGroup = opset < 21
        guard groupCount > 0 else { throw OperatorError("num_groups must be positive, got \(groupCount)") }
    }

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        let x = try required(inputs, 0, "X")
        try LinearAlgebraSupport.require(x, [.float32], "input X")
        guard x.shape.count >= 2 else { throw OperatorError("input X must have rank ≥ 2 (N, C, …), got \(x.shape)") }
        let c = x.shape[1]
        guard c % groupCount == 0 else {
            throw OperatorError("the \(c) channels of X \(x.shape) do not split into num_groups = \(groupCount) equal groups")
        }
        let expected = parametersPerGroup ? groupCount : c
        for (index, name) in [(1, "scale"), (2, "bias")] {
            let p = try required(inputs, index, name)
            try LinearAlgebraSupport.require(p, [.float32], "input \(name)")
            guard p.shape == [expected] else {
                throw OperatorError("input \(name) has shape \(p.shape); expected [\(expected)] (one value per "
                                    + (parametersPerGroup ? "group before opset 21)" : "channel from opset 21)"))
            }
        }
        return [ValueInfo(shape: x.shape, dtype: .float32)]
    }

    /// A parameter as one value per channel (opset 18's per-group values repeated over each group).
    private func perChannel(_ p: Tensor, channels: Int) -> Tensor {
        guard parametersPerGroup else { return p }
        let values = p.scalars, perGroup = channels / groupCount
        return Tensor(shape: [channels], scalars: (0..<channels).map { values[$0 / perGroup] })
    }

    /// A per-channel gradient summed back to one value per group (opset 18).
    private func backToParameter(_ g: Tensor, channels: Int) -> Tensor {
        guard parametersPerGroup else { return g }
        return g.reshaped(to: [groupCount, channels / groupCount]).sum(alongAxes: [1])
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try required(inputs, 0, "X")
        let c = x.shape[1]
        return [groupNorm(x, groupCount: groupCount, scale: perChannel(try required(inputs, 1, "scale"), channels: c),
                          bias: perChannel(try required(inputs, 2, "bias"), channels: c), epsilon: epsilon)]
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        var result = [Tensor?](repeating: nil, count: 3)
        let want = (0..<3).map { LinearAlgebraSupport.wants(needed, inputs, $0) }
        guard let g = LinearAlgebraSupport.gradient(outputGradients), want.contains(true) else { return result }
        let x = try required(inputs, 0, "X")
        let c = x.shape[1]
        let (dx, dScale, dBias) = groupNormPullback(x, groupCount: groupCount,
                                                    scale: perChannel(try required(inputs, 1, "scale"), channels: c),
                                                    epsilon: epsilon, gradient: g, needInput: want[0],
                                                    needParameters: want[1] || want[2])
        result[0] = dx
        if want[1], let dScale { result[1] = backToParameter(dScale, channels: c) }
        if want[2], let dBias { result[2] = backToParameter(dBias, channels: c) }
        return result
    }
}
