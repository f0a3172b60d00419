import TensorCore

extension OperatorRegistry {
    /// The operators of the LinearAlgebra family, by ONNX op type: matrix products, softmax,
    /// reductions and normalisation layers.
    static let linearAlgebraOperators: [String: any ONNXOperator.Type] = [
        "MatMul": MatMulOperator.self,
        "Gemm": GemmOperator.self,
        "Softmax": SoftmaxOperator.self,
        "LogSoftmax": LogSoftmaxOperator.self,
        "ReduceMean": ReduceMeanOperator.self,
        "ReduceSum": ReduceSumOperator.self,
        "ReduceMax": ReduceMaxOperator.self,
        "ReduceMin": ReduceMinOperator.self,
        "BatchNormalization": BatchNormalizationOperator.self,
        "LayerNormalization": LayerNormalizationOperator.self,
        "InstanceNormalization": InstanceNormalizationOperator.self,
        "GroupNormalization": GroupNormalizationOperator.self,
    ]
}

/// Small helpers shared by the LinearAlgebra family's operator files.
enum LinearAlgebraSupport {
    /// Throws unless `value` has one of the `allowed` dtypes.
    static func require(_ value: ValueInfo, _ allowed: [DType], _ what: String) throws {
        guard allowed.contains(value.dtype) else {
            let names = allowed.map { $0 == .float32 ? "tensor(float)" : "tensor(\($0))" }.joined(separator: ", ")
            throw OperatorError("\(what) has type \(value.dtype); CAMKit supports \(names) here")
        }
    }

    /// Input `index`, or `nil` when omitted or out of range.
    static func optional<T>(_ inputs: [T?], _ index: Int) -> T? {
        index < inputs.count ? inputs[index] : nil
    }

    /// The gradient of output `index`, or `nil`.
    static func gradient(_ gradients: [Tensor?], _ index: Int = 0) -> Tensor? {
        index < gradients.count ? gradients[index] : nil
    }

    /// Whether input `index` is present, Float32, and wants a gradient.
    static func wants(_ needed: [Bool], _ inputs: [Tensor?], _ index: Int) -> Bool {
        index < needed.count && needed[index] && index < inputs.count && inputs[index]?.dtype == .float32
    }

    /// `axis` normalised into `0..<rank` (negative counts from the end), or a thrown error.
    static func axis(_ axis: Int, rank: Int, _ what: String = "axis") throws -> Int {
        guard axis >= -rank && axis < rank else {
            throw OperatorError("\(what) \(axis) is out of range for an input of rank \(rank) (allowed \(-rank)...\(rank - 1))")
        }
        return axis < 0 ? axis + rank : axis
    }

    /// Whether `parameter` broadcasts unidirectionally to `target` (NumPy rules, right-aligned).
    static func broadcasts(_ parameter: [Int], to target: [Int]) -> Bool {
        guard parameter.count <= target.count else { return false }
        for (p, t) in zip(parameter.reversed(), target.reversed()) where p != 1 && p != t { return false }
        return true
    }

    /// An empty list of gradients for `inputs`.
    static func noGradients(_ inputs: [Tensor?]) -> [Tensor?] {
        [Tensor?](repeating: nil, count: Swift.max(1, inputs.count))
    }
}

/// The attributes and inputs shared by `ReduceSum`, `ReduceMean`, `ReduceMax` and `ReduceMin`:
/// `axes` as an attribute before a version (13 for ReduceSum, 18 for the others) and as optional
/// input 1 from it on, `keepdims` (default 1) and, with the axes input, `noop_with_empty_axes`
/// (default 0: no axes means reduce every axis; 1: no axes means identity).
struct ReduceConfiguration: Sendable {
    /// Axes from the attribute (older opsets).
    let axesAttribute: [Int]?
    /// Whether axes come from input 1.
    let axesFromInput: Bool
    /// Whether reduced axes stay as extent 1.
    let keepDimensions: Bool
    /// Whether empty axes mean identity rather than a full reduction.
    let noopWithEmptyAxes: Bool

    /// Reads the node's attributes for `opset`; `axesInputSince` is the first opset taking axes as an input.
    init(node: Node, opset: Int, axesInputSince: Int) throws {
        axesFromInput = opset >= axesInputSince
        axesAttribute = axesFromInput ? nil : try node.ints("axes")
        keepDimensions = try node.int("keepdims", default: 1) != 0
        noopWithEmptyAxes = axesFromInput ? try node.int("noop_with_empty_axes", default: 0) != 0 : false
    }

