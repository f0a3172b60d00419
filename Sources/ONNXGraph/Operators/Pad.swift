import TensorCore

// Pad — https://onnx.ai/onnx/operators/onnx__Pad.html
// Opsets 2 (pads/value attributes), 11 (pads and optional constant_value as inputs), 13, 18
// (optional axes input), 19 (wrap mode, not supported), 21 (CAMKit: 11–21).
// Modes constant, reflect, edge; any dtype; negative pads crop. pads = [b_1, ..., b_k, e_1, ..., e_k].

/// ONNX `Pad`.
struct PadOperator: DifferentiableOperator {
    /// `constant`, `reflect` or `edge`.
    let mode: String
    /// Pads from the attribute (opset < 11).
    let padsAttribute: [Int]?
    /// The constant from the `value` attribute (opset < 11).
    let valueAttribute: Float
    /// Whether pads, constant_value and axes are inputs.
    let fromInputs: Bool

    init(node: Node, opset: Int) throws {
        mode = try node.string("mode", default: "constant")
        guard ["constant", "reflect", "edge"].contains(mode) else {
            throw OperatorError("Pad mode '\(mode)' is not supported (supported: constant, reflect, edge)")
        }
        fromInputs = opset >= 11
        if fromInputs {
            padsAttribute = nil
            valueAttribute = 0
        } else {
            guard let pads = try node.ints("pads") else { throw OperatorError("Pad (opset \(opset)) needs a 'pads' attribute") }
            padsAttribute = pads
            valueAttribute = try node.float("value", default: 0)
        }
    }

    /// Per-dim before/after amounts for an input of `shape`.
    private func amounts(shape: [Int], pads padsTensor: Tensor?, axes axesTensor: Tensor?) throws -> (before: [Int], after: [Int]) {
        let rank = shape.count
        let pads: [Int]
        if let p = padsAttribute {
            pads = p
        } else {
            guard let t = padsTensor else { throw OperatorError("missing input 1 (pads)") }
            pads = try ShapingSupport.ints(t, "pads")
        }
        var axes = Array(0..<rank)
        if let t = axesTensor, ShapingSupport.isPresent(t) {
            axes = try ShapingSupport.axes(try ShapingSupport.ints(t, "axes"), rank: rank)
        }
        guard pads.count == 2 * axes.count else {
            throw OperatorError("pads \(pads) must have 2 × \(axes.count) entries (begin values, then end values)")
        }
        var before = [Int](repeating: 0, count: rank), after = before
        for (i, a) in axes.enumerated() {
            before[a] = pads[i]
            after[a] = pads[axes.count + i]
        }
        for d in 0..<rank {
            let n = shape[d]
            guard n + before[d] + after[d] >= 0 else {
                throw OperatorError("pads \(before[d]), \(after[d]) crop more than the extent \(n) of dim \(d)")
            }
            if mode != "constant" && n == 0 && (before[d] > 0 || after[d] > 0) {
                throw OperatorError("\(mode) padding of dim \(d), which is empty")
            }
        }
        return (before, after)
    }

    private func paddingMode(value: Tensor?) throws -> PaddingMode {
        switch mode {
        case "reflect": return .reflect
        case "edge": return .edge
        default:
            guard !fromInputs else {
                guard let v = value, v.count > 0 else { return .constant(0) }
                guard v.count == 1 else { throw OperatorError("constant_value must be a scalar, got shape \(v.shape)") }
                switch v.dtype {
                case .float32: return .constant(Double(v.scalar))
                case .int64: return .constant(Double(v.int64s[0]))
                case .bool: return .constant(v.bools[0] ? 1 : 0)
                }
            }
            return .constant(Double(valueAttribute))
        }
    }

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        let x = try required(inputs, 0, "data")
        let pads: Tensor? = fromInputs ? try constant(inputs, 1, "pads") : nil
        let axes: Tensor? = fromInputs && ShapingSupport.isPresent(ShapingSupport.optional(inputs, 3))
            ? try constant(inputs, 3, "axes") : nil
        if let v = ShapingSupport.optional(inputs, 2), fromInputs, v.dtype != x.dtype {
            throw OperatorError("constant_value is \(v.dtype) but data is \(x.dtype)")
        }
        let (before, after) = try amounts(shape: x.shape, pads: pads, axes: axes)
        return [ValueInfo(shape: (0..<x.shape.count).map { x.shape[$0] + before[$0] + after[$0] }, dtype: x.dtype)]
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try required(inputs, 0, "data")
        let (before, after) = try amounts(shape: x.shape, pads: ShapingSupport.optional(inputs, 1),
                                          axes: ShapingSupport.optional(inputs, 3))
        return [padded(x, before: before, after: after, mode: try paddingMode(value: ShapingSupport.optional(inputs, 2)))]
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        var result: [Tensor?] = inputs.map { _ in nil }
        guard let g = ShapingSupport.gradient(outputGradients), ShapingSupport.wants(needed, inputs, 0),
              let x = inputs[0] else { return result }
        let (before, after) = try amounts(shape: x.shape, pads: ShapingSupport.optional(inputs, 1),
                                          axes: ShapingSupport.optional(inputs, 3))
        result[0] = padPullback(g, inputShape: x.shape, before: before, after: after,
                                mode: try paddingMode(value: ShapingSupport.optional(inputs, 2)))
        return result
    }
}
