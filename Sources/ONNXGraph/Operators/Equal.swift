import TensorCore

// Equal — https://onnx.ai/onnx/operators/onnx__Equal.html
// Opsets 11, 13, 19 (CAMKit: 11–21): elementwise `A == B` with multidirectional broadcasting,
// output tensor(bool). Types: float32, int64, bool (strings, opset 19, are not supported).

/// ONNX `Equal`. Its output is Boolean, so the gradient with respect to both inputs is zero.
struct EqualOperator: DifferentiableOperator {
    init(node: Node, opset: Int) throws {}

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        try inferBroadcastBinary(inputs, allowed: [.float32, .int64, .bool], output: .bool)
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        [equal(try required(inputs, 0, "A"), try required(inputs, 1, "B"))]
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        [nil, nil]
    }
}
