import TensorCore

// Min — https://onnx.ai/onnx/operators/onnx__Min.html
// Opsets 8, 12, 13 (CAMKit: 11–21): elementwise minimum of one or more inputs, broadcast together (NaN propagates). A tie splits the gradient evenly.
// Types: float32, int64.

/// ONNX `Min`.
struct MinOperator: DifferentiableOperator {
    init(node: Node, opset: Int) throws {}

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        try inferVariadic(inputs, allowed: [.float32, .int64])
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        [elementwiseMin(try requiredAll(inputs))]
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        let none = [Tensor?](repeating: nil, count: inputs.count)
        guard let g = outputGradient(outputGradients), let all = try? requiredAll(inputs),
              all.first?.dtype == .float32 else { return none }
        let wanted = (0..<all.count).map { wantsGradient(needed, inputs, $0) }
        return elementwiseExtremumPullback(g, inputs: all, result: outputs[0], needed: wanted)
    }
}
