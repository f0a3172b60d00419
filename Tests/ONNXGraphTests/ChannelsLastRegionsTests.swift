import Foundation
import Testing
import TensorCore
@testable import ONNXGraph

// Tests of channels-last regions (Plan/ChannelsLastRegions.swift): a plan's region steps
// (`run`) against the same plan's plain steps (`execute(retainAll: true)`, which never uses
// regions: NCHW PreparedConvolution / OpenBLAS / CAMKit kernels, each tested against the
// definition of the convolution elsewhere), on a synthetic MBConv/ResNet-like chain with channel
// counts that are not multiples of 16, a TF-style Pad before a stride-2 convolution, residual
// Adds (fused as sums, one followed by Relu, one not fusible), a value read outside the region and
// two graph outputs; a ResNet-like stem with a MaxPool; and on the bundled EfficientNet-Lite0.
// Batch 1 and 3, 1 and 2 threads. Gradients through regions with a pullback
// (Plan/ChannelsLastRegionReverse.swift) against the plain reverse pass, each of whose pullbacks
// is tested against finite differences elsewhere.

/// x [N,24,9,9] → 1×1 24→40 + Clip(0,6) → depthwise 3×3 + Relu → 1×1 40→24 → Add(x)
/// → Pad(0,0,1,1) → 3×3 stride 2 24→40 + Relu (a4) → 1×1 40→40 → Add(a4) → Relu (r2)
/// → 1×1 40→40 + Relu (a6) → y = Add(a6, r2) (an output); z = GlobalAveragePool(a6) (an output).
private func chainGraph() -> GraphDefinition {
    var generator = SeededGenerator(seed: 41)
    func random(_ shape: [Int], scale: Float = 0.3) -> Tensor {
        Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in Float.random(in: -scale...scale, using: &generator) })
    }
    let nodes = [
        Node(name: "/b1/expand/Conv", opType: "Conv", inputs: ["x", "w1", "b1"], outputs: ["c1"],
             attributes: ["kernel_shape": .ints([1, 1])]),
        Node(name: "/b1/expand/Clip", opType: "Clip", inputs: ["c1", "lo", "hi"], outputs: ["a1"]),
        Node(name: "/b1/dw/Conv", opType: "Conv", inputs: ["a1", "w2", "b2"], outputs: ["c2"],
             attributes: ["kernel_shape": .ints([3, 3]), "pads": .ints([1, 1, 1, 1]), "group": .int(40)]),
        Node(name: "/b1/dw/Relu", opType: "Relu", inputs: ["c2"], outputs: ["a2"]),
        Node(name: "/b1/project/Conv", opType: "Conv", inputs: ["a2", "w3", "b3"], outputs: ["p3"],
             attributes: ["kernel_shape": .ints([1, 1])]),
        Node(name: "/b1/Add", opType: "Add", inputs: ["p3", "x"], outputs: ["r1"]),
        Node(name: "/b2/Pad", opType: "Pad", inputs: ["r1", "pads"], outputs: ["padded"]),
        Node(name: "/b2/conv/Conv", opType: "Conv", inputs: ["padded", "w4", "b4"], outputs: ["c4"],
             attributes: ["kernel_shape": .ints([3, 3]), "strides": .ints([2, 2])]),
        Node(name: "/b2/conv/Relu", opType: "Relu", inputs: ["c4"], outputs: ["a4"]),
        Node(name: "/b2/pw/Conv", opType: "Conv", inputs: ["a4", "w5", "b5"], outputs: ["p5"],
             attributes: ["kernel_shape": .ints([1, 1])]),
        Node(name: "/b2/Add", opType: "Add", inputs: ["a4", "p5"], outputs: ["s5"]),
        Node(name: "/b2/Relu", opType: "Relu", inputs: ["s5"], outputs: ["r2"]),
        Node(name: "/b3/Conv", opType: "Conv", inputs: ["r2", "w6", "b6"], outputs: ["c6"],
             attributes: ["kernel_shape": .ints([1, 1])]),
        Node(name: "/b3/Relu", opType: "Relu", inputs: ["c6"], outputs: ["a6"]),
        Node(name: "/b3/Add", opType: "Add", inputs: ["a6", "r2"], outputs: ["y"]),
        Node(name: "/pool/GlobalAveragePool", opType: "GlobalAveragePool", inputs: ["a6"], outputs: ["z"]),
    ]
    return GraphDefinition(
        nodes: nodes,
        initializers: [
            "w1": random([40, 24, 1, 1]), "b1": random([40]), "lo": Tensor(0), "hi": Tensor(6),
            "w2": random([40, 1, 3, 3]), "b2": random([40]),
            "w3": random([24, 40, 1, 1]), "b3": random([24]),
            "pads": Tensor(shape: [8], int64s: [0, 0, 0, 0, 0, 0, 1, 1]),
            "w4": random([40, 24, 3, 3], scale: 0.1), "b4": random([40]),
            "w5": random([40, 40, 1, 1], scale: 0.2), "b5": random([40]),
            "w6": random([40, 40, 1, 1], scale: 0.2), "b6": random([40]),
        ],
        inputs: [GraphValue(name: "x", dtype: .float32, dimensions: [.symbolic("batch"), .fixed(24), .fixed(9), .fixed(9)])],
        outputs: ["y", "z"], opset: 17)
}

