import TensorCore

/// What specialisation knows about one value of the graph: its shape and dtype, and its
/// contents when the value does not depend on the model's input (then it is folded).
public struct ValueInfo: Sendable, Equatable {
    /// Concrete shape (specialisation binds every dimension).
    public var shape: [Int]
    /// Element type.
    public var dtype: DType
    /// The value itself, when it is a constant.
    public var constant: Tensor?

    /// Creates a value description.
    public init(shape: [Int], dtype: DType, constant: Tensor? = nil) {
        self.shape = shape
        self.dtype = dtype
        self.constant = constant
    }

    /// Describes a constant tensor.
    public init(constant: Tensor) {
        self.init(shape: constant.shape, dtype: constant.dtype, constant: constant)
    }
}

/// A problem an operator finds with its attributes or inputs. The graph code wraps it into an
/// ``ONNXGraphError/invalidNode(name:opType:reason:)`` naming the node.
public struct OperatorError: Error, CustomStringConvertible, Sendable {
    /// What is wrong, in words for the user.
    public var message: String
    /// Creates an error with a message.
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// One ONNX operator, configured from a node's attributes.
///
/// Each conforming type lives in `Operators/<OpType>.swift`, cites its section of the ONNX
/// operator spec and the opsets it supports, and is registered in ``OperatorRegistry``.
/// Inputs arrive in the node's order; an omitted optional input is `nil`.
protocol ONNXOperator: Sendable {
    /// Parses and validates the node's attributes for the model's opset of the node's domain.
    init(node: Node, opset: Int) throws

    /// The outputs' shapes and dtypes, given the inputs'. Inputs that are constants carry their
    /// value (Reshape needs its shape input, Slice its starts...). Throws ``OperatorError`` for
    /// inputs the operator cannot take (wrong rank, mismatched channels...).
    ///
    /// Return a `constant` in an output only where it is known without the input values
    /// (as `Shape` does); specialisation folds nodes whose inputs are all constant by calling
    /// ``run(_:)`` itself.
    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo]

    /// Computes the outputs. Called only with inputs of the shapes given to ``inferOutputs(_:)``.
    func run(_ inputs: [Tensor?]) throws -> [Tensor]
}

extension ONNXOperator {
    /// Returns the input at `index`, or throws when the node omits it.
    func required(_ inputs: [ValueInfo?], _ index: Int, _ what: String) throws -> ValueInfo {
        guard index < inputs.count, let v = inputs[index] else { throw OperatorError("missing input \(index) (\(what))") }
        return v
    }

    /// Returns the tensor at `index`, or throws when the node omits it.
    func required(_ inputs: [Tensor?], _ index: Int, _ what: String) throws -> Tensor {
        guard index < inputs.count, let v = inputs[index] else { throw OperatorError("missing input \(index) (\(what))") }
        return v
    }

    /// The constant value of input `index`, or throws explaining that it must be constant
    /// (CAMKit specialises the graph for concrete shapes, so shape-like inputs always fold).
    func constant(_ inputs: [ValueInfo?], _ index: Int, _ what: String) throws -> Tensor {
        let v = try required(inputs, index, what)
        guard let c = v.constant else {
            throw OperatorError("input \(index) (\(what)) must be computable without the model input; it depends on the input values")
        }
        return c
    }
}

/// How ReLU-like activations propagate gradients in a reverse pass.
///
/// Attribution methods swap the rule without touching the graph (Springenberg et al. 2015,
/// "Striving for Simplicity", guided backpropagation; Zeiler & Fergus 2014, deconvnet).
public enum ActivationGradientRule: Sendable, Equatable {
    /// The true derivative: pass the gradient where the input is positive.
    case standard
    /// Guided backpropagation: pass only positive gradients where the input is positive.
    case guided
    /// Deconvnet: apply ReLU to the incoming gradient, ignoring the input's sign.
    case deconvnet
}

/// Settings of one reverse pass that operators' pullbacks consult.
public struct PullbackContext: Sendable {
    /// The rule for `Relu` nodes (other activations always use their true derivative).
    public var reluRule: ActivationGradientRule = .standard
    /// Creates a context.
    public init(reluRule: ActivationGradientRule = .standard) { self.reluRule = reluRule }
}

/// An operator with a vector-Jacobian product, used by the reverse pass.
protocol DifferentiableOperator: ONNXOperator {
    /// The gradients of a scalar with respect to the inputs, given the forward pass's inputs and
    /// outputs and the scalar's gradient with respect to each output (`nil`: zero / unused).
    ///
    /// - Parameter needed: which inputs need a gradient; return `nil` for the others (and for
    ///   integer inputs such as shapes and indices).
    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?]
}
