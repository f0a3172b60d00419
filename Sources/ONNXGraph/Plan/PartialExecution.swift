import TensorCore

extension ExecutionPlan {
    /// Runs the plan with some intermediate values replaced, skipping the steps that only served to
    /// compute them.
    ///
    /// This is what occlusion-style explanations (AblationCAM) need: the network *after* a layer,
    /// fed with edited copies of that layer's output, without recomputing everything before it.
    /// A step runs only if a graph output or a captured value depends on it through values that are
    /// not overridden; every other step is skipped. Steps that still read the graph input (a skip
    /// connection around the overridden layer) run as usual, so `inputs` must always be given.
    ///
    /// ```swift
    /// let plan = try model.plan(forInputShapes: [[32, 3, 224, 224]])
    /// let layer = try model.resolveLayer("layer4")
    /// let result = try plan.run([batch], overriding: [layer: ablatedActivations])
    /// ```
    ///
    /// - Parameters:
    ///   - inputs: one tensor per graph input, of the shapes the plan was made for.
    ///   - overrides: tensor name → the value to use instead of computing it. Each value must have
    ///     the shape and dtype the plan infers for that tensor (``info(ofValue:)``).
    ///   - capturing: tensor names whose values to return in ``ForwardResult/captures``.
    /// - Returns: the graph outputs computed from the overridden values.
    /// - Throws: ``ONNXGraphError/unknownValue(name:suggestions:)`` for a name the plan does not
    ///   have, ``ONNXGraphError/invalidNode(name:opType:reason:)`` for an override of the wrong shape
    ///   or dtype, and the errors of ``run(_:capturing:)``.
    public func run(_ inputs: [Tensor], overriding overrides: [String: Tensor],
                    capturing: [String] = []) throws -> ForwardResult {
        guard inputs.count == inputSlots.count else {
            throw ONNXGraphError.inputCountMismatch(expected: graph.inputs.map(\.name), got: inputs.count)
        }
        var slots = [Tensor?](repeating: nil, count: slotInfos.count)
        for (s, info) in slotInfos.enumerated() where info.constant != nil { slots[s] = info.constant }
        for (k, s) in inputSlots.enumerated() {
            let t = inputs[k]
            guard t.shape == slotInfos[s].shape else {
                throw ONNXGraphError.inputShapeMismatch(
                    input: graph.inputs[k].name, expected: slotInfos[s].shape.map { .fixed($0) }, got: t.shape)
            }
            guard t.dtype == slotInfos[s].dtype else {
                throw ONNXGraphError.inputTypeMismatch(input: graph.inputs[k].name, expected: slotInfos[s].dtype, got: t.dtype)
            }
            slots[s] = t
        }
        var overridden = Set<Int>()
        for (name, value) in overrides {
            let s = try slot(of: name)
            guard value.shape == slotInfos[s].shape, value.dtype == slotInfos[s].dtype else {
                throw ONNXGraphError.invalidNode(
                    name: name, opType: "override",
                    reason: "the replacement is \(value.dtype)\(value.shape) but the plan computes \(slotInfos[s].dtype)\(slotInfos[s].shape)")
            }
            slots[s] = value
            overridden.insert(s)
        }
        let captureSlots = try capturing.map { try slot(of: $0) }
        let keep = Set(captureSlots)

        // The steps the outputs and captures need, stopping at overridden values.
        var needed = [Bool](repeating: false, count: steps.count)
        var stack = (outputSlots + captureSlots).filter { !overridden.contains($0) }.compactMap { producer[$0] }
        while let i = stack.popLast() {
            guard !needed[i] else { continue }
            needed[i] = true
            for case let s? in steps[i].inputs where !overridden.contains(s) {
                if let p = producer[s] { stack.append(p) }
            }
        }

        for (i, step) in steps.enumerated() where needed[i] {
            let args = step.inputs.map { $0.flatMap { slots[$0] } }
            let node = graph.nodes[step.nodeIndex]
            let results: [Tensor]
            do {
                results = try step.op.run(args)
            } catch let error as OperatorError {
                throw ONNXGraphError.invalidNode(name: node.name, opType: node.opType, reason: error.message)
            }
            for (k, s) in step.outputs.enumerated() {
                if let s, k < results.count, !overridden.contains(s) { slots[s] = results[k] }
            }
            for s in step.releases where !keep.contains(s) && !overridden.contains(s) { slots[s] = nil }
        }
        var captures: [String: Tensor] = [:]
        for (name, s) in zip(capturing, captureSlots) { captures[name] = slots[s] }
        var outputs: [Tensor] = []
        for s in outputSlots {
            guard let t = slots[s] else {
                throw ONNXGraphError.undefinedValue(name: slotNames[s], node: "graph output")
            }
            outputs.append(t)
        }
        return ForwardResult(outputs: outputs, captures: captures, retained: [])
    }
}
