import Synchronization
import TensorCore

/// One dimension of a graph input as the model declares it.
public enum TensorDimension: Sendable, Equatable, CustomStringConvertible {
    /// A fixed extent.
    case fixed(Int)
    /// A named free dimension (e.g. `"batch"`), bound at specialisation.
    case symbolic(String)
    /// A dimension with neither value nor name.
    case unknown

    public var description: String {
        switch self {
        case .fixed(let v): return "\(v)"
        case .symbolic(let s): return s
        case .unknown: return "?"
        }
    }
}

/// A graph input or output as declared by the model.
public struct GraphValue: Sendable, Equatable {
    /// The tensor name.
    public var name: String
    /// The element type.
    public var dtype: DType
    /// The declared dimensions (empty when the model gives no shape).
    public var dimensions: [TensorDimension]
    /// Creates a declaration.
    public init(name: String, dtype: DType, dimensions: [TensorDimension]) {
        self.name = name
        self.dtype = dtype
        self.dimensions = dimensions
    }
}

/// A model graph specialised for concrete input shapes: every shape inferred, every
/// input-independent subgraph folded into constants, and the remaining compute laid out as a flat
/// list of kernel calls.
///
/// Plans are immutable and may be run from several threads at once. Make one with
/// ``ModelGraph/plan(forInputShapes:)``, which caches them per shape.
public final class ExecutionPlan: Sendable {
    /// One kernel call.
    struct Step: Sendable {
        /// Index of the node in the graph.
        let nodeIndex: Int
        let op: any ONNXOperator
        /// Value slot of each input (`nil`: omitted optional input).
        let inputs: [Int?]
        /// Value slot of each output (`nil`: an output nobody reads).
        let outputs: [Int?]
        /// Slots whose last reader is this step (released after it unless kept).
        let releases: [Int]
    }

    let graph: GraphDefinition
    /// Every kernel call, in order (what the reverse pass and partial runs execute).
    let steps: [Step]
    /// `steps` with runs of convolutions merged into channels-last regions, made on the first run
    /// that can use them, by the index before which regions may form (ChannelsLastRegions.swift).
    let channelsLastState = Mutex<[ChannelsLastKey: ChannelsLastSteps]>([:])
    /// The convolutions of those regions, shared between the step lists.
    let channelsLastConvolutions = ChannelsLastConvolutionCache()
    /// Name → slot for every value the plan knows (computed, folded or initializer).
    let slotOfValue: [String: Int]
    /// The name, shape and dtype of each slot.
    let slotNames: [String]
    let slotInfos: [ValueInfo]
    /// Slot → index of the step producing it (absent for inputs and constants).
    let producer: [Int: Int]
    let inputSlots: [Int]
    let outputSlots: [Int]

    /// The concrete shapes the plan was made for, in graph-input order.
    public let inputShapes: [[Int]]
    /// The tensor names kept observable through fusion.
    public let preserved: Set<String>

    /// - Parameter constantInputs: values of integer inputs (by input index) to fold as constants:
    ///   such inputs usually carry shapes, which specialisation must know.
    /// - Parameter preserving: tensor names that must stay observable (captured or differentiated):
    ///   kernel fusion never removes them.
    init(graph: GraphDefinition, inputShapes: [[Int]], constantInputs: [Int: Tensor] = [:],
         preserving: Set<String> = []) throws {
        self.graph = graph
        self.inputShapes = inputShapes
        self.preserved = preserving
        let spec = try Specialiser(graph: graph, inputShapes: inputShapes, constantInputs: constantInputs,
                                   preserved: preserving).run()
        self.steps = spec.steps
        self.slotOfValue = spec.slotOfValue
        self.slotNames = spec.slotNames
        self.slotInfos = spec.slotInfos
        self.producer = spec.producer
        self.inputSlots = spec.inputSlots
        self.outputSlots = spec.outputSlots
    }

    /// The shape and dtype of a value of the graph, by tensor name (`nil` if the plan has none:
    /// unknown name, or a value that does not contribute to the outputs).
    public func info(ofValue name: String) -> ValueInfo? {
        slotOfValue[name].map { slotInfos[$0] }
    }

    /// The number of kernel calls a forward pass makes (counting each convolution of a
    /// channels-last region: see ``inferenceStepCount``).
    public var stepCount: Int { steps.count }

    /// The number of steps ``run(_:capturing:)`` makes: a channels-last region counts once.
    public var inferenceStepCount: Int { inferenceSteps.count }

    /// The number of channels-last regions (runs of convolutions kept in NHWC) in the plan.
    public var channelsLastRegionCount: Int {
        inferenceSteps.filter { $0.op is ChannelsLastRegionOperator }.count
    }

    /// The op types of the kernel calls, in order (for profiling and tests).
    public var stepOpTypes: [String] { steps.map { graph.nodes[$0.nodeIndex].opType } }

    /// The multiply-accumulate count of the plan's Conv, Gemm and MatMul nodes (for GFLOP/s reports).
    public var multiplyAccumulateCount: Int {
        var total = 0
        for step in steps {
            let node = graph.nodes[step.nodeIndex]
            guard let outSlot = step.outputs.first ?? nil else { continue }
            let out = slotInfos[outSlot].shape
            switch node.opType {
            case "Conv":
                guard let w = step.inputs[1].map({ slotInfos[$0].shape }), w.count >= 3 else { continue }
                total += out.reduce(1, *) * w.dropFirst().reduce(1, *)
            case "Gemm", "MatMul":
                guard let a = step.inputs[0].map({ slotInfos[$0].shape }), let k = a.last else { continue }
                let transA = (try? node.int("transA", default: 0)) ?? 0
                let kk = node.opType == "Gemm" && transA == 1 ? a[0] : k
                total += out.reduce(1, *) * kk
            default: continue
            }
        }
        return total
    }
}

/// The parts of a model that execution needs, independent of the file format.
struct GraphDefinition: Sendable {
    var nodes: [Node]
    var initializers: [String: Tensor]
    var inputs: [GraphValue]
    var outputs: [String]
    /// Opset version of the default domain.
    var opset: Int
}
