import Dispatch
import TensorCore

/// The values one forward pass produced.
public struct ForwardResult: Sendable {
    /// The graph outputs, in the model's order.
    public var outputs: [Tensor]
    /// The captured intermediate tensors, by the tensor name they were requested with.
    public var captures: [String: Tensor]
    /// Every value the pass kept for a reverse pass, by slot (empty unless requested).
    var retained: [Tensor?]
    /// What each channels-last region with a pullback recorded, by step index (see `retained`).
    var tapes: [Int: ChannelsLastTape] = [:]
}

extension ExecutionPlan {
    /// Runs the plan.
    ///
    /// - Parameters:
    ///   - inputs: one tensor per graph input, of the shapes the plan was made for.
    ///   - capturing: tensor names (see ``ModelGraph/resolveLayer(_:)`` to turn module paths into
    ///     names) whose values are returned in ``ForwardResult/captures``.
    /// - Throws: ``ONNXGraphError`` for inputs of the wrong count, shape or dtype, or a kernel's
    ///   failure (naming the node).
    public func run(_ inputs: [Tensor], capturing: [String] = []) throws -> ForwardResult {
        try execute(inputs, capturing: capturing, retainAll: false)
    }

    /// The slot of a value, or a thrown error listing similar names.
    func slot(of name: String) throws -> Int {
        guard let s = slotOfValue[name] else {
            throw ONNXGraphError.unknownValue(name: name, suggestions: closestNames(to: name, in: Array(slotOfValue.keys)))
        }
        guard producer[s] != nil || inputSlots.contains(s) || slotInfos[s].constant != nil else {
            throw ONNXGraphError.unknownValue(
                name: name + " (merged into a fused kernel by this plan: make the plan with preserving: [\"\(name)\"])",
                suggestions: [])
        }
        return s
    }

    /// The time one kernel of the plan takes, as measured by ``profile(_:runs:)``.
    public struct StepTiming: Sendable {
        /// The ONNX node's name and op type (a fused kernel reports its convolution). Inside a
        /// channels-last region, the node (or for a layout conversion, the value) of one
        /// instruction and what it runs, e.g. `"Conv+Add+Relu (NHWC)"` or `"NCHW→NHWC"`.
        public var nodeName: String
        public var opType: String
        /// The shape of the kernel's first output.
        public var outputShape: [Int]
        /// The median over the runs, in milliseconds.
        public var milliseconds: Double
    }

    /// Runs the plan `runs` times and returns each kernel's median time, in plan order (the basis
    /// of `camkit benchmark --profile`); a channels-last region reports each of its instructions
    /// (convolutions with their fused sums and activations, poolings, layout conversions). Times
    /// are collected in memory and nothing is printed between kernels, so the pool's workers stay
    /// as warm as in an unprofiled run.
    public func profile(_ inputs: [Tensor], runs: Int = 1) throws -> [StepTiming] {
        struct Key: Hashable { let step: Int; let instruction: Int? }
        var order: [Key] = []
        var samples: [Key: [UInt64]] = [:]
        for _ in 0..<max(1, runs) {
            _ = try execute(inputs, capturing: [], retainAll: false) { step, instruction, nanoseconds in
                let key = Key(step: step, instruction: instruction)
                if samples[key] == nil { order.append(key) }
                samples[key, default: []].append(nanoseconds)
            }
        }
        let steps = inferenceSteps
        return order.map { key in
            let times = samples[key, default: [0]].sorted()
            let milliseconds = Double(times[times.count / 2]) / 1e6
            let step = steps[key.step]
            let node = graph.nodes[step.nodeIndex]
            let shape = step.outputs.first.flatMap { $0 }.map { slotInfos[$0].shape } ?? []
            guard let region = step.op as? ChannelsLastRegionOperator else {
                return StepTiming(nodeName: node.name, opType: node.opType, outputShape: shape,
                                  milliseconds: milliseconds)
            }
            guard let i = key.instruction else {
                return StepTiming(nodeName: region.summary, opType: "ChannelsLastRegion", outputShape: shape,
                                  milliseconds: milliseconds)
            }
            let label = region.labels[i]
            let isConversion = label.kind.contains("→")
            return StepTiming(nodeName: label.name, opType: isConversion ? label.kind : label.kind + " (NHWC)",
                              outputShape: label.shape, milliseconds: milliseconds)
        }
    }

