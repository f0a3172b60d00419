import TensorCore

// Sigmoid — https://onnx.ai/onnx/operators/onnx__Sigmoid.html
// Opsets 6, 13 (CAMKit: 11–21): logistic function 1 / (1 + e^(−x)).
// Types: float32.

/// ONNX `Sigmoid`.
struct SigmoidOperator: DifferentiableOperator {
    init(node: Node, opset: Int) throws {}

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        try inferUnary(inputs, allowed: [.float32])
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        [sigmoid(try required(inputs, 0, "X"))]
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        guard let g = outputGradient(outputGradients),
              wantsGradient(needed, inputs, 0) else { return [nil] }
        return [sigmoidPullback(g, result: outputs[0])]
    }
}