    /// The axes to reduce, normalised and sorted, or `nil` when the node is an identity.
    func axes(rank: Int, axesTensor: Tensor?) throws -> [Int]? {
        let list: [Int]
        if axesFromInput {
            if let t = axesTensor {
                guard t.dtype == .int64, t.rank <= 1 else {
                    throw OperatorError("input axes must be a 1-D tensor(int64), got \(t.dtype) \(t.shape)")
                }
                list = t.int64s.map { Int($0) }
            } else {
                list = []
            }
        } else {
            list = axesAttribute ?? []
        }
        if list.isEmpty { return noopWithEmptyAxes ? nil : Array(0..<rank) }
        var seen = Set<Int>()
        for a in list {
            let n = try LinearAlgebraSupport.axis(a, rank: rank, "reduction axis")
            guard seen.insert(n).inserted else { throw OperatorError("reduction axis \(a) is repeated in \(list)") }
        }
        return seen.sorted()
    }

    /// The axes tensor of a forward pass (input 1), when axes come from an input.
    func axesTensor(_ inputs: [Tensor?]) -> Tensor? {
        axesFromInput ? LinearAlgebraSupport.optional(inputs, 1) : nil
    }

    /// Validates a reduce node's inputs and returns its output.
    func inferOutputs(_ inputs: [ValueInfo?], allowed: [DType]) throws -> [ValueInfo] {
        guard let first = inputs.first, let x = first else { throw OperatorError("missing input 0 (data)") }
        try LinearAlgebraSupport.require(x, allowed, "input data")
        var axesTensor: Tensor? = nil
        if axesFromInput, let info = LinearAlgebraSupport.optional(inputs, 1) {
            guard let c = info.constant else {
                throw OperatorError("input 1 (axes) must be computable without the model input; it depends on the input values")
            }
            axesTensor = c
        }
        guard let axes = try axes(rank: x.shape.count, axesTensor: axesTensor) else {
            return [ValueInfo(shape: x.shape, dtype: x.dtype)]
        }
        return [ValueInfo(shape: reductionResultShape(x.shape, axes: axes, keepingDimensions: keepDimensions), dtype: x.dtype)]
    }
}

/// What ReduceMax/Min/Mean/Sum share: the axes (attribute, or input from `axesInputSince`),
/// `keepdims`, `noop_with_empty_axes`, shape inference, and the identity when no axis is reduced.
protocol ReduceOperator: DifferentiableOperator {
    /// Axes, keepdims and noop_with_empty_axes.
    var configuration: ReduceConfiguration { get }
    init(configuration: ReduceConfiguration)
    /// The first opset in which `axes` is an input instead of an attribute.
    static var axesInputSince: Int { get }
    /// The reduction kernel.
    static func reduce(_ x: Tensor, axes: [Int], keepingDimensions: Bool) -> Tensor
    /// Its pullback.
    static func reducePullback(_ x: Tensor, gradient: Tensor, axes: [Int], keepingDimensions: Bool) -> Tensor
}

extension ReduceOperator {
    init(node: Node, opset: Int) throws {
        self.init(configuration: try ReduceConfiguration(node: node, opset: opset, axesInputSince: Self.axesInputSince))
    }

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        try configuration.inferOutputs(inputs, allowed: [.float32, .int64])
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try required(inputs, 0, "data")
        guard let axes = try configuration.axes(rank: x.rank, axesTensor: configuration.axesTensor(inputs)) else {
            return [x]
        }
        return [Self.reduce(x, axes: axes, keepingDimensions: configuration.keepDimensions)]
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        var result = LinearAlgebraSupport.noGradients(inputs)
        guard let g = LinearAlgebraSupport.gradient(outputGradients), LinearAlgebraSupport.wants(needed, inputs, 0),
              let x = inputs[0] else { return result }
        guard let axes = try configuration.axes(rank: x.rank, axesTensor: configuration.axesTensor(inputs)) else {
            result[0] = g
            return result
        }
        result[0] = Self.reducePullback(x, gradient: g, axes: axes, keepingDimensions: configuration.keepDimensions)
        return result
    }
}
