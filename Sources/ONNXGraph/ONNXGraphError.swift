import TensorCore

/// A problem with an ONNX model file or with the way a model is used, in words for the user.
///
/// Every case names what it is about (the file, the node, the tensor or the input) and its
/// ``description`` is one line that also says what to do. The CLI prints that line on stderr.
///
/// Cases are grouped: reading the file, decoding its tensors, checking its graph, and running
/// it with concrete inputs. New cases are added at the end of their group.
public enum ONNXGraphError: Error, Sendable, Equatable, CustomStringConvertible {
    // MARK: Reading the file

    /// No file exists at `path`.
    case fileNotFound(path: String)
    /// The file exists but could not be read (permissions, a directory, an I/O error).
    case unreadable(path: String, reason: String)
    /// The file is not an ONNX model: empty, truncated, another format (an image, a PyTorch
    /// checkpoint, a Git LFS pointer) or a protobuf message without a graph.
    case notONNX(path: String, reason: String)
    /// The model imports a version of an operator-set domain that CAMKit does not support.
    /// `domain` is `""` for the default ONNX domain.
    case unsupportedOpset(domain: String, version: Int, path: String)

    // MARK: Decoding tensors

    /// A tensor (initializer, `Constant` value or tensor attribute) has an element type CAMKit
    /// cannot represent. `type` is the ONNX name, e.g. `"STRING"` or `"COMPLEX64"`.
    case unsupportedDataType(tensor: String, type: String)
    /// A tensor whose data is stored outside the model could not be found; `location` is the
    /// file it names (resolved against the model's directory when that is known).
    case externalDataMissing(tensor: String, location: String)
    /// A tensor's external data location points outside the model's directory (an absolute path
    /// or one that climbs out with `..` or a symbolic link); CAMKit refuses to read it.
    case externalDataOutsideModelDirectory(tensor: String, location: String)
    /// A tensor's stored data does not match its declared shape and type (wrong byte count,
    /// negative dimension, range past the end of its external file...).
    case invalidTensor(tensor: String, reason: String)

    // MARK: Checking the graph

    /// A node uses an operator CAMKit does not implement. `supported` lists the op types of the
    /// default domain that are implemented.
    case unsupportedOperator(opType: String, domain: String, opset: Int, node: String, supported: [String])
    /// A node input (or graph output) names a value that no node, initializer or graph input
    /// produces — typically a missing initializer. `node` is the consuming node's name.
    case undefinedValue(name: String, node: String)
    /// A node's attributes or inputs are invalid for its operator (wraps ``OperatorError``).
    case invalidNode(name: String, opType: String, reason: String)

    // MARK: Running the model

    /// An input was given by a name the model does not have.
    case inputNotFound(name: String, available: [String])
    /// An input's shape does not match the model's declaration (`expected` keeps symbolic
    /// dimensions, which match any extent).
    case inputShapeMismatch(input: String, expected: [TensorDimension], got: [Int])
    /// A symbolic dimension of an input has no concrete value (no input supplied it).
    case unboundDimension(input: String, dimension: String)
    /// A different number of inputs was given than the model declares.
    case inputCountMismatch(expected: [String], got: Int)
    /// An input's dtype differs from the model's declaration.
    case inputTypeMismatch(input: String, expected: DType, got: DType)
    /// A value (tensor) name the model does not contain; `suggestions` are the closest names.
    case unknownValue(name: String, suggestions: [String])
    /// A layer name (module path, node or tensor name) the model does not contain;
    /// `suggestions` are the closest names.
    case unknownLayer(String, suggestions: [String])

