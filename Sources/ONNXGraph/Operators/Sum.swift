import TensorCore

// Sum — https://onnx.ai/onnx/operators/onnx__Sum.html
// Opsets 8, 13 (CAMKit: 11–21): elementwise sum of one or more inputs, broadcast together.
// Types: float32, int64.

/// ONNX `Sum`.
struct SumOperator: DifferentiableOperator {
    init(node: Node, opset: Int) throws {}

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        try inferVariadic(inputs, allowed: [.float32, .int64])
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        [elementwiseSum(try requiredAll(inputs))]
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        let none = [Tensor?](repeating: nil, count: inputs.count)
        guard let g = outputGradient(outputGradients), let all = try? requiredAll(inputs),
              all.first?.dtype == .float32 else { return none }
        let wanted = (0..<all.count).map { wantsGradient(needed, inputs, $0) }
        return zip(all, wanted).map { x, w in w ? g.summed(toShape: x.shape) : nil }
    }
}
