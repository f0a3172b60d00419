import TensorCore

// Not — https://onnx.ai/onnx/operators/onnx__Not.html
// Opset 1 (CAMKit: 11–21): elementwise logical negation. Type: bool.

/// ONNX `Not`.
struct NotOperator: ONNXOperator {
    init(node: Node, opset: Int) throws {}

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        try inferUnary(inputs, allowed: [.bool])
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        [logicalNot(try required(inputs, 0, "X"))]
    }
}
