// Loading a .onnx file into CAMKit's graph types.
//
// Semantics: ONNX IR spec (docs/IR.md): "Models", "Graphs" (nodes in topological order;
// initializers may also be listed as graph inputs — since IR version 4 such inputs are optional
// overrides of the initializer), "Names Within a Graph", "Attributes" and "Tensor Definition".
// CAMKit supports the default domain at opsets `ONNXModel.supportedOpsets` (11–21).

import Foundation
import SwiftProtobuf
import TensorCore

/// An ONNX model loaded from a file or from memory: its metadata, its graph's nodes and
/// initializers (decoded into ``Tensor``s) and its declared inputs and outputs.
///
/// Loading checks that the file is an ONNX model, that the default-domain opset is in
/// ``supportedOpsets`` and that every node input is produced by something. Operators are not
/// checked here (a model can be loaded to inspect its layers); see ``checkOperatorsSupported()``.
///
/// Element types of tensors become CAMKit dtypes as follows: FLOAT, FLOAT16, BFLOAT16 and DOUBLE → Float32;
/// every integer type (INT8/16/32/64, UINT8/16/32/64) → Int64; BOOL → Bool. Other types are
/// refused with ``ONNXGraphError/unsupportedDataType(tensor:type:)``.
///
/// ```swift
/// let model = try ONNXModel(contentsOf: URL(fileURLWithPath: "resnet50.onnx"))
/// print(model.inputs[0].dimensions)   // [batch_size, 3, 224, 224]
/// ```
public struct ONNXModel: Sendable {
    /// The default-domain opset versions CAMKit supports.
    public static let supportedOpsets: ClosedRange<Int> = 11...21

    /// The file the model was loaded from, or `nil` when it was decoded from memory.
    public let url: URL?
    /// The ONNX IR version the file was written with.
    public let irVersion: Int
    /// The operator sets the model imports: domain → version. The default domain is `""`
    /// (files that spell it `"ai.onnx"` are normalised).
    public let opsetImports: [String: Int]
    /// The tool that wrote the file, e.g. `"pytorch"`.
    public let producerName: String
    /// The version of that tool, e.g. `"2.5.1"`.
    public let producerVersion: String
    /// The model-level `metadata_props`.
    public let metadata: [String: String]
    /// The graph's name.
    public let graphName: String
    /// The graph's nodes in file order (ONNX requires topological order). Empty node names are
    /// replaced by a unique `<OpType>_<index>` (index: position in this array).
    public let nodes: [Node]
    /// The graph's initializers (weights and other constants), by name.
    public let initializers: [String: Tensor]
    /// The inputs a caller feeds, in declaration order. Graph inputs that are also initializers
    /// (allowed as overridable defaults since IR version 4) are constants for CAMKit and are
    /// not listed. An input declared without an element type is taken as Float32; `dimensions`
    /// is empty when the file declares no shape.
    public let inputs: [GraphValue]
    /// The graph's outputs, in declaration order (same conventions as ``inputs``).
    public let outputs: [GraphValue]
    /// Shapes and types the file declares for intermediate values (`value_info`), by name;
    /// often empty. Entries of element types CAMKit does not support are left out.
    public let valueInfo: [String: GraphValue]

    /// The version of the default domain's opset (the model is only loaded when it is in
    /// ``supportedOpsets``).
    public var opset: Int { opsetImports[""] ?? 0 }

    /// The op types of the default domain that CAMKit implements, sorted.
    public static var supportedOpTypes: [String] { OperatorRegistry.supportedOpTypes }