/// x [N,3,20,20] → Conv 7×7 stride 2 pad 3 (3→16) → Relu → MaxPool 3×3 stride 2 pad 1 (m)
/// → 1×1 16→8 + Relu → 3×3 8→16 pad 1 → Add(m) → Relu → GlobalAveragePool (the output).
private func stemGraph() -> GraphDefinition {
    var generator = SeededGenerator(seed: 43)
    func random(_ shape: [Int], scale: Float = 0.3) -> Tensor {
        Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in Float.random(in: -scale...scale, using: &generator) })
    }
    let nodes = [
        Node(name: "/conv1/Conv", opType: "Conv", inputs: ["x", "w1", "b1"], outputs: ["c1"],
             attributes: ["kernel_shape": .ints([7, 7]), "strides": .ints([2, 2]), "pads": .ints([3, 3, 3, 3])]),
        Node(name: "/relu/Relu", opType: "Relu", inputs: ["c1"], outputs: ["a1"]),
        Node(name: "/maxpool/MaxPool", opType: "MaxPool", inputs: ["a1"], outputs: ["m"],
             attributes: ["kernel_shape": .ints([3, 3]), "strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1])]),
        Node(name: "/layer1/conv1/Conv", opType: "Conv", inputs: ["m", "w2", "b2"], outputs: ["c2"],
             attributes: ["kernel_shape": .ints([1, 1])]),
        Node(name: "/layer1/relu/Relu", opType: "Relu", inputs: ["c2"], outputs: ["a2"]),
        Node(name: "/layer1/conv2/Conv", opType: "Conv", inputs: ["a2", "w3", "b3"], outputs: ["c3"],
             attributes: ["kernel_shape": .ints([3, 3]), "pads": .ints([1, 1, 1, 1])]),
        Node(name: "/layer1/Add", opType: "Add", inputs: ["c3", "m"], outputs: ["s"]),
        Node(name: "/layer1/relu_1/Relu", opType: "Relu", inputs: ["s"], outputs: ["r"]),
        Node(name: "/pool/GlobalAveragePool", opType: "GlobalAveragePool", inputs: ["r"], outputs: ["z"]),
    ]
    return GraphDefinition(
        nodes: nodes,
        initializers: [
            "w1": random([16, 3, 7, 7], scale: 0.1), "b1": random([16]),
            "w2": random([8, 16, 1, 1]), "b2": random([8]),
            "w3": random([16, 8, 3, 3], scale: 0.2), "b3": random([16]),
        ],
        inputs: [GraphValue(name: "x", dtype: .float32, dimensions: [.symbolic("batch"), .fixed(3), .fixed(20), .fixed(20)])],
        outputs: ["z"], opset: 17)
}

/// Gradients of ones placed on every output.
private func ones(_ outputs: [Tensor]) -> [Tensor?] {
    outputs.map { Tensor(shape: $0.shape, scalars: [Float](repeating: 1, count: $0.count)) }
}

/// The same seeds by output name (the seeding variant of the reverse pass: plain steps only).
private func seedsOfOnes(_ plan: ExecutionPlan, _ x: Tensor) throws -> [String: Tensor] {
    let outputs = try plan.run([x]).outputs
    return Dictionary(uniqueKeysWithValues: zip(plan.graph.outputs, ones(outputs).compactMap { $0 }))
}

/// The gradient of the summed outputs with respect to the input through `regions` regions with
/// a pullback equals the plain reverse pass's, for each ReLU rule, with 1 and 2 threads.
private func expectReverseRegionGradients(_ plan: ExecutionPlan, _ x: Tensor, regions: Int) throws {
    let input = try plan.slot(of: plan.graph.inputs[0].name)
    let onPath = plan.differentiatedSteps(from: [input]).onPath
    let steps = plan.gradientSteps(capturing: [], differentiating: onPath, targets: [input], reverseRegions: true).steps
    if Specialiser.channelsLastRegionsEnabled && Specialiser.channelsLastReverseEnabled {
        #expect(steps.filter { ($0.op as? ChannelsLastRegionOperator)?.reverse != nil }.count == regions)
    }
    let name = plan.graph.inputs[0].name
    let seeds = try seedsOfOnes(plan, x)
    for rule in [ActivationGradientRule.standard, .guided, .deconvnet] {
        let context = PullbackContext(reluRule: rule)
        let plain = try #require(try plan.gradients([x], withRespectTo: [name], context: context, seeding: seeds).gradients[name])
        for threads in [1, 2] {
            let viaRegions = try ComputeSettings.withThreadCount(threads) {
                try plan.gradients([x], withRespectTo: [name], context: context, seed: ones).gradients[name]
            }
            let g = try #require(viaRegions)
            #expect(g.shape == x.shape)
            // Float32 sums in different orders through a few layers: ~1e-7.
            #expect(g.relativeL2Error(to: plain) <= 1e-5, "\(rule), \(threads) threads")
        }
    }
}

private func randomInput(_ shape: [Int], seed: UInt64) -> Tensor {
    var g = SeededGenerator(seed: seed)
    return Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in Float.random(in: -1...1, using: &g) })
}

