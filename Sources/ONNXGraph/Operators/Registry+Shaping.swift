extension OperatorRegistry {
    /// The operators of the Shaping family, by ONNX op type.
    static let shapingOperators: [String: any ONNXOperator.Type] = [:]
}
