import TensorCore

// MatMul — https://onnx.ai/onnx/operators/onnx__MatMul.html
// Opsets 1, 9, 13 (CAMKit: 11–21): the matrix product with NumPy `matmul` semantics (1-D operands
// promoted and demoted, batch dimensions broadcast). No attributes.
// Types: float32 (BLAS); int64 for constant folding, computed exactly through Float32 when every
// partial sum stays within ±2²⁴ (else refused).

/// ONNX `MatMul`.
struct MatMulOperator: DifferentiableOperator {
    init(node: Node, opset: Int) throws {}

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        let a = try required(inputs, 0, "A"), b = try required(inputs, 1, "B")
        try LinearAlgebraSupport.require(a, [.float32, .int64], "input A")
        guard a.dtype == b.dtype else {
            throw OperatorError("inputs A (\(a.dtype)) and B (\(b.dtype)) must have the same type")
        }
        guard !a.shape.isEmpty, !b.shape.isEmpty else {
            throw OperatorError("MatMul needs inputs of rank ≥ 1, got \(a.shape) and \(b.shape)")
        }
        guard let shape = matmulResultShape(a.shape, b.shape) else {
            throw OperatorError("cannot multiply \(a.shape) by \(b.shape): the last extent of A must equal the "
                                + "second-to-last of B and the batch dimensions must broadcast")
        }
        return [ValueInfo(shape: shape, dtype: a.dtype)]
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let a = try required(inputs, 0, "A"), b = try required(inputs, 1, "B")
        if a.dtype == .int64 && b.dtype == .int64 {
            let exact: Int64 = 1 << 24
            let ka = a.shape.last ?? 1
            let ma = a.int64s.map { Swift.abs($0) }.max() ?? 0, mb = b.int64s.map { Swift.abs($0) }.max() ?? 0
            guard ma <= exact, mb <= exact, ma == 0 || mb == 0 || Int64(ka) <= exact / ma / Swift.max(mb, 1) else {
                throw OperatorError("Int64 MatMul with values this large is not supported (only exact small products)")
            }
            return [matmul(a.converted(to: .float32), b.converted(to: .float32)).converted(to: .int64)]
        }
        return [matmul(a, b)]
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        let wantA = LinearAlgebraSupport.wants(needed, inputs, 0), wantB = LinearAlgebraSupport.wants(needed, inputs, 1)
        guard let g = LinearAlgebraSupport.gradient(outputGradients), wantA || wantB,
              let a = LinearAlgebraSupport.optional(inputs, 0), let b = LinearAlgebraSupport.optional(inputs, 1)
        else { return [nil, nil] }
        let (da, db) = matmulPullback(a, b, gradient: g, needA: wantA, needB: wantB)
        return [da, db]
    }
}
