extension OperatorRegistry {
    /// The operators of the Elementwise family, by ONNX op type.
    static let elementwiseOperators: [String: any ONNXOperator.Type] = [:]
}
