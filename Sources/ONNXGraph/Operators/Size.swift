import TensorCore

// Size — https://onnx.ai/onnx/operators/onnx__Size.html
// Opsets 1, 13, 19, 21 (CAMKit: 11–21). Output: an int64 scalar, the input's element count,
// known at specialisation (so the output is a constant).

/// ONNX `Size`.
struct SizeOperator: ONNXOperator {
    init(node: Node, opset: Int) throws {}

    private func value(_ shape: [Int]) -> Tensor {
        Tensor(shape: [], int64s: [Int64(shape.reduce(1, *))])
    }

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        [ValueInfo(constant: value(try required(inputs, 0, "data").shape))]
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        [value(try required(inputs, 0, "data").shape)]
    }
}
