import TensorCore

/// A convolution with the zero `Pad` before it and the `Relu`/`Clip` after it folded in, and
/// prepared for its input shape when its filter is a constant.
///
/// Exporters of TF-style models (EfficientNet-Lite) emit an explicit `Pad` before strided
/// convolutions, and every CNN follows its convolutions with an activation; running them as
/// separate kernels costs a full pass over memory each. Specialisation merges them when the
/// intermediate values have no other reader and nobody asked to keep them.
///
/// When the filter (and bias) are initializers, specialisation also makes a
/// ``PreparedConvolution`` (oneDNN, filter reordered once) for the plan's input shape; the
/// forward pass uses it, and falls back to `conv2D` if it is absent or fails. The pullback's
/// input gradient uses the prepared convolution's backward-data primitive where it has one
/// (``PreparedConvolution/inputGradient(_:)``), CAMKit's own kernels otherwise; filter and bias
/// gradients always use CAMKit's kernels.
struct FusedConvOperator: DifferentiableOperator {
    let conv: ConvOperator
    /// Extra zero padding from a preceding `Pad` (added to the convolution's own).
    let extraPadding: Padding2D
    let activation: FusedActivation
    /// The convolution prepared for the plan's input shape, filter and bias (or `nil`).
    var prepared: PreparedConvolution? = nil

    init(node: Node, opset: Int) throws {
        throw OperatorError("FusedConv is made by specialisation only")
    }

    init(conv: ConvOperator, extraPadding: Padding2D, activation: FusedActivation) {
        self.conv = conv
        self.extraPadding = extraPadding
        self.activation = activation
    }

    /// The convolution's window with the extra padding added.
    private func window(_ x: Tensor, _ w: Tensor) throws -> WindowAttributes.Window {
        try window(inputShape: x.shape, filterShape: w.shape)
    }

    func window(inputShape: [Int], filterShape: [Int]) throws -> WindowAttributes.Window {
        var window = try conv.geometry(input: padded(shape: inputShape), filter: filterShape).0
        window.padding = Padding2D(top: window.padding.top + extraPadding.top,
                                   left: window.padding.left + extraPadding.left,
                                   bottom: window.padding.bottom + extraPadding.bottom,
                                   right: window.padding.right + extraPadding.right)
        return window
    }

    private func padded(shape: [Int]) -> [Int] {
        [shape[0], shape[1], shape[2] + extraPadding.top + extraPadding.bottom,
         shape[3] + extraPadding.left + extraPadding.right]
    }

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        var x = try required(inputs, 0, "X")
        x.shape = padded(shape: x.shape)
        x.constant = nil
        return try conv.inferOutputs([x] + inputs.dropFirst())
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try required(inputs, 0, "X"), w = try required(inputs, 1, "W")
        let b = inputs.count > 2 ? inputs[2] : nil
        if let prepared, x.shape == prepared.inputShape, let y = prepared(x) { return [y] }
        let g = try window(x, w)
        return [conv2D(x, filter: w, bias: b, strides: g.strides, padding: g.padding,
                       dilations: g.dilations, groups: conv.group, activation: activation)]
    }

    /// Prepares this convolution for input `x` when the filter and bias are constants.
    func preparing(x: ValueInfo, w: ValueInfo, b: ValueInfo?) -> FusedConvOperator {
        guard x.shape.count == 4, x.dtype == .float32, let filter = w.constant, filter.rank == 4 else { return self }
        if let b, b.constant == nil { return self }
        guard let g = try? window(inputShape: x.shape, filterShape: filter.shape) else { return self }
        var copy = self
        copy.prepared = PreparedConvolution(inputShape: x.shape, filter: filter, bias: b?.constant,
                                            strides: g.strides, padding: g.padding, dilations: g.dilations,
                                            groups: conv.group, activation: activation)
        return copy
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        let x = try required(inputs, 0, "X"), w = try required(inputs, 1, "W")
        guard let dy = outputGradients.first ?? nil, let y = outputs.first else { return [nil, nil, nil] }
        // The activation's derivative from its output: y > 0 exactly where x > 0 (ReLU), and
        // lo < y < hi exactly where lo < x < hi (Clip, as PyTorch's hardtanh backward).
        var dz = dy
        switch activation {
        case .none: break
        case .relu:
            switch context.reluRule {
            case .standard: dz = reluPullback(dy, input: y)
            case .guided: dz = guidedReluPullback(dy, input: y)
            case .deconvnet: dz = deconvnetReluPullback(dy)
            }
        case .clip(let lo, let hi):
            dz = clipPullback(dy, output: y, min: lo, max: hi)
        }
        func wants(_ i: Int) -> Bool { i < needed.count && needed[i] }
        let g = try window(x, w)
        // The input gradient through the prepared convolution's backward-data primitive when it
        // has one (its filter is the constant `w`), else with CAMKit's kernels.
        var dx: Tensor? = nil
        if wants(0), let prepared, x.shape == prepared.inputShape, dz.shape == prepared.outputShape {
            dx = prepared.inputGradient(dz)
        }
        let grads = conv2DPullback(x, filter: w, outputGradient: dz, strides: g.strides,
                                   padding: g.padding, dilations: g.dilations, groups: conv.group,
                                   needInput: wants(0) && dx == nil, needFilter: wants(1),
                                   needBias: inputs.count > 2 && inputs[2] != nil && wants(2))
        return [dx ?? grads.input, grads.filter, grads.bias]
    }
}

