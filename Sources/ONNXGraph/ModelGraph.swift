import Foundation
import Synchronization
import TensorCore

/// A layer of a model as users name it, for the layer preview and for choosing CAM target layers.
public struct LayerInfo: Sendable, Equatable {
    /// The PyTorch module path (`"layer4.2"`), or the node name when the exporter recorded none.
    public var path: String
    /// The op type of the node producing the layer's output.
    public var opType: String
    /// The ONNX tensor name of the layer's output.
    public var tensor: String
    /// The output's shape for the input shapes the listing was made for.
    public var shape: [Int]
}

/// An executable model graph: the imported ONNX model plus a cache of plans specialised per
/// input shape.
///
/// ```swift
/// let model = try ModelGraph(contentsOf: URL(fileURLWithPath: "resnet50.onnx"))
/// let tensor = try model.resolveLayer("layer4")          // "/layer4/layer4.2/relu_2/Relu_output_0"
/// let result = try model.run([input], capturing: [tensor])
/// let logits = result.outputs[0], activations = result.captures[tensor]!
/// ```
public final class ModelGraph: Sendable {
    let definition: GraphDefinition
    /// Module path → output tensor and producing node.
    let moduleOutputs: [String: (tensor: String, nodeIndex: Int)]
    private let plans = Mutex<[PlanKey: ExecutionPlan]>([:])

    /// What a plan is specialised for: the input shapes and the values of integer inputs.
    private struct PlanKey: Hashable {
        var shapes: [[Int]]
        var integerInputs: [Int: [Int64]]
        var preserved: Set<String>
    }

    /// The model's real inputs (initializers excluded), in order.
    public var inputs: [GraphValue] { definition.inputs }
    /// The names of the model's outputs, in order.
    public var outputNames: [String] { definition.outputs }
    /// The opset version of the default ONNX domain.
    public var opset: Int { definition.opset }
    /// The graph's nodes, in file order.
    public var nodes: [Node] { definition.nodes }

    /// Loads an ONNX model file.
    /// - Throws: ``ONNXGraphError`` naming the file and the problem (missing, not ONNX, unsupported
    ///   opset or operator...).
    public convenience init(contentsOf url: URL) throws {
        try self.init(model: ONNXModel(contentsOf: url))
    }

    /// Makes an imported model executable.
    /// - Throws: ``ONNXGraphError/unsupportedOperator(opType:domain:opset:node:supported:)`` for the
    ///   first node CAMKit cannot run.
    public convenience init(model: ONNXModel) throws {
        try model.checkOperatorsSupported()
        self.init(definition: GraphDefinition(
            nodes: model.nodes, initializers: model.initializers, inputs: model.inputs,
            outputs: model.outputs.map(\.name), opset: model.opset))
    }

    init(definition: GraphDefinition) {
        self.definition = definition
        self.moduleOutputs = LayerNaming.moduleOutputs(of: definition.nodes)
    }

    /// The plan for the given input shapes, made on first use and cached.
    /// - Throws: ``ONNXGraphError`` when the shapes do not fit the model or a node cannot run.
    /// - Parameter preserving: tensor names to keep observable (to capture or differentiate);
    ///   kernel fusion merges other intermediate values away.
    public func plan(forInputShapes shapes: [[Int]], preserving: Set<String> = []) throws -> ExecutionPlan {
        try plan(shapes: shapes, integerInputs: [:], preserving: preserving)
    }

    /// The plan for concrete inputs: their shapes, and the values of Int64/Bool inputs and of
    /// scalar (rank-0) inputs, which usually describe shapes (a reshape target, a range's bounds)
    /// and are folded as constants — a plan is made per distinct value.
    public func plan(for inputs: [Tensor], preserving: Set<String> = []) throws -> ExecutionPlan {
        var integers: [Int: Tensor] = [:]
        for (i, t) in inputs.enumerated() where t.dtype != .float32 || t.rank == 0 { integers[i] = t }
        return try plan(shapes: inputs.map(\.shape), integerInputs: integers, preserving: preserving)
    }

    private func plan(shapes: [[Int]], integerInputs: [Int: Tensor], preserving: Set<String>) throws -> ExecutionPlan {
        let key = PlanKey(shapes: shapes, integerInputs: integerInputs.mapValues { $0.dtype == .float32 ? $0.scalars.map { Int64($0.bitPattern) } : $0.int64s }, preserved: preserving)
        if let cached = plans.withLock({ $0[key] }) { return cached }
        let plan = try ExecutionPlan(graph: definition, inputShapes: shapes, constantInputs: integerInputs,
                                     preserving: preserving)
        plans.withLock { $0[key] = plan }
        return plan
    }

    /// Runs a forward pass, specialising (or reusing) the plan for the inputs' shapes.
    ///
    /// - Parameters:
    ///   - inputs: one tensor per model input.
    ///   - capturing: layer names (module paths, node names or tensor names) whose values to return,
    ///     keyed in the result by the name given here.
    public func run(_ inputs: [Tensor], capturing layers: [String] = []) throws -> ForwardResult {
        let tensors = try layers.map { try resolveLayer($0) }
        let plan = try plan(for: inputs, preserving: Set(tensors))
        var result = try plan.run(inputs, capturing: tensors)
        var renamed: [String: Tensor] = [:]
        for (layer, tensor) in zip(layers, tensors) { renamed[layer] = result.captures[tensor] }
        result.captures = renamed
        return result
    }

    /// The tensor name a user's layer name refers to.
    ///
    /// Accepted, in this order: an ONNX tensor name, a node name (its first output), a PyTorch
    /// module path (the output of the last node inside the module).
    /// - Throws: ``ONNXGraphError/unknownLayer(_:suggestions:)`` listing the closest names.
    public func resolveLayer(_ name: String) throws -> String {
        if definition.inputs.contains(where: { $0.name == name })
            || definition.nodes.contains(where: { $0.outputs.contains(name) }) {
            return name
        }
        if let node = definition.nodes.first(where: { $0.name == name }), let out = node.outputs.first {
            return out
        }
        if let module = moduleOutputs[name] { return module.tensor }
        let candidates = Array(moduleOutputs.keys) + definition.nodes.map(\.name)
        throw ONNXGraphError.unknownLayer(name, suggestions: closestNames(to: name, in: candidates))
    }

    /// The layers of the model with their output shapes for the given input shapes: every module
    /// path the exporter recorded (or, for models without scopes, every node), in graph order.
    public func layers(forInputShapes shapes: [[Int]]) throws -> [LayerInfo] {
        let plan = try plan(forInputShapes: shapes)
        var entries: [(index: Int, info: LayerInfo)] = []
        if moduleOutputs.isEmpty {
            for (i, node) in definition.nodes.enumerated() {
                guard let out = node.outputs.first, let info = plan.info(ofValue: out) else { continue }
                entries.append((i, LayerInfo(path: node.name, opType: node.opType, tensor: out, shape: info.shape)))
            }
        } else {
            for (path, module) in moduleOutputs {
                guard let info = plan.info(ofValue: module.tensor) else { continue }
                let node = definition.nodes[module.nodeIndex]
                entries.append((module.nodeIndex, LayerInfo(path: path, opType: node.opType, tensor: module.tensor,
                                                            shape: info.shape)))
            }
        }
        return entries.sorted { $0.index != $1.index ? $0.index < $1.index : $0.info.path.count > $1.info.path.count }
            .map(\.info)
    }
}
