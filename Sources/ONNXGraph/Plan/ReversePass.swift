import TensorCore

/// The result of a forward pass followed by a reverse pass.
public struct GradientResult: Sendable {
    /// The forward pass (outputs and captures).
    public var forward: ForwardResult
    /// d(score)/d(value) for every requested value name, shaped like the value.
    public var gradients: [String: Tensor]
    /// Wall time of the forward part (every value the reverse pass reads retained), seeding included.
    public var forwardDuration: Duration = .zero
    /// Wall time of the reverse part: the pullbacks from the seeds back to the requested values.
    public var reverseDuration: Duration = .zero
}

extension ExecutionPlan {
    /// Runs the model forward, then propagates a gradient from the outputs back to `values`.
    ///
    /// Only the steps that lie between a requested value and an output are differentiated, and no
    /// weight gradients are formed unless a weight is requested.
    ///
    /// - Parameters:
    ///   - inputs: one tensor per graph input.
    ///   - capturing: tensor names whose forward values to return.
    ///   - values: tensor names to differentiate with respect to (graph inputs or intermediate values).
    ///   - context: activation gradient rules (guided backprop, deconvnet).
    ///   - seed: given the outputs, d(score)/d(output) for each output (`nil`: the score does not
    ///     depend on it). For a class score `y[b, c]` summed over the batch that is a one-hot tensor.
    /// - Throws: ``ONNXGraphError`` for unknown names or a node without a pullback on the path.
    public func gradients(
        _ inputs: [Tensor], capturing: [String] = [], withRespectTo values: [String],
        context: PullbackContext = PullbackContext(),
        seed: ([Tensor]) throws -> [Tensor?]
    ) throws -> GradientResult {
        try reversePass(inputs, capturing: capturing, withRespectTo: values, context: context,
                        reverseRegions: true) { forward in
            let seeds = try seed(forward.outputs)
            guard seeds.count == outputSlots.count else {
                throw ONNXGraphError.invalidNode(name: "reverse pass", opType: "seed",
                                                 reason: "the seed gave \(seeds.count) gradients for \(outputSlots.count) outputs")
            }
            return zip(outputSlots, seeds).compactMap { s, g in g.map { (s, $0) } }
        }
    }

    /// Runs the model forward, then propagates gradients seeded at arbitrary values of the graph
    /// (intermediate values or outputs) back to `values`.
    ///
    /// This is the reverse pass of ``gradients(_:capturing:withRespectTo:context:seed:)`` with the
    /// seed placed on any value instead of the outputs: the result is the vector-Jacobian product
    /// `Σ_v ⟨seed_v, ∂v/∂x⟩` for each requested `x`. Deconvnet reconstructions (Zeiler & Fergus
    /// 2014) seed one activation of an intermediate layer this way. Only the steps between a
    /// requested value and a seeded value are differentiated.
    ///
    /// A seeded intermediate value must be kept observable through kernel fusion: make the plan with
    /// ``ModelGraph/plan(forInputShapes:preserving:)`` including its name.
    ///
    /// - Parameters:
    ///   - inputs: one tensor per graph input.
    ///   - capturing: tensor names whose forward values to return (and to pass to `seeding`).
    ///   - values: tensor names to differentiate with respect to (graph inputs or intermediate values).
    ///   - context: activation gradient rules (guided backprop, deconvnet).
    ///   - seeding: given the forward pass (outputs and captures), the gradient placed on each
    ///     seeded value, by tensor name, shaped like the value. Values not named get no seed.
    /// - Throws: ``ONNXGraphError`` for unknown (or fused-away) names, a seed whose shape differs
    ///   from its value's, or a node without a pullback on the path.
    public func gradients(
        _ inputs: [Tensor], capturing: [String] = [], withRespectTo values: [String],
        context: PullbackContext = PullbackContext(),
        seeding: (ForwardResult) throws -> [String: Tensor]
    ) throws -> GradientResult {
        // Seeds may lie on any value, so no region with a pullback hides one.
        try reversePass(inputs, capturing: capturing, withRespectTo: values, context: context,
                        reverseRegions: false) { forward in
            try seeding(forward).sorted { $0.key < $1.key }.map { name, gradient in
                let s = try slot(of: name)
                guard gradient.shape == slotInfos[s].shape, gradient.dtype == .float32 else {
                    throw ONNXGraphError.invalidNode(
                        name: "reverse pass", opType: "seed",
                        reason: "the seed of '\(name)' has shape \(gradient.shape) (\(gradient.dtype)), the value has \(slotInfos[s].shape) (float32): give a float32 gradient shaped like the value")
                }
                return (s, gradient)
            }
        }
    }

    /// Runs the model forward, then propagates gradients seeded at arbitrary values back to
    /// `values`: the seeding variant above with the seeds given up front.
    /// - Parameter seeds: the gradient placed on each seeded value, by tensor name, shaped like the
    ///   value (the plan must preserve intermediate seeded values, see above).
    /// - Throws: ``ONNXGraphError`` for unknown (or fused-away) names, a seed of the wrong shape, or
    ///   a node without a pullback on the path.
    public func gradients(
        _ inputs: [Tensor], capturing: [String] = [], withRespectTo values: [String],
        context: PullbackContext = PullbackContext(),
        seeding seeds: [String: Tensor]
    ) throws -> GradientResult {
        try gradients(inputs, capturing: capturing, withRespectTo: values, context: context) { _ in seeds }
    }

