/// Maps `(domain, opType)` to the operator types CAMKit implements.
enum OperatorRegistry {
    /// The operator implementations of the default ONNX domain, by op type.
    ///
    /// Each entry is one file of `Operators/`.
    static let defaultDomain: [String: any ONNXOperator.Type] = {
        var all: [String: any ONNXOperator.Type] = [:]
        for family in [convolutionOperators, elementwiseOperators, shapingOperators, linearAlgebraOperators] {
            all.merge(family) { first, _ in first }
        }
        return all
    }()

    /// Every supported op type, sorted (for error messages and documentation).
    static var supportedOpTypes: [String] { defaultDomain.keys.sorted() }

    /// Looks up the implementation for a node.
    static func operatorType(opType: String, domain: String) -> (any ONNXOperator.Type)? {
        guard domain.isEmpty || domain == "ai.onnx" else { return nil }
        return defaultDomain[opType]
    }
}
