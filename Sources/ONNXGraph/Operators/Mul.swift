import TensorCore

// Mul — https://onnx.ai/onnx/operators/onnx__Mul.html
// Opsets 7, 13, 14 (CAMKit: 11–21): `C = A · B` with multidirectional broadcasting.
// Types: float32, int64 (shape arithmetic).

/// ONNX `Mul`.
struct MulOperator: DifferentiableOperator {
    init(node: Node, opset: Int) throws {}

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        try inferBroadcastBinary(inputs, allowed: [.float32, .int64])
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        [multiply(try required(inputs, 0, "A"), try required(inputs, 1, "B"))]
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        guard let g = outputGradient(outputGradients), let a = elementwiseInput(inputs, 0), let b = elementwiseInput(inputs, 1),
              a.dtype == .float32 else { return [nil, nil] }
        let r = multiplyPullback(g, a, b, computingA: wantsGradient(needed, inputs, 0),
                                 computingB: wantsGradient(needed, inputs, 1))
        return [r.a, r.b]
    }
}
