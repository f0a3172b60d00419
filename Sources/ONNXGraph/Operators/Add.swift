import TensorCore

// Add — https://onnx.ai/onnx/operators/onnx__Add.html
// Opsets 7, 13, 14 (CAMKit: 11–21): `C = A + B` with multidirectional broadcasting.
// Types: float32, int64 (shape arithmetic).

/// ONNX `Add`.
struct AddOperator: DifferentiableOperator {
    init(node: Node, opset: Int) throws {}

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        try inferBroadcastBinary(inputs, allowed: [.float32, .int64])
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        [add(try required(inputs, 0, "A"), try required(inputs, 1, "B"))]
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        guard let g = outputGradient(outputGradients), let a = elementwiseInput(inputs, 0), let b = elementwiseInput(inputs, 1) else { return [nil, nil] }
        return [wantsGradient(needed, inputs, 0) ? g.summed(toShape: a.shape) : nil,
                wantsGradient(needed, inputs, 1) ? g.summed(toShape: b.shape) : nil]
    }
}
