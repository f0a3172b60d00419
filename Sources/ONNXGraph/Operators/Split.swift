import TensorCore

// Split — https://onnx.ai/onnx/operators/onnx__Split.html
// Opsets 11 (split attribute), 13 (split as optional input 1), 18 (num_outputs attribute)
// (CAMKit: 11–21). Any dtype. Without explicit sizes the axis is split into as many equal parts as
// the node has outputs; at opset 18 `num_outputs` chunks of ceil(n / num_outputs) with a smaller last one.

/// ONNX `Split`.
struct SplitOperator: DifferentiableOperator {
    /// The split axis (may be negative).
    let axis: Int
    /// Sizes from the `split` attribute (opset < 13).
    let splitAttribute: [Int]?
    /// The `num_outputs` attribute (opset ≥ 18).
    let numOutputs: Int?
    /// The number of outputs the node declares.
    let outputCount: Int
    /// The node's opset.
    let opset: Int

    init(node: Node, opset: Int) throws {
        self.opset = opset
        axis = try node.int("axis", default: 0)
        splitAttribute = opset < 13 ? try node.ints("split") : nil
        numOutputs = node.attributes["num_outputs"] != nil ? try node.int("num_outputs") : nil
        outputCount = node.outputs.count
        if let numOutputs, numOutputs != outputCount {
            throw OperatorError("num_outputs is \(numOutputs) but the node has \(outputCount) outputs")
        }
        guard outputCount > 0 else { throw OperatorError("Split has no outputs") }
    }

    /// The piece extents for an axis of extent `n`.
    private func sizes(n: Int, splitInput: Tensor?) throws -> [Int] {
        let sizes: [Int]
        if opset >= 13, let s = splitInput, ShapingSupport.isPresent(s) {
            sizes = try ShapingSupport.ints(s, "split")
        } else if let s = splitAttribute {
            sizes = s
        } else if let k = numOutputs {
            let chunk = (n + k - 1) / k
            sizes = (0..<k).map { max(0, min(chunk, n - $0 * chunk)) }
        } else {
            guard n % outputCount == 0 else {
                throw OperatorError("cannot split an axis of \(n) into \(outputCount) equal parts; give 'split' sizes")
            }
            sizes = [Int](repeating: n / outputCount, count: outputCount)
        }
        guard sizes.count == outputCount else {
            throw OperatorError("split has \(sizes.count) sizes \(sizes) but the node has \(outputCount) outputs")
        }
        guard sizes.allSatisfy({ $0 >= 0 }), sizes.reduce(0, +) == n else {
            throw OperatorError("split sizes \(sizes) do not add up to the axis extent \(n)")
        }
        return sizes
    }

    private func splitInput(_ inputs: [ValueInfo?]) throws -> Tensor? {
        guard opset >= 13, ShapingSupport.isPresent(ShapingSupport.optional(inputs, 1)) else { return nil }
        return try constant(inputs, 1, "split")
    }

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        let x = try required(inputs, 0, "input")
        let ax = try ShapingSupport.axis(axis, rank: x.shape.count)
        return try sizes(n: x.shape[ax], splitInput: try splitInput(inputs)).map { size in
            var s = x.shape
            s[ax] = size
            return ValueInfo(shape: s, dtype: x.dtype)
        }
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try required(inputs, 0, "input")
        let ax = try ShapingSupport.axis(axis, rank: x.rank)
        return x.split(sizes: try sizes(n: x.shape[ax], splitInput: ShapingSupport.optional(inputs, 1)), alongAxis: ax)
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        var result: [Tensor?] = inputs.map { _ in nil }
        guard ShapingSupport.wants(needed, inputs, 0), let x = inputs[0],
              outputGradients.contains(where: { $0 != nil }) else { return result }
        let ax = try ShapingSupport.axis(axis, rank: x.rank)
        let grads = outputs.indices.map { ShapingSupport.gradient(outputGradients, $0) }
        result[0] = splitPullback(grads, sizes: outputs.map { $0.shape[ax] }, alongAxis: ax, inputShape: x.shape)
        return result
    }
}
