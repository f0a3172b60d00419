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
// two graph outputs; and on the bundled EfficientNet-Lite0. Batch 1 and 3, 1 and 2 threads.

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

    /// A gradient pass to an intermediate value runs the steps before it in regions (they need no
    /// pullback) and gives the gradient a plain forward gives; a pass that also differentiates
    /// with respect to the input keeps the plain steps (every step is on its path).
    @Test func gradientPassesUseRegionsOnlyOffThePath() throws {
        let model = ModelGraph(definition: chainGraph())
        let x = randomInput([2, 24, 9, 9], seed: 5)
        let plan = try model.plan(forInputShapes: [x.shape], preserving: ["r2"])
        let toR2 = plan.differentiatedSteps(from: [try plan.slot(of: "r2")]).onPath
        let toInput = plan.differentiatedSteps(from: [try plan.slot(of: "x")]).onPath
        #expect(plan.forwardSteps(capturing: [], differentiating: toInput).count == plan.stepCount)
        if Specialiser.channelsLastRegionsEnabled {
            #expect(plan.forwardSteps(capturing: [], differentiating: toR2).count < plan.stepCount)
        }
        let ones: ([Tensor]) -> [Tensor?] = { outputs in outputs.map { Tensor(shape: $0.shape, scalars: [Float](repeating: 1, count: $0.count)) } }
        let viaRegions = try #require(try plan.gradients([x], withRespectTo: ["r2"], seed: ones).gradients["r2"])
        let viaPlainSteps = try #require(try plan.gradients([x], withRespectTo: ["r2", "x"], seed: ones).gradients["r2"])
        #expect(viaRegions.shape == [2, 40, 4, 4])
        #expect(viaRegions.relativeL2Error(to: viaPlainSteps) <= 1e-5)
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
}
