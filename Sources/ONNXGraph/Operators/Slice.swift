import TensorCore

// Slice — https://onnx.ai/onnx/operators/onnx__Slice.html
// Opsets 1 (attributes), 10 (starts/ends/axes/steps as inputs), 11 (negative axes), 13
// (CAMKit: 11–21). Any dtype. The bound inputs must be constant. Negative steps walk backwards;
// starts/ends are clamped like the spec, so INT64_MAX / INT64_MIN mean "to the end" / "to the start".

/// ONNX `Slice`.
struct SliceOperator: DifferentiableOperator {
    /// Bounds from attributes (opset < 10).
    let attributeBounds: (starts: [Int], ends: [Int], axes: [Int]?)?

    init(node: Node, opset: Int) throws {
        if opset < 10 {
            guard let starts = try node.ints("starts"), let ends = try node.ints("ends") else {
                throw OperatorError("Slice (opset \(opset)) needs 'starts' and 'ends' attributes")
            }
            attributeBounds = (starts, ends, try node.ints("axes"))
        } else {
            attributeBounds = nil
        }
    }

    /// Validates the bounds and resolves them against `shape`.
    private func ranges(shape: [Int], _ bound: (Int) throws -> Tensor?) throws -> [SliceRange] {
        let starts: [Int], ends: [Int]
        var axes: [Int]?, steps: [Int]?
        if let a = attributeBounds {
            (starts, ends, axes) = a
        } else {
            guard let s = try bound(1) else { throw OperatorError("missing input 1 (starts)") }
            guard let e = try bound(2) else { throw OperatorError("missing input 2 (ends)") }
            starts = try ShapingSupport.ints(s, "starts")
            ends = try ShapingSupport.ints(e, "ends")
            if let a = try bound(3) { axes = try ShapingSupport.ints(a, "axes") }
            if let st = try bound(4) { steps = try ShapingSupport.ints(st, "steps") }
        }
        guard starts.count == ends.count else {
            throw OperatorError("starts \(starts) and ends \(ends) have different lengths")
        }
        if let axes, axes.count != starts.count {
            throw OperatorError("axes \(axes) and starts \(starts) have different lengths")
        }
        if let steps {
            guard steps.count == starts.count else {
                throw OperatorError("steps \(steps) and starts \(starts) have different lengths")
            }
            guard !steps.contains(0) else { throw OperatorError("steps \(steps) contain 0") }
        }
        let resolvedAxes = try ShapingSupport.axes(axes ?? Array(0..<starts.count), rank: shape.count)
        return sliceRanges(shape: shape, starts: starts, ends: ends, axes: resolvedAxes, steps: steps)
    }

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        let x = try required(inputs, 0, "data")
        let r = try ranges(shape: x.shape) { i in
            guard i < inputs.count, inputs[i] != nil else { return nil }
            return try constant(inputs, i, ["", "starts", "ends", "axes", "steps"][i])
        }
        return [ValueInfo(shape: r.map(\.count), dtype: x.dtype)]
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try required(inputs, 0, "data")
        return [x.sliced(try ranges(shape: x.shape) { ShapingSupport.optional(inputs, $0) })]
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        var result: [Tensor?] = inputs.map { _ in nil }
        guard let g = ShapingSupport.gradient(outputGradients), ShapingSupport.wants(needed, inputs, 0),
              let x = inputs[0] else { return result }
        let r = try ranges(shape: x.shape) { ShapingSupport.optional(inputs, $0) }
        result[0] = slicePullback(g, inputShape: x.shape, ranges: r)
        return result
    }
}
