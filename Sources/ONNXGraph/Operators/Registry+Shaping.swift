import TensorCore

extension OperatorRegistry {
    /// The operators of the Shaping family (data movement, shape arithmetic, constants), by ONNX op type.
    static let shapingOperators: [String: any ONNXOperator.Type] = [
        "Reshape": ReshapeOperator.self,
        "Flatten": FlattenOperator.self,
        "Transpose": TransposeOperator.self,
        "Concat": ConcatOperator.self,
        "Split": SplitOperator.self,
        "Slice": SliceOperator.self,
        "Gather": GatherOperator.self,
        "Squeeze": SqueezeOperator.self,
        "Unsqueeze": UnsqueezeOperator.self,
        "Expand": ExpandOperator.self,
        "Pad": PadOperator.self,
        "Shape": ShapeOperator.self,
        "Size": SizeOperator.self,
        "Constant": ConstantOperator.self,
        "ConstantOfShape": ConstantOfShapeOperator.self,
        "Range": RangeOperator.self,
        "ScatterND": ScatterNDOperator.self,
        "Resize": ResizeOperator.self,
        "Tile": TileOperator.self,
    ]
}

/// Helpers shared by the Shaping family's operator files.
enum ShapingSupport {
    /// The elements of an integer (shape, axes, pads...) tensor.
    /// - Throws: ``OperatorError`` when the tensor is not Int64.
    static func ints(_ t: Tensor, _ what: String) throws -> [Int] {
        guard t.dtype == .int64 else { throw OperatorError("\(what) must be an int64 tensor, got \(t.dtype)") }
        return t.withUnsafeInt64BufferPointer { $0.map { Int($0) } }
    }

    /// `axis` made non-negative for a tensor of `rank` dims.
    /// - Throws: ``OperatorError`` when it is outside `-rank..<rank`.
    static func axis(_ axis: Int, rank: Int, _ what: String = "axis") throws -> Int {
        guard axis >= -rank && axis < rank else {
            throw OperatorError("\(what) \(axis) is out of range for a tensor of rank \(rank)")
        }
        return axis < 0 ? axis + rank : axis
    }

    /// Distinct non-negative axes.
    /// - Throws: ``OperatorError`` when one is out of range or repeated.
    static func axes(_ axes: [Int], rank: Int, _ what: String = "axes") throws -> [Int] {
        let normalized = try axes.map { try axis($0, rank: rank, what) }
        guard Set(normalized).count == normalized.count else { throw OperatorError("\(what) \(axes) repeat an axis") }
        return normalized
    }

    /// Whether an optional input is present and not an empty placeholder tensor.
    static func isPresent(_ v: ValueInfo?) -> Bool {
        guard let v else { return false }
        return v.shape.reduce(1, *) > 0
    }

    /// Whether an optional input tensor is present and non-empty.
    static func isPresent(_ t: Tensor?) -> Bool {
        guard let t else { return false }
        return t.count > 0
    }

    /// The input at `index` if the node has it.
    static func optional(_ inputs: [Tensor?], _ index: Int) -> Tensor? {
        index < inputs.count ? inputs[index] : nil
    }

    /// The input description at `index` if the node has it.
    static func optional(_ inputs: [ValueInfo?], _ index: Int) -> ValueInfo? {
        index < inputs.count ? inputs[index] : nil
    }

    /// The gradient of output `index`, if any.
    static func gradient(_ outputGradients: [Tensor?], _ index: Int = 0) -> Tensor? {
        index < outputGradients.count ? outputGradients[index] : nil
    }

    /// Whether input `index` needs a gradient and is a Float32 tensor.
    static func wants(_ needed: [Bool], _ inputs: [Tensor?], _ index: Int) -> Bool {
        index < needed.count && needed[index] && index < inputs.count && inputs[index]?.dtype == .float32
    }

    /// Checks that every index in `indices` lies in `-n..<n`.
    /// - Throws: ``OperatorError`` naming the first bad index.
    static func checkIndices(_ indices: Tensor, extent n: Int, _ what: String) throws {
        guard indices.dtype == .int64 else { throw OperatorError("\(what) must be int64, got \(indices.dtype)") }
        try indices.withUnsafeInt64BufferPointer { b in
            for v in b where v < -Int64(n) || v >= Int64(n) {
                throw OperatorError("\(what) contains \(v), outside the valid range [\(-n), \(n - 1)]")
            }
        }
    }
}
