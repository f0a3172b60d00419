// Tests of the ONNX importer (Sources/ONNXGraph/Import/).
//
// Fixtures: Tests/ONNXGraphTests/Fixtures/import/, written by
// Scripts/fixtures/make_import_fixtures.py with the official `onnx` package, so these tests also
// check that CAMKit's reduced Protos/onnx.proto reads files written by the reference.
// A few edge cases are built here from the generated protobuf types instead.

import Foundation
import Testing
import TensorCore
@testable import ONNXGraph

private let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("Fixtures/import")

private func fixture(_ name: String) -> URL { fixtures.appendingPathComponent(name) }

/// The error `body` throws, as an ``ONNXGraphError`` (records an issue when it throws something
/// else or nothing).
private func importError(sourceLocation: SourceLocation = #_sourceLocation,
                         _ body: () throws -> Void) -> ONNXGraphError? {
    do {
        try body()
        Issue.record("expected an ONNXGraphError, nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as ONNXGraphError {
        return error
    } catch {
        Issue.record("expected an ONNXGraphError, got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

@Suite struct ImportTests {
    // MARK: Inline initializers

    @Test func modelMetadataAndOpsets() throws {
        let model = try ONNXModel(contentsOf: fixture("inline.onnx"))
        #expect(model.irVersion == 8)
        #expect(model.opsetImports == ["": 17, "com.camkit.test": 1])
        #expect(model.opset == 17)
        #expect(model.producerName == "camkit-fixtures")
        #expect(model.producerVersion == "1.0")
        #expect(model.metadata == ["author": "importer"])
        #expect(model.graphName == "inline")
        #expect(model.url == fixture("inline.onnx"))
    }

    @Test func floatInitializersRawAndTyped() throws {
        let inits = try ONNXModel(contentsOf: fixture("inline.onnx")).initializers
        let wRaw = try #require(inits["w_raw"])
        #expect(wRaw == Tensor(shape: [2, 3], scalars: [-1, -0.5, 0, 0.5, 1, 1.5]))
        #expect(inits["w_typed"] == Tensor(shape: [3], scalars: [0.25, -4, 1e-3]))
        #expect(inits["scalar"] == Tensor(3.5))
        #expect(inits["empty"] == Tensor(shape: [0, 4], scalars: []))
        // DOUBLE → Float32 (rounded to nearest; -1e300 overflows to -inf).
        #expect(inits["d_typed"] == Tensor(shape: [2], scalars: [Float(0.1), -.infinity]))
        #expect(inits["d_raw"] == Tensor(shape: [1], scalars: [2.5]))
    }

    @Test func float16InitializersRawAndTyped() throws {
        let inits = try ONNXModel(contentsOf: fixture("inline.onnx")).initializers
        let expected: [Float] = [1, -2.5, 65504, 0x1p-24, -0.0, 0.333251953125, .infinity]
        for name in ["h16_raw", "h16_typed"] {
            let t = try #require(inits[name], "\(name)")
            #expect(t.dtype == .float32)
            #expect(t.shape == [7])
            // Bit-exact (distinguishes -0 from +0).
            #expect(t.scalars.map(\.bitPattern) == expected.map(\.bitPattern), "\(name)")
        }
    }

    @Test func integerAndBoolInitializers() throws {
        let inits = try ONNXModel(contentsOf: fixture("inline.onnx")).initializers
        #expect(inits["i32_raw"] == Tensor(shape: [4], int64s: [1, -2, Int64(Int32.max), Int64(Int32.min)]))
        #expect(inits["i32_typed"] == Tensor(shape: [2, 2], int64s: [7, -8, 9, -10]))
        #expect(inits["i64_raw"] == Tensor(shape: [3], int64s: [1 << 40, -1, 0]))
        #expect(inits["i64_typed"] == Tensor(shape: [2], int64s: [-(1 << 62), 5]))
        #expect(inits["u8_raw"] == Tensor(shape: [3], int64s: [0, 200, 255]))
        #expect(inits["i8_typed"] == Tensor(shape: [3], int64s: [-128, 0, 127]))
        #expect(inits["b_raw"] == Tensor(shape: [4], bools: [true, false, false, true]))
        #expect(inits["b_typed"] == Tensor(shape: [3], bools: [false, true, true]))
    }

    @Test func halfConversionCoversEveryClass() {
        #expect(floatFromHalfBits(0x3C00) == 1)
        #expect(floatFromHalfBits(0xC000) == -2)
        #expect(floatFromHalfBits(0x7BFF) == 65504)
        #expect(floatFromHalfBits(0x0400) == 0x1p-14)           // smallest normal
        #expect(floatFromHalfBits(0x03FF) == 1023 * 0x1p-24)    // largest subnormal
        #expect(floatFromHalfBits(0x0001) == 0x1p-24)           // smallest subnormal
        #expect(floatFromHalfBits(0x8000).bitPattern == (-0.0 as Float).bitPattern)
        #expect(floatFromHalfBits(0x7C00) == .infinity)
        #expect(floatFromHalfBits(0xFC00) == -.infinity)
        #expect(floatFromHalfBits(0x7E00).isNaN)
        // Exhaustive against Swift's own Float16 where the platform has it.
        #if !(os(macOS) && arch(x86_64))
        for bits in UInt16.min...UInt16.max {
            let reference = Float(Float16(bitPattern: bits))
            let ours = floatFromHalfBits(bits)
            if reference.isNaN { #expect(ours.isNaN) } else if ours.bitPattern != reference.bitPattern {
                Issue.record("half \(String(bits, radix: 16)): \(ours) != \(reference)")
                break
            }
        }
        #endif
        #expect(floatFromBFloat16Bits(0x3F80) == 1)
        #expect(floatFromBFloat16Bits(0xC0A0) == -5)
    }

    // MARK: Graph: nodes, attributes, inputs, outputs

    @Test func nodeNamesAreSynthesisedUniquely() throws {
        let model = try ONNXModel(contentsOf: fixture("inline.onnx"))
        #expect(model.nodes.map(\.name) == ["Relu_0", "Flatten_2", "Flatten_2_1", "const", "conv", "probe",
                                            "/layer4/layer4.2/fc/Gemm"])
        #expect(Set(model.nodes.map(\.name)).count == model.nodes.count)
        #expect(model.nodes[0].inputs == ["x"] && model.nodes[0].outputs == ["r"])
        #expect(model.nodes[4].inputs == ["x", "w_raw", ""])  // omitted optional input kept as ""
    }

    @Test func attributesOfEveryKind() throws {
        let model = try ONNXModel(contentsOf: fixture("inline.onnx"))
        let conv = model.nodes[4]
        #expect(conv.attributes["kernel_shape"] == .ints([1, 1]))
        #expect(conv.attributes["auto_pad"] == .string("NOTSET"))
        #expect(model.nodes[2].attributes["axis"] == .int(1))
        #expect(model.nodes[3].attributes["value"] == .tensor(Tensor(shape: [2], scalars: [1.5, -1.5])))

        let probe = model.nodes[5]
        #expect(probe.domain == "com.camkit.test")
        #expect(probe.attributes["alpha"] == .float(0.5))
        #expect(probe.attributes["count"] == .int(-3))
        #expect(probe.attributes["mode"] == .string("nearest"))
        #expect(probe.attributes["sizes"] == .ints([1, 2, 3]))
        #expect(probe.attributes["scales"] == .floats([0.5, 2]))
        #expect(probe.attributes["names"] == .strings(["a", "b"]))
        #expect(probe.attributes["weights"] == .tensor(Tensor(shape: [2], int64s: [4, 5])))
        #expect(probe.attributes["body"] == .graph)
    }

    @Test func nodeMetadataProps() throws {
        let model = try ONNXModel(contentsOf: fixture("inline.onnx"))
        let gemm = try #require(model.nodes.last)
        #expect(gemm.metadata["pkg.torch.onnx.name_scopes"] == "['', 'layer4', 'layer4.2', 'fc']")
        #expect(gemm.metadata["pkg.torch.onnx.class_hierarchy"] == "['Model', 'Linear']")
        #expect(model.nodes[0].metadata.isEmpty)
    }

    @Test func symbolicInputDimsAndInitializerInputsFiltered() throws {
        let model = try ONNXModel(contentsOf: fixture("inline.onnx"))
        // "w_raw" is also declared as a graph input, but it is an initializer: not a real input.
        #expect(model.inputs == [GraphValue(name: "x", dtype: .float32,
                                            dimensions: [.symbolic("batch"), .fixed(3), .fixed(224), .unknown])])
        #expect(model.outputs == [GraphValue(name: "y", dtype: .float32, dimensions: [.symbolic("batch"), .fixed(6)])])
        #expect(model.valueInfo["f"]?.dimensions == [.symbolic("batch"), .symbolic("flat")])
    }

    @Test func unsupportedOperatorsAreReportedOnRequest() throws {
        let model = try ONNXModel(contentsOf: fixture("inline.onnx"))
        let error = importError { try model.checkOperatorsSupported() }
        guard case .unsupportedOperator(let opType, _, _, let node, let supported)? = error else {
            Issue.record("got \(String(describing: error))")
            return
        }
        // Whatever the registry holds when this runs, the message names the node and lists it.
        #expect(supported == OperatorRegistry.supportedOpTypes)
        #expect(error?.description.contains("node '\(node)' uses operator") == true)
        #expect(!opType.isEmpty)
    }

    // MARK: External data

    @Test func externalDataWithOffsetAndLength() throws {
        let model = try ONNXModel(contentsOf: fixture("external.onnx"))
        #expect(model.initializers["ext_a"] == Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6]))
        #expect(model.initializers["ext_b"] == Tensor(shape: [3], int64s: [10, 20, 30]))
    }

    @Test func missingExternalFile() {
        let error = importError { _ = try ONNXModel(contentsOf: fixture("missing_external.onnx")) }
        guard case .externalDataMissing(let tensor, let location)? = error else {
            Issue.record("got \(String(describing: error))")
            return
        }
        #expect(tensor == "ext_a")
        #expect(location.hasSuffix("Fixtures/import/missing.bin"))
        #expect(error?.description.contains("put that file beside the .onnx file") == true)
    }

    @Test func externalDataEscapingTheModelDirectoryIsRefused() {
        let error = importError { _ = try ONNXModel(contentsOf: fixture("escaping_external.onnx")) }
        #expect(error == .externalDataOutsideModelDirectory(tensor: "ext_a", location: "../escape.bin"))
    }

    @Test func externalDataThroughASymbolicLinkOutOfTheDirectoryIsRefused() throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("camkit-import-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        // link.bin → the fixture directory's external.bin, which is outside `directory`.
        try FileManager.default.createSymbolicLink(at: directory.appendingPathComponent("link.bin"),
                                                   withDestinationURL: fixture("external.bin"))
        var proto = try Onnx_ModelProto(serializedBytes: Data(contentsOf: fixture("external.onnx")))
        for i in proto.graph.initializer.indices { proto.graph.initializer[i].externalData[0].value = "link.bin" }
        let modelURL = directory.appendingPathComponent("model.onnx")
        try (try proto.serializedBytes() as Data).write(to: modelURL)
        let error = importError { _ = try ONNXModel(contentsOf: modelURL) }
        #expect(error == .externalDataOutsideModelDirectory(tensor: "ext_a", location: "link.bin"))

        // A data file inside the directory (reached through the same kind of name) is fine.
        try FileManager.default.removeItem(at: directory.appendingPathComponent("link.bin"))
        try FileManager.default.copyItem(at: fixture("external.bin"), to: directory.appendingPathComponent("link.bin"))
        #expect(try ONNXModel(contentsOf: modelURL).initializers["ext_a"] == Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6]))
    }

    @Test func externalDataNeedsADirectoryWhenLoadedFromMemory() throws {
        let data = try Data(contentsOf: fixture("external.onnx"))
        let error = importError { _ = try ONNXModel(serializedData: data) }
        #expect(error == .externalDataMissing(tensor: "ext_a", location: "external.bin"))
        let model = try ONNXModel(serializedData: data, baseDirectory: fixtures)
        #expect(model.initializers["ext_b"] == Tensor(shape: [3], int64s: [10, 20, 30]))
        #expect(model.url == nil)
    }

    @Test func externalRangePastTheEndOfTheFile() throws {
        var model = try Onnx_ModelProto(serializedBytes: Data(contentsOf: fixture("external.onnx")))
        model.graph.initializer[1].externalData[1].value = "60"  // offset: 60 + 24 > 68 bytes
        let error = importError {
            _ = try ONNXModel(serializedData: try model.serializedBytes(), baseDirectory: fixtures)
        }
        guard case .invalidTensor(let tensor, let reason)? = error else {
            Issue.record("got \(String(describing: error))")
            return
        }
        #expect(tensor == "ext_b")
        #expect(reason.contains("past the end of 'external.bin'"))
    }

    // MARK: Files that are not (valid) models

    @Test func nonONNXFile() {
        let path = fixture("not_onnx.jpg").path
        let error = importError { _ = try ONNXModel(contentsOf: fixture("not_onnx.jpg")) }
        #expect(error == .notONNX(path: path, reason: "it is a JPEG image"))
        #expect(error?.description.hasPrefix("'\(path)' is not an ONNX model (it is a JPEG image)") == true)
    }

    @Test func truncatedModel() {
        let error = importError { _ = try ONNXModel(contentsOf: fixture("truncated.onnx")) }
        guard case .notONNX(let path, let reason)? = error else {
            Issue.record("got \(String(describing: error))")
            return
        }
        #expect(path.hasSuffix("truncated.onnx"))
        #expect(reason.contains("truncated"))
    }

    @Test func everyTruncationIsAnErrorNotACrash() throws {
        let data = try Data(contentsOf: fixture("inline.onnx"))
        for length in stride(from: 0, to: data.count, by: 7) {
            #expect(throws: ONNXGraphError.self) { _ = try ONNXModel(serializedData: data.prefix(length)) }
        }
    }

    @Test func emptyFile() {
        let path = fixture("empty.onnx").path
        let error = importError { _ = try ONNXModel(contentsOf: fixture("empty.onnx")) }
        #expect(error == .notONNX(path: path, reason: "the file is empty"))
    }

    @Test func missingFile() {
        let path = fixture("no_such_model.onnx").path
        let error = importError { _ = try ONNXModel(contentsOf: fixture("no_such_model.onnx")) }
        #expect(error == .fileNotFound(path: path))
        #expect(error?.description.contains("not found") == true)
    }

    @Test func directoryInsteadOfFile() {
        let error = importError { _ = try ONNXModel(contentsOf: fixtures) }
        guard case .unreadable(_, let reason)? = error else {
            Issue.record("got \(String(describing: error))")
            return
        }
        #expect(reason.contains("directory"))
    }

    @Test func unsupportedOpset() {
        let path = fixture("opset9.onnx").path
        let error = importError { _ = try ONNXModel(contentsOf: fixture("opset9.onnx")) }
        #expect(error == .unsupportedOpset(domain: "", version: 9, path: path))
        #expect(error?.description
            == "'\(path)' uses opset 9; CAMKit supports 11–21: re-export with torch.onnx.export(..., opset_version=17)")
    }

    @Test func undefinedValueIsAMissingInitializer() {
        let error = importError { _ = try ONNXModel(contentsOf: fixture("undefined_value.onnx")) }
        #expect(error == .undefinedValue(name: "bias", node: "add"))
        #expect(error?.description.contains("missing initializer") == true)
    }

    @Test func unsupportedDataTypeNamesTensorAndType() {
        let error = importError { _ = try ONNXModel(contentsOf: fixture("string_initializer.onnx")) }
        #expect(error == .unsupportedDataType(tensor: "labels", type: "STRING"))
    }

    // MARK: Edge cases built in memory

    /// A one-node model (`y = Identity(x)`) with opset 17, for tweaking.
    private func minimalModel() -> Onnx_ModelProto {
        var model = Onnx_ModelProto()
        model.irVersion = 8
        var opset = Onnx_OperatorSetIdProto()
        opset.domain = "ai.onnx"
        opset.version = 17
        model.opsetImport = [opset]
        var node = Onnx_NodeProto()
        node.opType = "Identity"
        node.input = ["x"]
        node.output = ["y"]
        model.graph.node = [node]
        var x = Onnx_ValueInfoProto()
        x.name = "x"
        model.graph.input = [x]
        var y = Onnx_ValueInfoProto()
        y.name = "y"
        model.graph.output = [y]
        return model
    }

    @Test func aiOnnxDomainIsTheDefaultDomain() throws {
        let model = try ONNXModel(serializedData: try minimalModel().serializedBytes())
        #expect(model.opsetImports == ["": 17])
        #expect(model.nodes[0].name == "Identity_0")
        // An input without a type is taken as Float32 of unknown shape.
        #expect(model.inputs == [GraphValue(name: "x", dtype: .float32, dimensions: [])])
    }

    @Test func attributeTypeIsInferredWhenUnset() throws {
        var proto = minimalModel()
        var a = Onnx_AttributeProto()
        a.name = "axes"
        a.ints = [0, -1]
        var b = Onnx_AttributeProto()
        b.name = "epsilon"
        b.f = 1e-5
        proto.graph.node[0].attribute = [a, b]
        let node = try ONNXModel(serializedData: try proto.serializedBytes()).nodes[0]
        #expect(node.attributes["axes"] == .ints([0, -1]))
        #expect(node.attributes["epsilon"] == .float(1e-5))
    }

    @Test func malformedTensorsAreErrors() throws {
        func load(_ tensor: Onnx_TensorProto) -> ONNXGraphError? {
            var proto = minimalModel()
            proto.graph.initializer = [tensor]
            return importError { _ = try ONNXModel(serializedData: try proto.serializedBytes()) }
        }
        var short = Onnx_TensorProto()
        short.name = "w"
        short.dataType = 1
        short.dims = [2, 2]
        short.rawData = Data(count: 12)
        #expect(load(short) == .invalidTensor(tensor: "w", reason: "12 bytes of data for 4 elements of FLOAT (expected 16)"))

        var negative = short
        negative.dims = [-1, 4]
        #expect(load(negative) == .invalidTensor(tensor: "w", reason: "negative dimension in shape [-1, 4]"))

        var huge = short
        huge.dims = [1 << 40, 1 << 40]
        if case .invalidTensor(_, let reason)? = load(huge) { #expect(reason.contains("too many elements")) }
        else { Issue.record("huge shape accepted") }

        var hugeButEmpty = short  // refused before allocating 4 TiB
        hugeButEmpty.dims = [1 << 40]
        if case .invalidTensor(_, let reason)? = load(hugeButEmpty) { #expect(reason.contains("12 bytes of data")) }
        else { Issue.record("huge shape accepted") }

        var noData = Onnx_TensorProto()
        noData.name = "w"
        noData.dataType = 7
        noData.dims = [3]
        if case .invalidTensor(_, let reason)? = load(noData) { #expect(reason.contains("no data")) }
        else { Issue.record("tensor without data accepted") }

        var complex = short
        complex.dataType = 14
        #expect(load(complex) == .unsupportedDataType(tensor: "w", type: "COMPLEX64"))

        var bigUnsigned = Onnx_TensorProto()
        bigUnsigned.name = "u"
        bigUnsigned.dataType = 13
        bigUnsigned.dims = [1]
        bigUnsigned.uint64Data = [UInt64.max]
        if case .invalidTensor(_, let reason)? = load(bigUnsigned) { #expect(reason.contains("does not fit")) }
        else { Issue.record("UINT64.max accepted") }
    }

    @Test func protobufWithoutGraphIsNotONNX() throws {
        var proto = Onnx_ModelProto()
        proto.irVersion = 8
        let error = importError { _ = try ONNXModel(serializedData: try proto.serializedBytes(), name: "x.onnx") }
        #expect(error == .notONNX(path: "x.onnx", reason: "it has no graph (truncated, or another protobuf file)"))
    }

    @Test func errorDescriptionsAreOneLine() {
        let errors: [ONNXGraphError] = [
            .fileNotFound(path: "m.onnx"), .unreadable(path: "m.onnx", reason: "permission denied"),
            .notONNX(path: "m.onnx", reason: "the file is empty"),
            .unsupportedOpset(domain: "", version: 9, path: "m.onnx"),
            .unsupportedOpset(domain: "com.microsoft", version: 1, path: "m.onnx"),
            .unsupportedDataType(tensor: "w", type: "STRING"),
            .externalDataMissing(tensor: "w", location: "w.bin"),
            .externalDataOutsideModelDirectory(tensor: "w", location: "../w.bin"),
            .invalidTensor(tensor: "w", reason: "bad"),
            .unsupportedOperator(opType: "NonMaxSuppression", domain: "", opset: 17, node: "nms",
                                 supported: ["Add", "Conv"]),
            .undefinedValue(name: "bias", node: "add"),
            .invalidNode(name: "conv", opType: "Conv", reason: "group must divide channels"),
            .inputNotFound(name: "img", available: ["input"]),
            .inputShapeMismatch(input: "x", expected: [.symbolic("N"), .fixed(3)], got: [1, 4]),
            .unboundDimension(input: "x", dimension: "N"),
            .inputCountMismatch(expected: ["x"], got: 2),
            .inputTypeMismatch(input: "x", expected: .float32, got: .int64),
            .unknownValue(name: "y", suggestions: ["y1"]),
            .unknownLayer("layr4", suggestions: ["layer4"]),
        ]
        for e in errors {
            #expect(!e.description.contains("\n"), "\(e)")
            #expect(!e.description.isEmpty)
        }
        #expect(errors[9].description
            == "node 'nms' uses operator NonMaxSuppression (opset 17), which CAMKit does not implement; supported: Add, Conv")
        #expect(errors[13].description.contains("[N, 3]"))
        #expect(errors[18].description == "unknown layer 'layr4' — did you mean 'layer4'?")
    }

    // MARK: Timing

    @Test func loadsTheBundledModelQuickly() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Models/efficientnet-lite0.onnx")
        guard FileManager.default.fileExists(atPath: url.path) else { return }
        let clock = ContinuousClock()
        var model: ONNXModel?
        var best = Duration.seconds(1000)
        for _ in 0..<3 {
            let elapsed = try clock.measure { model = try ONNXModel(contentsOf: url) }
            best = min(best, elapsed)
        }
        let loaded = try #require(model)
        let parameters = loaded.initializers.values.reduce(0) { $0 + $1.count }
        print("ImportTests: loaded \(url.lastPathComponent) (\(loaded.nodes.count) nodes, \(parameters) parameters) in \(best)")
        #expect(loaded.nodes.count > 0)
        #expect(best < .seconds(2))
    }
}
