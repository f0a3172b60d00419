import Foundation
import Testing
import TensorCore
@testable import ONNXGraph

/// A tiny CNN built in code: Pad → Conv → Relu → GlobalAveragePool → Flatten → Gemm.
private func tinyCNN(extraNode: Node? = nil, inputDims: [TensorDimension] = [.symbolic("batch"), .fixed(2), .fixed(6), .fixed(6)]) -> GraphDefinition {
    var generator = SeededGenerator(seed: 7)
    func random(_ shape: [Int]) -> Tensor {
        Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in Float.random(in: -1...1, using: &generator) })
    }
    var nodes = [
        Node(name: "/stem/pad/Pad", opType: "Pad", inputs: ["x", "pads"], outputs: ["padded"]),
        Node(name: "/stem/conv/Conv", opType: "Conv", inputs: ["padded", "w", "b"], outputs: ["conv"],
             attributes: ["kernel_shape": .ints([3, 3])]),
        Node(name: "/stem/relu/Relu", opType: "Relu", inputs: ["conv"], outputs: ["relu"]),
        Node(name: "/pool/GlobalAveragePool", opType: "GlobalAveragePool", inputs: ["relu"], outputs: ["pooled"]),
        Node(name: "/Flatten", opType: "Flatten", inputs: ["pooled"], outputs: ["flat"]),
        Node(name: "/fc/Gemm", opType: "Gemm", inputs: ["flat", "fcw", "fcb"], outputs: ["logits"],
             attributes: ["transB": .int(1)]),
    ]
    if let extraNode { nodes.insert(extraNode, at: 0) }
    return GraphDefinition(
        nodes: nodes,
        initializers: ["pads": Tensor(shape: [8], int64s: [0, 0, 1, 1, 0, 0, 1, 1]),
                       "w": random([4, 2, 3, 3]), "b": random([4]), "fcw": random([3, 4]), "fcb": random([3])],
        inputs: [GraphValue(name: "x", dtype: .float32, dimensions: inputDims)],
        outputs: ["logits"], opset: 17)
}

/// A small deterministic generator (SplitMix64) so that test data is reproducible.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

private func randomInput(_ shape: [Int], seed: UInt64) -> Tensor {
    var g = SeededGenerator(seed: seed)
    return Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in Float.random(in: -1...1, using: &g) })
}

@Suite struct ExecutionPlanTests {
    @Test func fusionRemovesPadAndReluButKeepsResults() throws {
        let model = ModelGraph(definition: tinyCNN())
        let x = randomInput([2, 2, 6, 6], seed: 1)
        let fused = try model.plan(forInputShapes: [x.shape])
        #expect(fused.stepOpTypes == ["Conv", "GlobalAveragePool", "Flatten", "Gemm"])
        // Preserving the convolution's output keeps every kernel separate; results agree.
        let unfused = try model.plan(forInputShapes: [x.shape], preserving: ["padded", "conv"])
        #expect(unfused.stepOpTypes == ["Pad", "Conv", "Relu", "GlobalAveragePool", "Flatten", "Gemm"])
        let a = try fused.run([x]).outputs[0], b = try unfused.run([x]).outputs[0]
        #expect(a.relativeL2Error(to: b) < 1e-6)
    }

    @Test func capturingAFusedValueNeedsAPreservingPlan() throws {
        let model = ModelGraph(definition: tinyCNN())
        let x = randomInput([1, 2, 6, 6], seed: 2)
        #expect(throws: ONNXGraphError.self) { try model.plan(forInputShapes: [x.shape]).run([x], capturing: ["conv"]) }
        // ModelGraph.run preserves what it is asked to capture.
        let result = try model.run([x], capturing: ["conv", "stem.relu"])
        #expect(result.captures["conv"]?.shape == [1, 4, 6, 6])
        #expect(result.captures["stem.relu"]?.scalars.allSatisfy { $0 >= 0 } == true)
    }

    @Test func unsupportedOperatorNamesOpDomainOpsetNodeAndSupported() throws {
        let graph = tinyCNN(extraNode: Node(name: "weird", opType: "FancyOp", inputs: ["x"], outputs: ["unused"]))
        let model = ModelGraph(definition: graph)
        do {
            _ = try model.plan(forInputShapes: [[1, 2, 6, 6]])
            Issue.record("expected an error")
        } catch let error as ONNXGraphError {
            let text = error.description
            #expect(text.contains("FancyOp") && text.contains("'weird'") && text.contains("opset 17"))
            #expect(text.contains("Conv") && text.contains("MatMul"))
        }
    }

