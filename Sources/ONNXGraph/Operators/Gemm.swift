import TensorCore

// Gemm — https://onnx.ai/onnx/operators/onnx__Gemm.html
// Opsets 9 (C required), 11 (C optional), 13 (CAMKit: 11–21):
// `Y = alpha · op(A) · op(B) + beta · C`, `op` transposing when `transA` / `transB` is 1, and C
// broadcast unidirectionally to (M, N). Types: float32.

/// ONNX `Gemm`.
struct GemmOperator: DifferentiableOperator {
    let alpha: Float
    let beta: Float
    let transposeA: Bool
    let transposeB: Bool
    /// Whether input C may be omitted (opset ≥ 11).
    let biasOptional: Bool

    init(node: Node, opset: Int) throws {
        alpha = try node.float("alpha", default: 1)
        beta = try node.float("beta", default: 1)
        transposeA = try node.int("transA", default: 0) != 0
        transposeB = try node.int("transB", default: 0) != 0
        biasOptional = opset >= 11
    }

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        let a = try required(inputs, 0, "A"), b = try required(inputs, 1, "B")
        try LinearAlgebraSupport.require(a, [.float32], "input A")
        try LinearAlgebraSupport.require(b, [.float32], "input B")
        guard a.shape.count == 2, b.shape.count == 2 else {
            throw OperatorError("Gemm needs rank-2 A and B, got \(a.shape) and \(b.shape)")
        }
        let m = transposeA ? a.shape[1] : a.shape[0], k = transposeA ? a.shape[0] : a.shape[1]
        let kb = transposeB ? b.shape[1] : b.shape[0], n = transposeB ? b.shape[0] : b.shape[1]
        guard k == kb else {
            throw OperatorError("Gemm inner extents differ: op(A) is [\(m), \(k)] (transA=\(transposeA ? 1 : 0)) "
                                + "and op(B) is [\(kb), \(n)] (transB=\(transposeB ? 1 : 0))")
        }
        if let c = LinearAlgebraSupport.optional(inputs, 2) {
            try LinearAlgebraSupport.require(c, [.float32], "input C")
            guard gemmBiasIsBroadcastable(c.shape, m: m, n: n) else {
                throw OperatorError("input C of shape \(c.shape) does not broadcast to the output [\(m), \(n)]")
            }
        } else if !biasOptional {
            throw OperatorError("missing input 2 (C), required before opset 11")
        }
        return [ValueInfo(shape: [m, n], dtype: .float32)]
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let a = try required(inputs, 0, "A"), b = try required(inputs, 1, "B")
        return [gemm(a, b, c: LinearAlgebraSupport.optional(inputs, 2), alpha: alpha, beta: beta,
                     transposeA: transposeA, transposeB: transposeB)]
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        let want = (0..<3).map { LinearAlgebraSupport.wants(needed, inputs, $0) }
        guard let g = LinearAlgebraSupport.gradient(outputGradients), want.contains(true),
              let a = LinearAlgebraSupport.optional(inputs, 0), let b = LinearAlgebraSupport.optional(inputs, 1)
        else { return [nil, nil, nil] }
        let c = LinearAlgebraSupport.optional(inputs, 2)
        let (da, db, dc) = gemmPullback(a, b, cShape: c?.shape, alpha: alpha, beta: beta, transposeA: transposeA,
                                        transposeB: transposeB, gradient: g, needA: want[0], needB: want[1],
                                        needC: want[2])
        return [da, db, dc]
    }
}
