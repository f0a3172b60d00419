import TensorCore

// Mean — https://onnx.ai/onnx/operators/onnx__Mean.html
// Opsets 8, 13 (CAMKit: 11–21): elementwise mean of one or more inputs, broadcast together.
// Types: float32.

/// ONNX `Mean`.
struct MeanOperator: DifferentiableOperator {
    init(node: Node, opset: Int) throws {}

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        try inferVariadic(inputs, allowed: [.float32])
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        [elementwiseMean(try requiredAll(inputs))]
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        let none = [Tensor?](repeating: nil, count: inputs.count)
        guard let g = outputGradient(outputGradients), let all = try? requiredAll(inputs),
              all.first?.dtype == .float32 else { return none }
        let wanted = (0..<all.count).map { wantsGradient(needed, inputs, $0) }
        let grads = elementwiseMeanPullback(g, inputShapes: all.map(\.shape))
        return zip(grads, wanted).map { t, w in w ? t : nil }
    }
}
