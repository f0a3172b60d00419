import TensorCore

// Cast — https://onnx.ai/onnx/operators/onnx__Cast.html
// Opsets 6, 9, 13, 19, 21 (CAMKit: 11–21): converts elements to the type named by attribute `to`
// (a TensorProto.DataType code). CAMKit converts between float32, int64 and bool; float → int64
// truncates toward zero (NaN and out-of-range values give INT64_MIN, as on x86); any → bool is
// `value != 0`. Other target types are refused with the type's name. `saturate` (opset 19) only
// concerns float8 targets and is ignored.

/// ONNX `Cast`.
struct CastOperator: DifferentiableOperator {
    /// The target dtype.
    let target: DType

    /// TensorProto.DataType names by code, for error messages.
    static let onnxDataTypeNames: [Int: String] = [
        0: "UNDEFINED", 1: "FLOAT", 2: "UINT8", 3: "INT8", 4: "UINT16", 5: "INT16", 6: "INT32", 7: "INT64",
        8: "STRING", 9: "BOOL", 10: "FLOAT16", 11: "DOUBLE", 12: "UINT32", 13: "UINT64", 14: "COMPLEX64",
        15: "COMPLEX128", 16: "BFLOAT16", 17: "FLOAT8E4M3FN", 18: "FLOAT8E4M3FNUZ", 19: "FLOAT8E5M2",
        20: "FLOAT8E5M2FNUZ", 21: "UINT4", 22: "INT4", 23: "FLOAT4E2M1",
    ]

    init(node: Node, opset: Int) throws {
        let code = try node.int("to")
        switch code {
        case 1: target = .float32
        case 7: target = .int64
        case 9: target = .bool
        default:
            let name = Self.onnxDataTypeNames[code] ?? "unknown type code \(code)"
            throw OperatorError("Cast to \(name) is not supported; CAMKit tensors are FLOAT (1), INT64 (7) or BOOL (9)")
        }
    }

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        let x = try required(inputs, 0, "input")
        return [ValueInfo(shape: x.shape, dtype: target)]
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        [cast(try required(inputs, 0, "input"), to: target)]
    }

    /// Float → float passes the gradient through; casts to or from integers and Booleans are
    /// piecewise constant (zero gradient).
    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        guard target == .float32, wantsGradient(needed, inputs, 0) else { return [nil] }
        return [outputGradient(outputGradients)]
    }
}