    /// One line for the user: what is wrong, where, and what to do.
    public var description: String {
        switch self {
        case .fileNotFound(let path):
            return "model file '\(path)' not found: check the path (relative paths start at the current directory)"
        case .unreadable(let path, let reason):
            return "cannot read model file '\(path)': \(reason)"
        case .notONNX(let path, let reason):
            return "'\(path)' is not an ONNX model (\(reason)); export one with torch.onnx.export(model, example_input, \"model.onnx\", opset_version=17)"
        case .unsupportedOpset(let domain, let version, let path):
            let supported = ONNXModel.supportedOpsets
            if domain.isEmpty || domain == "ai.onnx" {
                return "'\(path)' uses opset \(version); CAMKit supports \(supported.lowerBound)–\(supported.upperBound): re-export with torch.onnx.export(..., opset_version=17)"
            }
            return "'\(path)' uses version \(version) of operator domain '\(domain)', which CAMKit does not support: re-export with only standard ONNX operators (torch.onnx.export(..., opset_version=17))"
        case .unsupportedDataType(let tensor, let type):
            return "tensor '\(tensor)' has element type \(type), which CAMKit does not support (it supports float32/16/64, bfloat16, integer and bool tensors): convert the model's weights to float32 before export"
        case .externalDataMissing(let tensor, let location):
            return "tensor '\(tensor)' keeps its data in the external file '\(location)', which was not found: put that file beside the .onnx file (and load the model from its file, not from memory)"
        case .externalDataOutsideModelDirectory(let tensor, let location):
            return "tensor '\(tensor)' names external data '\(location)' outside the model's directory; CAMKit only reads external data beside the model: move the file next to the .onnx file and re-save the model"
        case .invalidTensor(let tensor, let reason):
            return "tensor '\(tensor)' is malformed: \(reason); re-export the model"
        case .unsupportedOperator(let opType, let domain, let opset, let node, let supported):
            let qualified = domain.isEmpty || domain == "ai.onnx" ? "\(opType) (opset \(opset))" : "\(domain).\(opType) (version \(opset))"
            return "node '\(node)' uses operator \(qualified), which CAMKit does not implement; supported: \(supported.joined(separator: ", "))"
        case .undefinedValue(let name, let node):
            return "'\(node)' reads value '\(name)', which no node, initializer or graph input produces (missing initializer?): re-export the model, keeping its parameters inside (export_params=True)"
        case .invalidNode(let name, let opType, let reason):
            return "node '\(name)' (\(opType)): \(reason)"
        case .inputNotFound(let name, let available):
            return "the model has no input '\(name)'; its inputs are: \(available.map { "'\($0)'" }.joined(separator: ", "))"
        case .inputShapeMismatch(let input, let expected, let got):
            let want = "[" + expected.map(\.description).joined(separator: ", ") + "]"
            return "input '\(input)' has shape \(got) but the model expects \(want): resize or reshape the input (symbolic dimensions accept any size)"
        case .unboundDimension(let input, let dimension):
            return "dimension '\(dimension)' of input '\(input)' has no value: supply an input whose shape fixes it"
        case .inputCountMismatch(let expected, let got):
            return "\(got) input\(got == 1 ? "" : "s") given but the model takes \(expected.count) (\(expected.map { "'\($0)'" }.joined(separator: ", "))): pass one tensor per model input, in that order"
        case .inputTypeMismatch(let input, let expected, let got):
            return "input '\(input)' is \(got) but the model expects \(expected): convert it with converted(to: .\(expected))"
        case .unknownValue(let name, let suggestions):
            return "the model has no value '\(name)'" + didYouMean(suggestions)
        case .unknownLayer(let name, let suggestions):
            return "unknown layer '\(name)'" + didYouMean(suggestions)
        }
    }
}

/// `" — did you mean 'a' or 'b'?"`, or nothing without suggestions.
private func didYouMean(_ suggestions: [String]) -> String {
    guard !suggestions.isEmpty else { return "" }
    let quoted = suggestions.prefix(3).map { "'\($0)'" }
    let list = quoted.count == 1 ? quoted[0] : quoted.dropLast().joined(separator: ", ") + " or " + quoted[quoted.count - 1]
    return " — did you mean \(list)?"
}
