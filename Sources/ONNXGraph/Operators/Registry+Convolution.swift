extension OperatorRegistry {
    /// The operators of the Convolution family, by ONNX op type.
    static let convolutionOperators: [String: any ONNXOperator.Type] = [:]
}