/// The outputs of the region steps and of the plain steps of `plan`.
private func bothPaths(_ plan: ExecutionPlan, _ x: Tensor, threads: Int) throws -> (regions: [Tensor], plain: [Tensor]) {
    try ComputeSettings.withThreadCount(threads) {
        (try plan.run([x]).outputs, try plan.execute([x], capturing: [], retainAll: true).outputs)
    }
}

@Suite struct ChannelsLastRegionsTests {
    @Test(arguments: [1, 3])
    func chainRegionMatchesThePlainSteps(batch: Int) throws {
        let model = ModelGraph(definition: chainGraph())
        let plan = try model.plan(forInputShapes: [[batch, 24, 9, 9]])
        guard Specialiser.channelsLastRegionsEnabled else {
            #expect(plan.channelsLastRegionCount == 0)
            return
        }
        // Six convolutions and everything between them in one region; the pooling stays outside.
        #expect(plan.channelsLastRegionCount == 1)
        #expect(plan.inferenceStepCount == 2, "\(plan.inferenceSteps.map { String(describing: type(of: $0.op)) })")
        let region = try #require(plan.inferenceSteps.first?.op as? ChannelsLastRegionOperator)
        #expect(region.convolutionCount == 6)
        let x = randomInput([batch, 24, 9, 9], seed: UInt64(batch))
        for threads in [1, 2] {
            let (regions, plain) = try bothPaths(plan, x, threads: threads)
            #expect(regions.count == 2 && plain.count == 2)
            for (a, b) in zip(regions, plain) {
                #expect(a.shape == b.shape)
                // Float32 sums of ≤ 360 products over six layers, in different orders: ~1e-7.
                #expect(a.relativeL2Error(to: b) <= 1e-5, "batch \(batch), \(threads) threads")
            }
        }
    }

