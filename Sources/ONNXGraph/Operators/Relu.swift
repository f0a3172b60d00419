import TensorCore

// Relu — https://onnx.ai/onnx/operators/onnx__Relu.html
// Opsets 6, 13, 14 (CAMKit: 11–21): `max(x, 0)`. Types: float32 (the integer types of opset 14
// are not supported).
// The pullback follows `PullbackContext.reluRule`: the true derivative, guided backpropagation
// (Springenberg et al. 2015) or deconvnet (Zeiler & Fergus 2014).

/// ONNX `Relu`.
struct ReluOperator: DifferentiableOperator {
    init(node: Node, opset: Int) throws {}

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        try inferUnary(inputs, allowed: [.float32])
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        [relu(try required(inputs, 0, "X"))]
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        guard let g = outputGradient(outputGradients), let x = elementwiseInput(inputs, 0),
              wantsGradient(needed, inputs, 0) else { return [nil] }
        switch context.reluRule {
        case .standard: return [reluPullback(g, input: x)]
        case .guided: return [guidedReluPullback(g, input: x)]
        case .deconvnet: return [deconvnetReluPullback(g)]
        }
    }
}