    /// The forward pass. `retainAll` keeps every value (for a reverse pass), and the tapes of the
    /// regions with a pullback; `stepList` replaces the plan's choice of steps
    /// (``forwardSteps(capturing:)``, or the plain ``steps`` when retaining).
    func execute(_ inputs: [Tensor], capturing: [String], retainAll: Bool, stepList: [Step]? = nil,
                 timing: ((_ step: Int, _ instruction: Int?, _ nanoseconds: UInt64) -> Void)? = nil) throws -> ForwardResult {
        guard inputs.count == inputSlots.count else {
            throw ONNXGraphError.inputCountMismatch(expected: graph.inputs.map(\.name), got: inputs.count)
        }
        var slots = [Tensor?](repeating: nil, count: slotInfos.count)
        for (s, info) in slotInfos.enumerated() where info.constant != nil { slots[s] = info.constant }
        for (k, s) in inputSlots.enumerated() {
            let t = inputs[k]
            if let value = slotInfos[s].constant {
                // An integer input the plan was specialised for (see ModelGraph.plan(for:)).
                guard t == value else {
                    throw ONNXGraphError.invalidNode(
                        name: graph.inputs[k].name, opType: "input",
                        reason: "this plan was specialised for another value of this integer input; use ModelGraph.run, which picks the plan")
                }
                continue
            }
            guard t.shape == slotInfos[s].shape else {
                throw ONNXGraphError.inputShapeMismatch(
                    input: graph.inputs[k].name, expected: slotInfos[s].shape.map { .fixed($0) }, got: t.shape)
            }
            guard t.dtype == slotInfos[s].dtype else {
                throw ONNXGraphError.inputTypeMismatch(input: graph.inputs[k].name, expected: slotInfos[s].dtype, got: t.dtype)
            }
            slots[s] = t
        }
        let captureSlots = try capturing.map { try slot(of: $0) }
        let keep = Set(captureSlots)
        let plan = stepList ?? (retainAll ? steps : forwardSteps(capturing: captureSlots))
        var tapes: [Int: ChannelsLastTape] = [:]
        for (index, step) in plan.enumerated() {
            let args = step.inputs.map { $0.flatMap { slots[$0] } }
            let node = graph.nodes[step.nodeIndex]
            let results: [Tensor]
            let start = timing == nil ? 0 : DispatchTime.now().uptimeNanoseconds
            do {
                if retainAll, let region = step.op as? ChannelsLastRegionOperator, region.reverse != nil {
                    guard let (outputs, tape) = region.runRecording(args) else {
                        throw OperatorError("oneDNN failed in the channels-last region \(region.summary) (out of memory?): lower the batch size")
                    }
                    results = outputs
                    tapes[index] = tape
                } else if let timing, let region = step.op as? ChannelsLastRegionOperator {
                    // Timed instruction by instruction; if oneDNN fails, the member steps as one.
                    var noTape: ChannelsLastTape? = nil
                    if let outputs = region.runChannelsLast(args, recording: &noTape, timing: { timing(index, $0, $1) }) {
                        results = outputs
                    } else {
                        results = try step.op.run(args)
                        timing(index, nil, DispatchTime.now().uptimeNanoseconds - start)
                    }
                } else {
                    results = try step.op.run(args)
                    if let timing { timing(index, nil, DispatchTime.now().uptimeNanoseconds - start) }
                }
            } catch let error as OperatorError {
                throw ONNXGraphError.invalidNode(name: node.name, opType: node.opType, reason: error.message)
            }
            for (k, s) in step.outputs.enumerated() {
                if let s, k < results.count { slots[s] = results[k] }
            }
            if !retainAll {
                for s in step.releases where !keep.contains(s) { slots[s] = nil }
            }
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
        return ForwardResult(outputs: outputs, captures: captures, retained: retainAll ? slots : [], tapes: tapes)
    }
}

/// Up to `limit` names from `candidates` closest to `name` by edit distance (for "did you mean").
func closestNames(to name: String, in candidates: [String], limit: Int = 5) -> [String] {
    let target = Array(name.lowercased())
    func distance(_ other: String) -> Int {
        let b = Array(other.lowercased())
        if target.isEmpty { return b.count }
        var previous = Array(0...b.count)
        for (i, ca) in target.enumerated() {
            var current = [i + 1] + [Int](repeating: 0, count: b.count)
            for (j, cb) in b.enumerated() {
                current[j + 1] = Swift.min(previous[j + 1] + 1, current[j] + 1, previous[j] + (ca == cb ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
    return candidates
        .map { ($0, distance($0)) }
        .sorted { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0 < $1.0 }
        .prefix(limit)
        .map(\.0)
}