    @Test func missingInitializerIsNamed() throws {
        var graph = tinyCNN()
        graph.initializers["w"] = nil
        #expect(throws: ONNXGraphError.undefinedValue(name: "w", node: "/stem/conv/Conv")) {
            try ModelGraph(definition: graph).plan(forInputShapes: [[1, 2, 6, 6]])
        }
    }

    @Test func inputsOfTheWrongRankSizeOrCountAreRefused() throws {
        let model = ModelGraph(definition: tinyCNN())
        let dims: [TensorDimension] = [.symbolic("batch"), .fixed(2), .fixed(6), .fixed(6)]
        #expect(throws: ONNXGraphError.inputShapeMismatch(input: "x", expected: dims, got: [1, 2, 6])) {
            try model.run([Tensor(zeros: [1, 2, 6])])
        }
        #expect(throws: ONNXGraphError.inputShapeMismatch(input: "x", expected: dims, got: [1, 3, 6, 6])) {
            try model.run([Tensor(zeros: [1, 3, 6, 6])])
        }
        #expect(throws: ONNXGraphError.inputCountMismatch(expected: ["x"], got: 2)) {
            try model.run([Tensor(zeros: [1, 2, 6, 6]), Tensor(zeros: [1])])
        }
        let plan = try model.plan(forInputShapes: [[1, 2, 6, 6]])
        #expect(throws: ONNXGraphError.self) { try plan.run([Tensor(zeros: [2, 2, 6, 6])]) }
    }

    @Test func aSymbolicDimensionMustBindToOneExtent() throws {
        var graph = tinyCNN()
        graph.inputs.append(GraphValue(name: "y", dtype: .float32, dimensions: [.symbolic("batch")]))
        let model = ModelGraph(definition: graph)
        #expect(throws: ONNXGraphError.inputShapeMismatch(input: "y", expected: [.symbolic("batch")], got: [3])) {
            try model.plan(forInputShapes: [[2, 2, 6, 6], [3]])
        }
    }

    @Test func unknownLayerSuggestsCloseNames() throws {
        let model = ModelGraph(definition: tinyCNN())
        do {
            _ = try model.resolveLayer("stem.rleu")
            Issue.record("expected an error")
        } catch let ONNXGraphError.unknownLayer(name, suggestions) {
            #expect(name == "stem.rleu")
            #expect(suggestions.first == "stem.relu")
        }
    }

    @Test func layerListingHasModulePathsAndShapes() throws {
        let model = ModelGraph(definition: tinyCNN())
        let layers = try model.layers(forInputShapes: [[1, 2, 6, 6]])
        let byPath = Dictionary(layers.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
        #expect(byPath["stem.relu"]?.shape == [1, 4, 6, 6])
        #expect(byPath["stem"]?.tensor == "relu")
        #expect(byPath["fc"]?.opType == "Gemm")
    }

    /// The reverse pass against central finite differences, through the fused kernel.
    @Test func gradientMatchesFiniteDifferences() throws {
        let model = ModelGraph(definition: tinyCNN())
        let x = randomInput([1, 2, 6, 6], seed: 3)
        let plan = try model.plan(forInputShapes: [x.shape], preserving: ["x"])
        let seed = Tensor(shape: [1, 3], scalars: [0, 1, 0])
        let g = try plan.gradients([x], withRespectTo: ["x"]) { _ in [seed] }.gradients["x"]!
        let v = randomInput(x.shape, seed: 4)
        func f(_ t: Float) throws -> Double {
            var shifted = x
            shifted.withUnsafeMutableBufferPointer { p in v.withUnsafeBufferPointer { d in
                for i in 0..<p.count { p[i] += t * d[i] } } }
            return Double(try plan.run([shifted]).outputs[0].scalars[1])
        }
        // ε = 1e-3: small enough that no ReLU changes side for this seed, large enough that
        // float32 rounding (~1e-7 relative on O(1) logits) stays below 1e-4 of the difference.
        let eps: Float = 1e-3
        let numeric = (try f(eps) - f(-eps)) / Double(2 * eps)
        let analytic = zip(g.scalars, v.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        #expect(abs(numeric - analytic) <= 1e-3 * max(1, abs(analytic)), "numeric \(numeric), analytic \(analytic)")
    }

    @Test func integerInputsAreFoldedPerValue() throws {
        let graph = GraphDefinition(
            nodes: [Node(name: "r", opType: "Reshape", inputs: ["x", "shape"], outputs: ["y"])],
            initializers: [:],
            inputs: [GraphValue(name: "x", dtype: .float32, dimensions: [.fixed(6)]),
                     GraphValue(name: "shape", dtype: .int64, dimensions: [.fixed(2)])],
            outputs: ["y"], opset: 17)
        let model = ModelGraph(definition: graph)
        let x = Tensor(shape: [6], scalars: [1, 2, 3, 4, 5, 6])
        #expect(try model.run([x, Tensor(shape: [2], int64s: [2, 3])]).outputs[0].shape == [2, 3])
        #expect(try model.run([x, Tensor(shape: [2], int64s: [3, -1])]).outputs[0].shape == [3, 2])
    }
}

@Suite struct LayerNamingTests {
    @Test func torchScriptScopesBecomeModulePaths() {
        func path(_ name: String) -> String? {
            LayerNaming.modulePath(of: Node(name: name, opType: "X", inputs: [], outputs: ["o"]))
        }
        #expect(path("/layer4/layer4.2/conv2/Conv") == "layer4.2.conv2")
        #expect(path("/features/features.3/conv/conv.0/conv.0.0/Conv") == "features.3.conv.0.0")
        #expect(path("/encoder/layers/encoder_layer_11/ln_1/LayerNormalization") == "encoder.layers.encoder_layer_11.ln_1")
        #expect(path("/Flatten") == nil)
        #expect(path("Conv_12") == nil)
    }

    @Test func dynamoNameScopesBecomeModulePaths() {
        let node = Node(name: "node_relu_48", opType: "Relu", inputs: [], outputs: ["relu_48"],
                        metadata: ["pkg.torch.onnx.name_scopes": "['', 'layer4', 'layer4.2', 'layer4.2.relu', 'relu_48']"])
        #expect(LayerNaming.modulePath(of: node) == "layer4.2.relu")
    }
}