    /// A profile lists a region's instructions one by one: its convolutions by node name with their
    /// fused sums and activations, and the layout conversions by value name.
    @Test func profileListsARegionsInstructions() throws {
        let model = ModelGraph(definition: chainGraph())
        let plan = try model.plan(forInputShapes: [[2, 24, 9, 9]])
        let timings = try plan.profile([randomInput([2, 24, 9, 9], seed: 3)], runs: 3)
        #expect(timings.allSatisfy { $0.milliseconds >= 0 })
        #expect(timings.last?.opType == "GlobalAveragePool")
        guard Specialiser.channelsLastRegionsEnabled else {
            #expect(timings.count == plan.inferenceStepCount)
            return
        }
        let kinds = Dictionary(timings.map { ($0.nodeName, $0.opType) }, uniquingKeysWith: { a, _ in a })
        #expect(timings.first?.nodeName == "x" && timings.first?.opType == "NCHW→NHWC")
        #expect(timings.filter { $0.opType.hasPrefix("Conv") }.map(\.nodeName)
                == ["/b1/expand/Conv", "/b1/dw/Conv", "/b1/project/Conv", "/b2/conv/Conv", "/b2/pw/Conv", "/b3/Conv"])
        #expect(kinds["/b1/expand/Conv"] == "Conv+Clip (NHWC)")
        #expect(kinds["/b1/project/Conv"] == "Conv+Add (NHWC)")
        #expect(kinds["/b2/pw/Conv"] == "Conv+Add+Relu (NHWC)")
        // 9×9 padded at the end to 10×10, 3×3 stride 2: 4×4.
        #expect(timings.first { $0.nodeName == "/b2/pw/Conv" }?.outputShape == [2, 40, 4, 4])
        #expect(Set(timings.filter { $0.opType == "NHWC→NCHW" }.map(\.nodeName)) == ["a6", "y"])
    }

    @Test func valuesInsideARegionStayCapturable() throws {
        let model = ModelGraph(definition: chainGraph())
        let x = randomInput([1, 24, 9, 9], seed: 9)
        // Preserved: the region converts the value back as it goes and still covers the chain.
        let preserving = try model.plan(forInputShapes: [x.shape], preserving: ["a2"])
        if Specialiser.channelsLastRegionsEnabled { #expect(preserving.channelsLastRegionCount == 1) }
        let captured = try #require(try preserving.run([x], capturing: ["a2"]).captures["a2"])
        let plainPlan = try model.plan(forInputShapes: [x.shape])
        // Not preserved but still a plan value (the project convolution's output, summed in place
        // inside the region): capturing it runs the plain steps.
        let p3 = try #require(try plainPlan.run([x], capturing: ["p3"]).captures["p3"])
        let reference = try preserving.execute([x], capturing: ["a2", "p3"], retainAll: true)
        #expect(captured.shape == [1, 40, 9, 9])
        #expect(captured.relativeL2Error(to: try #require(reference.captures["a2"])) <= 1e-5)
        // The same plain kernels on both plans: the same numbers.
        #expect(p3 == (try #require(reference.captures["p3"])))
        // The region plan still gives the graph outputs with a capture inside a region.
        let outputs = try plainPlan.run([x], capturing: ["p3"]).outputs
        let regionOutputs = try plainPlan.run([x]).outputs
        for (a, b) in zip(outputs, regionOutputs) { #expect(a.relativeL2Error(to: b) <= 1e-5) }
    }

    /// A gradient pass to an intermediate value runs the steps before it in inference regions
    /// (they need no pullback) and gives the gradient a plain forward gives.
    @Test func gradientPassesToALayerUseInferenceRegionsBeforeIt() throws {
        let model = ModelGraph(definition: chainGraph())
        let x = randomInput([2, 24, 9, 9], seed: 5)
        let plan = try model.plan(forInputShapes: [x.shape], preserving: ["r2"])
        let r2 = try plan.slot(of: "r2")
        let toR2 = plan.differentiatedSteps(from: [r2]).onPath
        let steps = plan.gradientSteps(capturing: [], differentiating: toR2, targets: [r2], reverseRegions: true).steps
        if Specialiser.channelsLastRegionsEnabled {
            #expect(steps.count < plan.stepCount)
            #expect(steps.allSatisfy { ($0.op as? ChannelsLastRegionOperator)?.reverse == nil })
        }
        let viaRegions = try #require(try plan.gradients([x], withRespectTo: ["r2"], seed: ones).gradients["r2"])
        let viaPlainSteps = try #require(try plan.gradients([x], withRespectTo: ["r2"], seeding: seedsOfOnes(plan, x)).gradients["r2"])
        #expect(viaRegions.shape == [2, 40, 4, 4])
        #expect(viaRegions.relativeL2Error(to: viaPlainSteps) <= 1e-5)
    }

    /// A gradient pass to the input runs the chain forward and backward in one region with a
    /// pullback (ChannelsLastRegionReverse.swift) and gives the plain reverse pass's gradient
    /// (the seeding variant never forms such regions), for every ReLU gradient rule.
    @Test(arguments: [1, 3])
    func gradientToTheInputThroughARegionMatchesThePlainSteps(batch: Int) throws {
        let model = ModelGraph(definition: chainGraph())
        let x = randomInput([batch, 24, 9, 9], seed: 7)
        let plan = try model.plan(forInputShapes: [x.shape])
        try expectReverseRegionGradients(plan, x, regions: 1)
    }

    /// ResNet's stem: 7×7 stride-2 convolution + Relu → MaxPool 3×3 stride 2 → a bottleneck with
    /// the pooled value as its residual. The MaxPool joins the region; forward and gradients
    /// match the plain steps.
    @Test(arguments: [1, 2])
    func maxPoolJoinsTheRegion(batch: Int) throws {
        let model = ModelGraph(definition: stemGraph())
        let x = randomInput([batch, 3, 20, 20], seed: 11)
        let plan = try model.plan(forInputShapes: [x.shape])
        guard Specialiser.channelsLastRegionsEnabled else { return }
        #expect(plan.channelsLastRegionCount == 1)
        #expect(plan.inferenceStepCount == 2, "\(plan.inferenceSteps.map { String(describing: type(of: $0.op)) })")
        for threads in [1, 2] {
            let (regions, plain) = try bothPaths(plan, x, threads: threads)
            #expect(regions[0].relativeL2Error(to: plain[0]) <= 1e-5, "batch \(batch), \(threads) threads")
        }
        try expectReverseRegionGradients(plan, x, regions: 1)
        // The gradient pass's region runs the inference region's convolution objects (their
        // oneDNN primitives and filter copies are made once).
        guard Specialiser.channelsLastReverseEnabled else { return }
        func convolutions(_ steps: [ExecutionPlan.Step]) -> [ObjectIdentifier] {
            steps.compactMap { $0.op as? ChannelsLastRegionOperator }.flatMap { region in
                region.instructions.compactMap { instruction -> ObjectIdentifier? in
                    guard case .convolution(let conv, _, _, _) = instruction else { return nil }
                    return ObjectIdentifier(conv)
                }
            }
        }
        let input = try plan.slot(of: plan.graph.inputs[0].name)
        let onPath = plan.differentiatedSteps(from: [input]).onPath
        let reverse = plan.gradientSteps(capturing: [], differentiating: onPath, targets: [input], reverseRegions: true).steps
        #expect(!convolutions(plan.inferenceSteps).isEmpty)
        #expect(convolutions(reverse) == convolutions(plan.inferenceSteps))
    }
    @Test(arguments: [1, 3])
    func efficientNetLite0RegionMatchesThePlainSteps(batch: Int) throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Models/efficientnet-lite0.onnx")
        guard FileManager.default.fileExists(atPath: url.path) else { return }
        let model = try ModelGraph(contentsOf: url)
        let plan = try model.plan(forInputShapes: [[batch, 3, 224, 224]])
        guard Specialiser.channelsLastRegionsEnabled else { return }
        // Stem to head in one region: the steps left are the region, the pooling and the classifier.
        #expect(plan.channelsLastRegionCount == 1)
        #expect(plan.inferenceStepCount <= 5, "\(plan.inferenceStepCount) steps")
        let region = try #require(plan.inferenceSteps.first { $0.op is ChannelsLastRegionOperator }?.op as? ChannelsLastRegionOperator)
        let implementations = Set(region.instructions.compactMap { instruction -> String? in
            guard case .convolution(let conv, _, _, _) = instruction else { return nil }
            return conv.implementationDescription
        })
        print("ChannelsLastRegionsTests: Lite0 batch \(batch): \(region.summary); oneDNN kernels \(implementations.sorted())")
        var g = SeededGenerator(seed: 5)
        let x = Tensor(shape: [batch, 3, 224, 224],
                       scalars: (0..<(batch * 3 * 224 * 224)).map { _ in Float.random(in: -2...2, using: &g) })
        for threads in [1, 2] {
            let (regions, plain) = try bothPaths(plan, x, threads: threads)
            // ~50 layers of Float32 sums in different orders; the fixture parity tests hold both
            // paths to ONNX Runtime at 1e-4.
            #expect(regions[0].relativeL2Error(to: plain[0]) <= 1e-5, "batch \(batch), \(threads) threads")
        }
    }

    /// Lite0's activations are all ReLU6 (`Clip`): a gradient pass to the input forms no region
    /// with a pullback and differentiates the plain steps (ChannelsLastRegionReverse.swift says why).
    @Test func efficientNetLite0GradientKeepsThePlainSteps() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Models/efficientnet-lite0.onnx")
        guard FileManager.default.fileExists(atPath: url.path) else { return }
        let plan = try ModelGraph(contentsOf: url).plan(forInputShapes: [[1, 3, 224, 224]])
        let input = try plan.slot(of: plan.graph.inputs[0].name)
        let onPath = plan.differentiatedSteps(from: [input]).onPath
        let steps = plan.gradientSteps(capturing: [], differentiating: onPath, targets: [input], reverseRegions: true).steps
        #expect(steps.count == plan.stepCount)
        #expect(!steps.contains { $0.op is ChannelsLastRegionOperator })
    }
}