    /// The shared reverse pass: forward with every value retained, seeds from `seeds` (slot,
    /// gradient) accumulated, then the pullbacks of the steps on a path from `values`, in reverse.
    /// `reverseRegions`: whether the differentiated steps may run in channels-last regions with a
    /// pullback (ChannelsLastRegionReverse.swift), which hide their inner values.
    private func reversePass(
        _ inputs: [Tensor], capturing: [String], withRespectTo values: [String], context: PullbackContext,
        reverseRegions: Bool, seeds: (ForwardResult) throws -> [(slot: Int, gradient: Tensor)]
    ) throws -> GradientResult {
        let targets = try values.map { try slot(of: $0) }
        let captureSlots = try capturing.map { try slot(of: $0) }
        // Only the steps that depend on a target need a pullback; the others may run in
        // channels-last inference regions in the forward part, the differentiated ones in regions
        // with a pullback.
        let (plainOnPath, dependent) = differentiatedSteps(from: targets)
        let (steps, onPath) = gradientSteps(capturing: captureSlots, differentiating: plainOnPath, targets: targets,
                                            reverseRegions: reverseRegions)

        let clock = ContinuousClock()
        let forwardStart = clock.now
        var forward = try execute(inputs, capturing: capturing, retainAll: true, stepList: steps)
        var slots = forward.retained
        var tapes = forward.tapes
        forward.retained = []  // `slots` and `tapes` hold the only references: values are dropped below
        forward.tapes = [:]

        // Each retained value is dropped once the last step (in reverse order) that reads it has
        // been differentiated — values no pullback reads right away — so their buffers return to
        // the pool for the gradients that follow (fewer fresh pages, lower peak memory).
        var releaseAfter = [[Int]](repeating: [], count: steps.count)
        var read = [Bool](repeating: false, count: slots.count)
        for (i, step) in steps.enumerated() where onPath[i] {
            for case let s? in step.inputs + step.outputs where s < read.count && !read[s] {
                read[s] = true
                releaseAfter[i].append(s)
            }
        }
        for s in slots.indices where !read[s] { slots[s] = nil }

        var grads = [Tensor?](repeating: nil, count: slotInfos.count)
        let visible = ForwardResult(outputs: forward.outputs, captures: forward.captures, retained: [])
        for (s, g) in try seeds(visible) { accumulate(g, into: &grads[s]) }
        let reverseStart = clock.now

        for i in steps.indices.reversed() where onPath[i] {
            defer { for s in releaseAfter[i] { slots[s] = nil } }
            let step = steps[i]
            let outGrads = step.outputs.map { $0.flatMap { grads[$0] } }
            guard outGrads.contains(where: { $0 != nil }) else { continue }
            let node = graph.nodes[step.nodeIndex]
            let needed = step.inputs.map { $0.map { dependent.contains($0) && slotInfos[$0].dtype == .float32 } ?? false }
            let inGrads: [Tensor?]
            if let region = step.op as? ChannelsLastRegionOperator {
                guard let tape = tapes.removeValue(forKey: i),
                      let g = region.pullback(tape: tape, outputGradients: outGrads, needed: needed,
                                              reluRule: ReLUGradientRule(context.reluRule))
                else {
                    throw ONNXGraphError.invalidNode(name: region.summary, opType: "ChannelsLastRegion",
                                                     reason: "oneDNN failed in the reverse pass (out of memory?): lower the batch size")
                }
                inGrads = g
            } else {
                guard let op = step.op as? any DifferentiableOperator else {
                    throw ONNXGraphError.invalidNode(name: node.name, opType: node.opType,
                                                     reason: "CAMKit has no gradient for \(node.opType) yet, and it lies between the requested layer and the output")
                }
                let ins = step.inputs.map { $0.flatMap { slots[$0] } }
                let outs = step.outputs.map { $0.flatMap { slots[$0] } ?? Tensor(zeros: []) }
                do {
                    inGrads = try op.pullback(inputs: ins, outputs: outs, outputGradients: outGrads, needed: needed,
                                              context: context)
                } catch let error as OperatorError {
                    throw ONNXGraphError.invalidNode(name: node.name, opType: node.opType, reason: error.message)
                }
            }
            for (k, s) in step.inputs.enumerated() {
                guard let s, needed[k], k < inGrads.count, let g = inGrads[k] else { continue }
                accumulate(g, into: &grads[s])
            }
            // Free what no earlier step can need.
            for case let s? in step.outputs where !targets.contains(s) { grads[s] = nil }
        }
        slots.removeAll()

        var result: [String: Tensor] = [:]
        for (name, s) in zip(values, targets) {
            result[name] = grads[s] ?? Tensor(zeros: slotInfos[s].shape)
        }
        return GradientResult(forward: ForwardResult(outputs: forward.outputs, captures: forward.captures, retained: []),
                              gradients: result, forwardDuration: reverseStart - forwardStart,
                              reverseDuration: clock.now - reverseStart)
    }
}

extension ExecutionPlan {
    /// The steps a reverse pass to the slots `targets` differentiates — those reading a value that
    /// depends on a target — and the slots that depend on a target (the targets included).
    func differentiatedSteps(from targets: [Int]) -> (onPath: [Bool], dependent: Set<Int>) {
        var dependent = Set(targets)
        var onPath = [Bool](repeating: false, count: steps.count)
        for (i, step) in steps.enumerated() where step.inputs.contains(where: { $0.map(dependent.contains) ?? false }) {
            onPath[i] = true
            for case let s? in step.outputs { dependent.insert(s) }
        }
        return (onPath, dependent)
    }
}

/// Adds `gradient` into an accumulator slot (taking it as is when the slot is empty; in place,
/// split over the worker threads, when it is not).
func accumulate(_ gradient: Tensor, into slot: inout Tensor?) {
    guard var total = slot else {
        slot = gradient
        return
    }
    slot = nil  // `total` is now the only reference: summed in place
    accumulate(gradient, into: &total)
    slot = total
}
