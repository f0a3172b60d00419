import TensorCore

// Transpose — https://onnx.ai/onnx/operators/onnx__Transpose.html
// Opsets 1, 13, 21 (CAMKit: 11–21). Any dtype. `perm` defaults to reversing the dims.

/// ONNX `Transpose`.
struct TransposeOperator: DifferentiableOperator {
    /// The permutation, or `nil` to reverse.
    let perm: [Int]?

    init(node: Node, opset: Int) throws {
        perm = try node.ints("perm")
    }

    private func permutation(rank: Int) throws -> [Int] {
        guard let perm else { return Array((0..<rank).reversed()) }
        guard perm.count == rank, Set(perm) == Set(0..<rank) else {
            throw OperatorError("perm \(perm) is not a permutation of the \(rank) dims of the input")
        }
        return perm
    }

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        let x = try required(inputs, 0, "data")
        let p = try permutation(rank: x.shape.count)
        return [ValueInfo(shape: p.map { x.shape[$0] }, dtype: x.dtype)]
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try required(inputs, 0, "data")
        return [x.transposed(permutation: try permutation(rank: x.rank))]
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        guard let g = ShapingSupport.gradient(outputGradients), ShapingSupport.wants(needed, inputs, 0) else { return [nil] }
        return [transposePullback(g, permutation: try permutation(rank: g.rank))]
    }
}
