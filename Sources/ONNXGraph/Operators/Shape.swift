import TensorCore

// Shape — https://onnx.ai/onnx/operators/onnx__Shape.html
// Opsets 1, 13, 15 (start/end attributes), 19, 21 (CAMKit: 11–21). Output: 1-D int64, the input's
// extents from `start` to `end` (negative values count from the end, then clamped to [0, rank]).
// The shape is known at specialisation, so the output is a constant.

/// ONNX `Shape`.
struct ShapeOperator: ONNXOperator {
    /// First dim reported (opset 15).
    let start: Int
    /// One past the last dim reported, or `nil` for the rank.
    let end: Int?

    init(node: Node, opset: Int) throws {
        start = try node.int("start", default: 0)
        end = node.attributes["end"] != nil ? try node.int("end") : nil
    }

    /// The reported extents of `shape`.
    func value(_ shape: [Int]) -> Tensor {
        let r = shape.count
        func clamp(_ v: Int) -> Int { min(max(v < 0 ? v + r : v, 0), r) }
        let s = clamp(start), e = clamp(end ?? r)
        let dims = s < e ? shape[s..<e].map { Int64($0) } : []
        return Tensor(shape: [dims.count], int64s: dims)
    }

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        [ValueInfo(constant: value(try required(inputs, 0, "data").shape))]
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        [value(try required(inputs, 0, "data").shape)]
    }
}
