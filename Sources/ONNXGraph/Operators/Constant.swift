import TensorCore

// Constant — https://onnx.ai/onnx/operators/onnx__Constant.html
// Opsets 1, 9, 11 (sparse_value), 12 (value_float(s), value_int(s), value_string(s)), 13, 19, 21
// (CAMKit: 11–21). Exactly one of value, value_float, value_floats, value_int, value_ints;
// string and sparse values are not supported. The output is a constant.

/// ONNX `Constant`.
struct ConstantOperator: ONNXOperator {
    /// The value.
    let value: Tensor

    init(node: Node, opset: Int) throws {
        let keys = node.attributes.keys.filter { $0.hasPrefix("value") || $0 == "sparse_value" }
        guard keys.count == 1, let key = keys.first else {
            throw OperatorError("Constant needs exactly one value attribute, found \(keys.sorted())")
        }
        switch key {
        case "value":
            guard let t = try node.tensor("value") else { throw OperatorError("missing 'value'") }
            value = t
        case "value_float":
            value = Tensor(try node.float("value_float", default: 0))
        case "value_floats":
            let v = try node.floats("value_floats") ?? []
            value = Tensor(shape: [v.count], scalars: v)
        case "value_int":
            value = Tensor(shape: [], int64s: [Int64(try node.int("value_int"))])
        case "value_ints":
            let v = try node.ints("value_ints") ?? []
            value = Tensor(shape: [v.count], int64s: v.map { Int64($0) })
        default:
            throw OperatorError("Constant attribute '\(key)' is not supported (string and sparse constants)")
        }
    }

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        [ValueInfo(constant: value)]
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        [value]
    }
}