    /// Loads the model in the file at `url`. External tensor data is read from files beside it.
    ///
    /// - Parameter url: a file URL of a `.onnx` file.
    /// - Throws: ``ONNXGraphError``: `fileNotFound`, `unreadable`, `notONNX` (empty, truncated or
    ///   another format), `unsupportedOpset`, `unsupportedDataType`, `invalidTensor`,
    ///   `externalDataMissing`, `externalDataOutsideModelDirectory`, `undefinedValue`.
    public init(contentsOf url: URL) throws {
        let path = url.path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ONNXGraphError.fileNotFound(path: path)
        }
        if isDirectory.boolValue {
            throw ONNXGraphError.unreadable(path: path, reason: "it is a directory, not a .onnx file")
        }
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .alwaysMapped)
        } catch {
            throw ONNXGraphError.unreadable(path: path, reason: error.localizedDescription)
        }
        try self.init(data: data, path: path, url: url, directory: url.deletingLastPathComponent())
    }

    /// Decodes a model from the bytes of a `.onnx` file.
    ///
    /// - Parameters:
    ///   - serializedData: the file's contents.
    ///   - baseDirectory: the directory external tensor data is relative to; `nil` when the
    ///     model has none (then a tensor with external data throws `externalDataMissing`).
    ///   - name: how to name the model in error messages.
    /// - Throws: the errors of ``init(contentsOf:)`` except `fileNotFound` and `unreadable`.
    public init(serializedData: Data, baseDirectory: URL? = nil, name: String = "<in-memory model>") throws {
        try self.init(data: serializedData, path: name, url: nil, directory: baseDirectory)
    }

    private init(data: Data, path: String, url: URL?, directory: URL?) throws {
        if data.isEmpty {
            throw ONNXGraphError.notONNX(path: path, reason: "the file is empty")
        }
        if let format = recognisedOtherFormat(data) {
            throw ONNXGraphError.notONNX(path: path, reason: format)
        }
        let proto: Onnx_ModelProto
        do {
            proto = try Onnx_ModelProto(serializedBytes: data)
        } catch {
            throw ONNXGraphError.notONNX(path: path, reason: describeDecodingError(error))
        }
        guard proto.hasGraph else {
            throw ONNXGraphError.notONNX(path: path, reason: "it has no graph (truncated, or another protobuf file)")
        }

        // Opsets.
        var opsets: [String: Int] = [:]
        for entry in proto.opsetImport {
            let domain = entry.domain == "ai.onnx" ? "" : entry.domain
            opsets[domain] = Int(truncatingIfNeeded: entry.version)
        }
        guard let defaultOpset = opsets[""] else {
            throw ONNXGraphError.notONNX(
                path: path,
                reason: proto.opsetImport.isEmpty
                    ? "it imports no operator set (truncated, or another protobuf file)"
                    : "it imports no version of the default ONNX domain")
        }
        guard Self.supportedOpsets.contains(defaultOpset) else {
            throw ONNXGraphError.unsupportedOpset(domain: "", version: defaultOpset, path: path)
        }

        self.url = url
        self.irVersion = Int(truncatingIfNeeded: proto.irVersion)
        self.opsetImports = opsets
        self.producerName = proto.producerName
        self.producerVersion = proto.producerVersion
        self.metadata = dictionary(proto.metadataProps)

        let graph = proto.graph
        self.graphName = graph.name
        let external = DirectoryExternalData(directory: directory)

        // Initializers.
        var initializers: [String: Tensor] = [:]
        initializers.reserveCapacity(graph.initializer.count)
        for (index, t) in graph.initializer.enumerated() {
            let name = t.name.isEmpty ? "initializer #\(index)" : t.name
            initializers[t.name] = try decodeTensor(t, name: name, external: external)
        }
        self.initializers = initializers

        // Nodes, with unique synthetic names where the file has none.
        var taken = Set(graph.node.lazy.map(\.name).filter { !$0.isEmpty })
        var nodes: [Node] = []
        nodes.reserveCapacity(graph.node.count)
        for (index, n) in graph.node.enumerated() {
            var name = n.name
            if name.isEmpty {
                let base = "\(n.opType)_\(index)"
                name = base
                var suffix = 1
                while taken.contains(name) {
                    name = "\(base)_\(suffix)"
                    suffix += 1
                }
                taken.insert(name)
            }
            nodes.append(try convertNode(n, name: name, external: external))
        }
        self.nodes = nodes

        // Inputs, outputs, value_info.
        self.inputs = try graph.input.filter { initializers[$0.name] == nil }.map { try declaration($0) }
        self.outputs = try graph.output.map { try declaration($0) }
        var valueInfo: [String: GraphValue] = [:]
        for v in graph.valueInfo {
            if let d = try? declaration(v) { valueInfo[v.name] = d }
        }
        self.valueInfo = valueInfo

        try checkValuesDefined()
    }

    /// Checks that every node input and graph output is produced by a node, an initializer or a
    /// graph input.
    private func checkValuesDefined() throws {
        var defined = Set(initializers.keys)
        defined.formUnion(inputs.map(\.name))
        for node in nodes { defined.formUnion(node.outputs) }
        for node in nodes {
            for input in node.inputs where !input.isEmpty && !defined.contains(input) {
                throw ONNXGraphError.undefinedValue(name: input, node: node.name)
            }
        }
        for output in outputs where !defined.contains(output.name) {
            throw ONNXGraphError.undefinedValue(name: output.name, node: "graph output '\(output.name)'")
        }
    }

    /// Checks that CAMKit implements every node's operator.
    ///
    /// - Throws: ``ONNXGraphError/unsupportedOperator(opType:domain:opset:node:supported:)`` for
    ///   the first node whose operator is missing (nodes of other domains are always unsupported).
    public func checkOperatorsSupported() throws {
        for node in nodes where OperatorRegistry.operatorType(opType: node.opType, domain: node.domain) == nil {
            let domain = node.domain == "ai.onnx" ? "" : node.domain
            throw ONNXGraphError.unsupportedOperator(
                opType: node.opType, domain: domain, opset: opsetImports[domain] ?? 0, node: node.name,
                supported: OperatorRegistry.supportedOpTypes)
        }
    }
}

// MARK: Conversion helpers

/// `metadata_props`-style entries as a dictionary (a repeated key keeps its last value).
private func dictionary(_ entries: [Onnx_StringStringEntryProto]) -> [String: String] {
    var result: [String: String] = [:]
    for e in entries { result[e.key] = e.value }
    return result
}

