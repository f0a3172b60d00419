import TensorCore

/// The value of one ONNX node attribute (ONNX IR `AttributeProto`).
public enum Attribute: Sendable, Equatable {
    case float(Float)
    case int(Int)
    case string(String)
    case tensor(Tensor)
    case floats([Float])
    case ints([Int])
    case strings([String])
    /// A subgraph (If/Loop/Scan bodies); CAMKit does not execute these.
    case graph
}

/// One node of an ONNX graph, independent of the protobuf types.
public struct Node: Sendable {
    /// The node's name as exported (may be empty; then a synthetic `<opType>_<index>` is used).
    public var name: String
    /// The operator type, e.g. `"Conv"`.
    public var opType: String
    /// The operator set domain; `""` and `"ai.onnx"` both mean the default domain.
    public var domain: String
    /// Input tensor names; `""` marks an omitted optional input.
    public var inputs: [String]
    /// Output tensor names; `""` marks an unused optional output.
    public var outputs: [String]
    /// Attributes by name.
    public var attributes: [String: Attribute]
    /// Exporter metadata (the dynamo exporter stores module scopes under
    /// `pkg.torch.onnx.name_scopes`).
    public var metadata: [String: String]

    /// Creates a node.
    public init(name: String, opType: String, domain: String = "", inputs: [String], outputs: [String],
                attributes: [String: Attribute] = [:], metadata: [String: String] = [:]) {
        self.name = name
        self.opType = opType
        self.domain = domain
        self.inputs = inputs
        self.outputs = outputs
        self.attributes = attributes
        self.metadata = metadata
    }
}

// MARK: Typed attribute access used by the operator files

extension Node {
    /// An integer attribute, or `defaultValue` when absent.
    /// - Throws: ``OperatorError`` when the attribute has another type.
    func int(_ key: String, default defaultValue: Int) throws -> Int {
        switch attributes[key] {
        case nil: return defaultValue
        case .int(let v)?: return v
        default: throw OperatorError("attribute '\(key)' must be an integer")
        }
    }

    /// A required integer attribute.
    func int(_ key: String) throws -> Int {
        guard case .int(let v)? = attributes[key] else { throw OperatorError("missing integer attribute '\(key)'") }
        return v
    }

    /// A float attribute, or `defaultValue` when absent (integers are accepted and converted).
    func float(_ key: String, default defaultValue: Float) throws -> Float {
        switch attributes[key] {
        case nil: return defaultValue
        case .float(let v)?: return v
        case .int(let v)?: return Float(v)
        default: throw OperatorError("attribute '\(key)' must be a float")
        }
    }

    /// A string attribute, or `defaultValue` when absent.
    func string(_ key: String, default defaultValue: String) throws -> String {
        switch attributes[key] {
        case nil: return defaultValue
        case .string(let v)?: return v
        default: throw OperatorError("attribute '\(key)' must be a string")
        }
    }

    /// An integer-list attribute, or `nil` when absent.
    func ints(_ key: String) throws -> [Int]? {
        switch attributes[key] {
        case nil: return nil
        case .ints(let v)?: return v
        case .int(let v)?: return [v]
        default: throw OperatorError("attribute '\(key)' must be a list of integers")
        }
    }

    /// A float-list attribute, or `nil` when absent.
    func floats(_ key: String) throws -> [Float]? {
        switch attributes[key] {
        case nil: return nil
        case .floats(let v)?: return v
        case .float(let v)?: return [v]
        default: throw OperatorError("attribute '\(key)' must be a list of floats")
        }
    }

    /// A tensor attribute, or `nil` when absent.
    func tensor(_ key: String) throws -> Tensor? {
        switch attributes[key] {
        case nil: return nil
        case .tensor(let v)?: return v
        default: throw OperatorError("attribute '\(key)' must be a tensor")
        }
    }
}
