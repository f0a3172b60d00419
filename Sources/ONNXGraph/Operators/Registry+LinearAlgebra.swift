extension OperatorRegistry {
    /// The operators of the LinearAlgebra family, by ONNX op type.
    static let linearAlgebraOperators: [String: any ONNXOperator.Type] = [:]
}