/// The declaration of a graph value: element type (Float32 when undeclared) and dimensions
/// (empty when undeclared).
/// - Throws: ``ONNXGraphError/unsupportedDataType(tensor:type:)`` for a declared element type
///   CAMKit cannot represent, or a value that is not a tensor (a sequence, a map...).
private func declaration(_ v: Onnx_ValueInfoProto) throws -> GraphValue {
    guard v.hasType else { return GraphValue(name: v.name, dtype: .float32, dimensions: []) }
    guard case .tensorType(let t)? = v.type.value else {
        throw ONNXGraphError.unsupportedDataType(tensor: v.name, type: "a non-tensor type (sequence, map, optional or sparse)")
    }
    var dtype = DType.float32
    if t.elemType != 0 {
        guard let d = ONNXElementType.dtype(t.elemType) else {
            throw ONNXGraphError.unsupportedDataType(tensor: v.name, type: ONNXElementType.name(t.elemType))
        }
        dtype = d
    }
    let dimensions: [TensorDimension] = t.shape.dim.map { d in
        switch d.value {
        case .dimValue(let v)?: return v >= 0 ? .fixed(Int(truncatingIfNeeded: v)) : .unknown
        case .dimParam(let p)?: return p.isEmpty ? .unknown : .symbolic(p)
        case nil: return .unknown
        }
    }
    return GraphValue(name: v.name, dtype: dtype, dimensions: dimensions)
}

/// Converts a `NodeProto` into a ``Node`` named `name`.
private func convertNode(_ n: Onnx_NodeProto, name: String, external: any ExternalDataSource) throws -> Node {
    var attributes: [String: Attribute] = [:]
    for a in n.attribute {
        if let value = try convertAttribute(a, node: name, external: external) {
            attributes[a.name] = value
        }
    }
    return Node(name: name, opType: n.opType, domain: n.domain == "ai.onnx" ? "" : n.domain,
                inputs: n.input, outputs: n.output, attributes: attributes,
                metadata: dictionary(n.metadataProps))
}

/// Converts one attribute; `nil` for kinds ``Attribute`` has no case for (lists of tensors or
/// graphs, sparse tensors, type protos), which no operator CAMKit implements reads.
private func convertAttribute(_ a: Onnx_AttributeProto, node: String,
                              external: any ExternalDataSource) throws -> Attribute? {
    func string(_ d: Data) -> String { String(decoding: d, as: UTF8.self) }
    var type = a.type
    if !a.hasType || type == .undefined {
        // Files before IR version 3 (or careless writers) leave `type` unset: infer it.
        if a.hasF { type = .float }
        else if a.hasI { type = .int }
        else if a.hasS { type = .string }
        else if a.hasT { type = .tensor }
        else if a.hasG { type = .graph }
        else if !a.floats.isEmpty { type = .floats }
        else if !a.ints.isEmpty { type = .ints }
        else if !a.strings.isEmpty { type = .strings }
        else if !a.graphs.isEmpty { type = .graphs }
        else { return nil }
    }
    switch type {
    case .float: return .float(a.f)
    case .int: return .int(Int(truncatingIfNeeded: a.i))
    case .string: return .string(string(a.s))
    case .tensor:
        // Named after the node and attribute, e.g. "Constant_3.value", for error messages.
        return .tensor(try decodeTensor(a.t, name: "\(node).\(a.name)", external: external))
    case .graph, .graphs: return .graph
    case .floats: return .floats(a.floats)
    case .ints: return .ints(a.ints.map { Int(truncatingIfNeeded: $0) })
    case .strings: return .strings(a.strings.map(string))
    default: return nil
    }
}

/// A reason when the bytes are recognisably another format, else `nil`.
private func recognisedOtherFormat(_ data: Data) -> String? {
    let head = [UInt8](data.prefix(16))
    func starts(_ magic: [UInt8]) -> Bool { head.count >= magic.count && Array(head.prefix(magic.count)) == magic }
    if starts([0xFF, 0xD8, 0xFF]) { return "it is a JPEG image" }
    if starts([0x89, 0x50, 0x4E, 0x47]) { return "it is a PNG image" }
    if starts(Array("PK\u{03}\u{04}".utf8)) {
        return "it is a zip archive, e.g. a PyTorch checkpoint (.pt/.pth); export the model to ONNX first"
    }
    if starts([0x80]) && head.count > 1 && (2...5).contains(head[1]) {
        return "it is a Python pickle, e.g. a legacy PyTorch checkpoint; export the model to ONNX first"
    }
    if starts(Array("version https://git-lfs".utf8)) {
        return "it is a Git LFS pointer, not the file itself; run 'git lfs pull'"
    }
    if starts(Array("<".utf8)) {
        return "it is an HTML/XML page, perhaps a download error page"
    }
    return nil
}

/// A short reason for a protobuf decoding error.
private func describeDecodingError(_ error: any Error) -> String {
    if let e = error as? BinaryDecodingError {
        switch e {
        case .truncated: return "the protobuf data is truncated: the file is incomplete; download or export it again"
        case .malformedProtobuf: return "the bytes are not valid protobuf data"
        case .messageDepthLimit: return "the protobuf data is nested too deeply"
        case .invalidUTF8: return "a string in it is not valid UTF-8"
        default: return "protobuf decoding failed: \(e)"
        }
    }
    return "protobuf decoding failed: \(error)"
}
