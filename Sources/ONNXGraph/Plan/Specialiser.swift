import TensorCore

/// Turns a graph plus concrete input shapes into an ``ExecutionPlan``'s parts.
///
/// 1. Orders the nodes topologically (files are usually sorted already; this checks it).
/// 2. Binds every declared dimension of the inputs to the given shapes.
/// 3. Walks the nodes: a node whose inputs are all constant is run now and its outputs become
///    constants (this removes the Shape/Gather/Concat/… chains exporters emit); the others get
///    their output shapes from ``ONNXOperator/inferOutputs(_:)`` and become steps.
/// 4. Drops steps that do not contribute to a graph output and computes each slot's last reader.
struct Specialiser {
    let graph: GraphDefinition
    let inputShapes: [[Int]]
    var constantInputs: [Int: Tensor] = [:]
    /// Values that must stay observable (captures, gradient targets): never fused away.
    var preserved: Set<String> = []

    struct Result {
        var steps: [ExecutionPlan.Step]
        var slotOfValue: [String: Int]
        var slotNames: [String]
        var slotInfos: [ValueInfo]
        var producer: [Int: Int]
        var inputSlots: [Int]
        var outputSlots: [Int]
    }

    func run() throws -> Result {
        let order = try topologicalOrder()
        var known: [String: ValueInfo] = [:]
        for (name, t) in graph.initializers { known[name] = ValueInfo(constant: t) }
        try bindInputs(into: &known)

        struct Pending { let nodeIndex: Int; let op: any ONNXOperator }
        var pending: [Pending] = []
        for index in order {
            let node = graph.nodes[index]
            guard let type = OperatorRegistry.operatorType(opType: node.opType, domain: node.domain) else {
                throw ONNXGraphError.unsupportedOperator(
                    opType: node.opType, domain: node.domain.isEmpty ? "ai.onnx" : node.domain,
                    opset: graph.opset, node: node.name, supported: OperatorRegistry.supportedOpTypes)
            }
            let op: any ONNXOperator
            let infos: [ValueInfo?]
            do {
                op = try type.init(node: node, opset: graph.opset)
                infos = try node.inputs.map { name -> ValueInfo? in
                    if name.isEmpty { return nil }
                    guard let info = known[name] else {
                        throw ONNXGraphError.undefinedValue(name: name, node: node.name)
                    }
                    return info
                }
            } catch let error as OperatorError {
                throw ONNXGraphError.invalidNode(name: node.name, opType: node.opType, reason: error.message)
            }
            let present = infos.compactMap { $0 }
            var outputs: [ValueInfo]
            do {
                if present.allSatisfy({ $0.constant != nil }) {
                    let values = try op.run(infos.map { $0?.constant })
                    outputs = values.map { ValueInfo(constant: $0) }
                } else {
                    outputs = try op.inferOutputs(infos)
                }
            } catch let error as OperatorError {
                throw ONNXGraphError.invalidNode(name: node.name, opType: node.opType, reason: error.message)
            }
            guard outputs.count >= node.outputs.filter({ !$0.isEmpty }).count || outputs.count >= node.outputs.count else {
                throw ONNXGraphError.invalidNode(
                    name: node.name, opType: node.opType,
                    reason: "produces \(outputs.count) outputs but the node names \(node.outputs.count)")
            }
            for (k, name) in node.outputs.enumerated() where !name.isEmpty && k < outputs.count {
                known[name] = outputs[k]
            }
            if !outputs.allSatisfy({ $0.constant != nil }) {
                pending.append(Pending(nodeIndex: index, op: op))
            }
        }

        // Keep only the steps that the graph outputs depend on.
        var producerOfName: [String: Int] = [:]
        for (p, item) in pending.enumerated() {
            for name in graph.nodes[item.nodeIndex].outputs where !name.isEmpty { producerOfName[name] = p }
        }
        var live = Set<Int>()
        var stack: [Int] = []
        for name in graph.outputs {
            guard known[name] != nil else { throw ONNXGraphError.undefinedValue(name: name, node: "graph output") }
            if let p = producerOfName[name] { stack.append(p) }
        }
        while let p = stack.popLast() {
            guard live.insert(p).inserted else { continue }
            for name in graph.nodes[pending[p].nodeIndex].inputs where !name.isEmpty {
                if let q = producerOfName[name] { stack.append(q) }
            }
        }

        // Slots: graph inputs, then constants and computed values as steps reference them.
        var result = Result(steps: [], slotOfValue: [:], slotNames: [], slotInfos: [], producer: [:],
                            inputSlots: [], outputSlots: [])
        func slot(_ name: String) -> Int {
            if let s = result.slotOfValue[name] { return s }
            let s = result.slotNames.count
            result.slotOfValue[name] = s
            result.slotNames.append(name)
            result.slotInfos.append(known[name]!)  // every referenced name was checked above
            return s
        }
        result.inputSlots = graph.inputs.map { slot($0.name) }
        var rawSteps: [RawStep] = []
        for (p, item) in pending.enumerated() where live.contains(p) {
            let node = graph.nodes[item.nodeIndex]
            let ins = node.inputs.map { $0.isEmpty ? nil : slot($0) }
            let outs = node.outputs.map { $0.isEmpty || known[$0] == nil ? nil : slot($0) }
            rawSteps.append((item.nodeIndex, item.op, ins, outs))
        }
        result.outputSlots = graph.outputs.map { slot($0) }
        rawSteps = fuse(rawSteps, slotInfos: result.slotInfos, slotNames: result.slotNames,
                        outputSlots: Set(result.outputSlots), preserved: preserved)
        for (i, step) in rawSteps.enumerated() {
            for case let s? in step.outputs { result.producer[s] = i }
        }

        // Lifetimes: a computed slot is released after its last reader, unless it is an output.
        var lastReader: [Int: Int] = [:]
        for (i, step) in rawSteps.enumerated() {
            for case let s? in step.inputs { lastReader[s] = i }
        }
        let kept = Set(result.outputSlots)
        var releases = [[Int]](repeating: [], count: rawSteps.count)
        for (s, i) in lastReader where result.producer[s] != nil && !kept.contains(s) {
            releases[i].append(s)
        }
        result.steps = rawSteps.enumerated().map { i, raw in
            ExecutionPlan.Step(nodeIndex: raw.nodeIndex, op: raw.op, inputs: raw.inputs, outputs: raw.outputs,
                               releases: releases[i])
        }
        return result
    }

