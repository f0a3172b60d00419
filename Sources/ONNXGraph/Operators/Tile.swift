import TensorCore

// Tile — https://onnx.ai/onnx/operators/onnx__Tile.html
// Opsets 6, 13 (CAMKit: 11–21). Any dtype. `repeats` (constant int64, one per dim, ≥ 0).

/// ONNX `Tile`.
struct TileOperator: DifferentiableOperator {
    init(node: Node, opset: Int) throws {}

    private func repeats(_ t: Tensor, rank: Int) throws -> [Int] {
        let r = try ShapingSupport.ints(t, "repeats")
        guard r.count == rank else { throw OperatorError("repeats \(r) must have one entry per dim (rank \(rank))") }
        guard r.allSatisfy({ $0 >= 0 }) else { throw OperatorError("repeats \(r) must be non-negative") }
        return r
    }

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        let x = try required(inputs, 0, "input")
        let r = try repeats(try constant(inputs, 1, "repeats"), rank: x.shape.count)
        return [ValueInfo(shape: zip(x.shape, r).map { $0 * $1 }, dtype: x.dtype)]
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try required(inputs, 0, "input")
        return [x.tiled(multiples: try repeats(try required(inputs, 1, "repeats"), rank: x.rank))]
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        guard let g = ShapingSupport.gradient(outputGradients), ShapingSupport.wants(needed, inputs, 0),
              let x = inputs[0], let rt = inputs[1] else { return [nil, nil] }
        return [tilePullback(g, inputShape: x.shape, multiples: try repeats(rt, rank: x.rank)), nil]
    }
}