extension Specialiser {
    typealias RawStep = (nodeIndex: Int, op: any ONNXOperator, inputs: [Int?], outputs: [Int?])

    /// Merges `Pad → Conv → Relu/Clip` chains into single ``FusedConvOperator`` steps, and
    /// prepares every convolution with constant filter and bias (``PreparedConvolution``).
    ///
    /// A value is fused away only when exactly one step reads it, it is not a graph output and
    /// it is not in `preserved` (captures and gradient targets).
    func fuse(_ steps: [RawStep], slotInfos: [ValueInfo], slotNames: [String], outputSlots: Set<Int>,
              preserved: Set<String>) -> [RawStep] {
        var readers: [Int: Int] = [:]
        for step in steps { for case let s? in step.inputs { readers[s, default: 0] += 1 } }
        var producerStep: [Int: Int] = [:]
        for (i, step) in steps.enumerated() { for case let s? in step.outputs { producerStep[s] = i } }
        func fusible(_ slot: Int) -> Bool {
            readers[slot] == 1 && !outputSlots.contains(slot) && !preserved.contains(slotNames[slot])
        }

        var removed = Set<Int>()
        var result = steps
        for (i, step) in steps.enumerated() {
            guard let conv = step.op as? ConvOperator, slotInfos[step.outputs[0] ?? 0].shape.count == 4,
                  let xSlot = step.inputs[0] else { continue }
            var inputs = step.inputs
            var extra = Padding2D.zero
            // A zero Pad of H and W only, read by this convolution alone.
            if let p = producerStep[xSlot], !removed.contains(p), fusible(xSlot),
               let pads = zeroSpatialPads(steps[p], slotInfos: slotInfos) {
                extra = pads
                inputs[0] = steps[p].inputs[0]
                removed.insert(p)
            }
            var activation = FusedActivation.none
            var outputs = step.outputs
            if let y = step.outputs[0], fusible(y),
               let next = steps.indices.first(where: { j in j > i && steps[j].inputs.contains(y) }),
               let fused = activationOf(steps[next], slotInfos: slotInfos) {
                activation = fused
                outputs = steps[next].outputs
                removed.insert(next)
            }
            var fused = FusedConvOperator(conv: conv, extraPadding: extra, activation: activation)
            if inputs.count > 1, let x = inputs[0], let w = inputs[1] {
                let b = inputs.count > 2 ? inputs[2].map { slotInfos[$0] } : nil
                fused = fused.preparing(x: slotInfos[x], w: slotInfos[w], b: b)
            }
            if extra == .zero && activation == .none && fused.prepared == nil { continue }
            result[i] = (step.nodeIndex, fused, inputs, outputs)
        }
        return result.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    }

    /// The pads of a constant-zero `Pad` step that pads only the last two axes of a rank-4 tensor.
    private func zeroSpatialPads(_ step: RawStep, slotInfos: [ValueInfo]) -> Padding2D? {
        guard let pad = step.op as? PadOperator, pad.mode == "constant", pad.valueAttribute == 0 else { return nil }
        let inputInfos = step.inputs.map { $0.map { slotInfos[$0] } }
        guard let x = inputInfos.first ?? nil, x.shape.count == 4 else { return nil }
        let pads: [Int]
        if let attribute = pad.padsAttribute {
            pads = attribute
        } else {
            guard inputInfos.count > 1, let p = inputInfos[1]?.constant, p.dtype == .int64 else { return nil }
            if inputInfos.count > 2, let v = inputInfos[2] {
                guard let value = v.constant, value.count == 1, value.scalars[0] == 0 else { return nil }
            }
            if inputInfos.count > 3, inputInfos[3] != nil { return nil }  // explicit axes: keep it simple
            pads = p.int64s.map { Int($0) }
        }
        guard pads.count == 8, pads.allSatisfy({ $0 >= 0 }), pads[0] == 0, pads[1] == 0, pads[4] == 0, pads[5] == 0
        else { return nil }
        return Padding2D(top: pads[2], left: pads[3], bottom: pads[6], right: pads[7])
    }

    /// The fused form of a `Relu` step, or of a `Clip` step with constant bounds.
    func activationOf(_ step: RawStep, slotInfos: [ValueInfo]) -> FusedActivation? {
        if step.op is ReluOperator { return .relu }
        guard let clip = step.op as? ClipOperator else { return nil }
        if !clip.boundsAreInputs {
            return .clip(min: clip.attributeMin ?? -Float.infinity, max: clip.attributeMax ?? Float.infinity)
        }
        let bounds = step.inputs.dropFirst().map { $0.map { slotInfos[$0].constant } }
        var lo = -Float.infinity, hi = Float.infinity
        for (k, bound) in bounds.enumerated() {
            guard let bound else { continue }           // omitted input
            guard let value = bound, value.count == 1 else { return nil }  // not a constant
            if k == 0 { lo = value.scalars[0] } else { hi = value.scalars[0] }
        }
        return .clip(min: lo, max: hi)
    }
}
