import TensorCore

// Range — https://onnx.ai/onnx/operators/onnx__Range.html
// Opset 11 (CAMKit: 11–21). Scalars start, limit, delta of one dtype (float32 or int64); output
// has max(ceil((limit − start) / delta), 0) elements start + i·delta. The inputs must be constant.

/// ONNX `Range`.
struct RangeOperator: ONNXOperator {
    init(node: Node, opset: Int) throws {}

    private func compute(_ start: Tensor, _ limit: Tensor, _ delta: Tensor) throws -> Tensor {
        guard start.count == 1, limit.count == 1, delta.count == 1 else {
            throw OperatorError("start, limit and delta must be scalars")
        }
        guard start.dtype == limit.dtype, start.dtype == delta.dtype else {
            throw OperatorError("start, limit and delta must share a dtype (\(start.dtype), \(limit.dtype), \(delta.dtype))")
        }
        switch start.dtype {
        case .int64:
            let s = start.int64s[0], l = limit.int64s[0], d = delta.int64s[0]
            guard d != 0 else { throw OperatorError("delta is 0") }
            let (span, overflow) = l.subtractingReportingOverflow(s)
            guard !overflow else { throw OperatorError("range \(s)..<\(l) overflows") }
            var n = span / d
            if span % d != 0 && (span > 0) == (d > 0) { n += 1 }
            n = max(n, 0)
            guard n <= Int64(Int32.max) else { throw OperatorError("range of \(n) elements is too large") }
            return Tensor(shape: [Int(n)], int64s: (0..<n).map { s &+ $0 &* d })
        case .float32:
            let s = start.scalar, l = limit.scalar, d = delta.scalar
            guard d != 0, s.isFinite, l.isFinite, d.isFinite else { throw OperatorError("bad range \(s), \(l), \(d)") }
            let n = max(0, (Double(l - s) / Double(d)).rounded(.up))
            guard n <= Double(Int32.max) else { throw OperatorError("range of \(n) elements is too large") }
            return Tensor(shape: [Int(n)], scalars: (0..<Int(n)).map { s + Float($0) * d })
        case .bool:
            throw OperatorError("Range does not take bool inputs")
        }
    }

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        let r = try compute(try constant(inputs, 0, "start"), try constant(inputs, 1, "limit"), try constant(inputs, 2, "delta"))
        return [ValueInfo(shape: r.shape, dtype: r.dtype)]
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        [try compute(try required(inputs, 0, "start"), try required(inputs, 1, "limit"), try required(inputs, 2, "delta"))]
    }
}