    /// Checks the given shapes against the declared inputs and records them.
    private func bindInputs(into known: inout [String: ValueInfo]) throws {
        guard inputShapes.count == graph.inputs.count else {
            throw ONNXGraphError.inputCountMismatch(expected: graph.inputs.map(\.name), got: inputShapes.count)
        }
        var bound: [String: Int] = [:]
        for (index, (input, shape)) in zip(graph.inputs, inputShapes).enumerated() {
            let dims = input.dimensions
            if !dims.isEmpty {
                guard dims.count == shape.count else {
                    throw ONNXGraphError.inputShapeMismatch(input: input.name, expected: dims, got: shape)
                }
                for (d, extent) in zip(dims, shape) {
                    switch d {
                    case .fixed(let v) where v != extent:
                        throw ONNXGraphError.inputShapeMismatch(input: input.name, expected: dims, got: shape)
                    case .symbolic(let name):
                        if let previous = bound[name], previous != extent {
                            throw ONNXGraphError.inputShapeMismatch(input: input.name, expected: dims, got: shape)
                        }
                        bound[name] = extent
                    default: break
                    }
                }
            }
            if let value = constantInputs[index] {
                known[input.name] = ValueInfo(constant: value)
            } else {
                known[input.name] = ValueInfo(shape: shape, dtype: input.dtype)
            }
        }
    }

    /// Node indices in an order where every node comes after the producers of its inputs.
    private func topologicalOrder() throws -> [Int] {
        var producer: [String: Int] = [:]
        for (i, node) in graph.nodes.enumerated() {
            for name in node.outputs where !name.isEmpty { producer[name] = i }
        }
        var state = [UInt8](repeating: 0, count: graph.nodes.count)  // 0 new, 1 visiting, 2 done
        var order: [Int] = []
        order.reserveCapacity(graph.nodes.count)
        for root in graph.nodes.indices where state[root] == 0 {
            // Iterative depth-first search (graphs can be thousands of nodes deep).
            var stack: [(node: Int, next: Int)] = [(root, 0)]
            state[root] = 1
            while let top = stack.last {
                let inputs = graph.nodes[top.node].inputs
                if top.next < inputs.count {
                    stack[stack.count - 1].next += 1
                    let name = inputs[top.next]
                    guard !name.isEmpty, let p = producer[name] else { continue }
                    if state[p] == 1 {
                        throw ONNXGraphError.invalidNode(name: graph.nodes[p].name, opType: graph.nodes[p].opType,
                                                         reason: "the graph has a cycle through '\(name)'")
                    }
                    if state[p] == 0 {
                        state[p] = 1
                        stack.append((p, 0))
                    }
                } else {
                    state[top.node] = 2
                    order.append(top.node)
                    stack.removeLast()
                }
            }
        }
        return order
    }
}
