import Foundation
import Testing
import TensorCore
@testable import ONNXGraph

/// Conv → Relu → Conv → Relu → GlobalAveragePool → Flatten → Gemm, built in code; "h1" (the first
/// ReLU's output) is the intermediate value the tests seed.
private func twoConvNet() -> GraphDefinition {
    var generator = SeededGenerator(seed: 11)
    func random(_ shape: [Int]) -> Tensor {
        Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in Float.random(in: -1...1, using: &generator) })
    }
    let nodes = [
        Node(name: "/conv1/Conv", opType: "Conv", inputs: ["x", "w1", "b1"], outputs: ["c1"],
             attributes: ["kernel_shape": .ints([3, 3]), "pads": .ints([1, 1, 1, 1])]),
        Node(name: "/relu1/Relu", opType: "Relu", inputs: ["c1"], outputs: ["h1"]),
        Node(name: "/conv2/Conv", opType: "Conv", inputs: ["h1", "w2", "b2"], outputs: ["c2"],
             attributes: ["kernel_shape": .ints([3, 3]), "strides": .ints([2, 2])]),
        Node(name: "/relu2/Relu", opType: "Relu", inputs: ["c2"], outputs: ["h2"]),
        Node(name: "/pool/GlobalAveragePool", opType: "GlobalAveragePool", inputs: ["h2"], outputs: ["pooled"]),
        Node(name: "/Flatten", opType: "Flatten", inputs: ["pooled"], outputs: ["flat"]),
        Node(name: "/fc/Gemm", opType: "Gemm", inputs: ["flat", "fcw", "fcb"], outputs: ["logits"],
             attributes: ["transB": .int(1)]),
    ]
    return GraphDefinition(
        nodes: nodes,
        initializers: ["w1": random([4, 2, 3, 3]), "b1": random([4]), "w2": random([5, 4, 3, 3]), "b2": random([5]),
                       "fcw": random([3, 5]), "fcb": random([3])],
        inputs: [GraphValue(name: "x", dtype: .float32, dimensions: [.symbolic("batch"), .fixed(2), .fixed(7), .fixed(7)])],
        outputs: ["logits"], opset: 17)
}

private func random(_ shape: [Int], seed: UInt64) -> Tensor {
    var g = SeededGenerator(seed: seed)
    return Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in Float.random(in: -1...1, using: &g) })
}

/// ``ExecutionPlan/gradients(_:capturing:withRespectTo:context:seeding:)``: the reverse pass seeded
/// at arbitrary values. (Parity with PyTorch autograd on a real model, for the standard and the
/// deconvnet rule, is in ExplainTests/FeatureVisualizationTests.)
@Suite struct ReversePassSeedingTests {
    /// Seeding the output by name is the output-seeded reverse pass: bit for bit without
    /// channels-last regions; with them, the output seed runs the two convolutions in a region
    /// with a pullback (NHWC kernels: the same sums in another order) and the seeding variant
    /// the plain steps.
    @Test func seedingTheOutputEqualsTheOutputSeed() throws {
        let model = ModelGraph(definition: twoConvNet())
        let x = random([2, 2, 7, 7], seed: 1)
        let plan = try model.plan(forInputShapes: [x.shape], preserving: ["x"])
        let seed = Tensor(shape: [2, 3], scalars: [0, 1, 0, 0, 0, 1])
        let a = try plan.gradients([x], withRespectTo: ["x"]) { _ in [seed] }
        let b = try plan.gradients([x], withRespectTo: ["x"], seeding: ["logits": seed])
        let ga = try #require(a.gradients["x"]), gb = try #require(b.gradients["x"])
        if Specialiser.channelsLastRegionsEnabled {
            #expect(ga.relativeL2Error(to: gb) <= 1e-6)
            #expect(a.forward.outputs[0].relativeL2Error(to: b.forward.outputs[0]) <= 1e-6)
        } else {
            #expect(ga == gb)
            #expect(a.forward.outputs[0] == b.forward.outputs[0])
        }
    }

    /// ⟨seed, ∂h1/∂x · v⟩ against central finite differences of ⟨seed, h1(x + t·v)⟩.
    @Test func intermediateSeedMatchesFiniteDifferences() throws {
        let model = ModelGraph(definition: twoConvNet())
        let x = random([1, 2, 7, 7], seed: 2)
        let plan = try model.plan(forInputShapes: [x.shape], preserving: ["h1"])
        let seed = random([1, 4, 7, 7], seed: 3)
        let result = try plan.gradients([x], capturing: ["h1"], withRespectTo: ["x"], seeding: ["h1": seed])
        #expect(result.forward.captures["h1"]?.shape == [1, 4, 7, 7])
        let g = result.gradients["x"]!
        let v = random(x.shape, seed: 4)
        func f(_ t: Float) throws -> Double {
            var shifted = x
            shifted.withUnsafeMutableBufferPointer { p in v.withUnsafeBufferPointer { d in
                for i in 0..<p.count { p[i] += t * d[i] } } }
            let h = try plan.run([shifted], capturing: ["h1"]).captures["h1"]!
            return zip(h.scalars, seed.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
        // As in ExecutionPlanTests: ε = 1e-3 keeps every ReLU on its side for this input, and
        // float32 rounding of the O(1) sums stays far below 1e-3 of the difference.
        let eps: Float = 1e-3
        let numeric = (try f(eps) - f(-eps)) / Double(2 * eps)
        let analytic = zip(g.scalars, v.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        #expect(abs(numeric - analytic) <= 1e-3 * max(1, abs(analytic)), "numeric \(numeric), analytic \(analytic)")
    }

    /// Seeds add up: seeding h1 and the logits at once is the sum of the two single-seed passes
    /// (the vector-Jacobian product is linear in the seed).
    @Test func seedsAccumulate() throws {
        let model = ModelGraph(definition: twoConvNet())
        let x = random([1, 2, 7, 7], seed: 5)
        let plan = try model.plan(forInputShapes: [x.shape], preserving: ["h1"])
        let s1 = random([1, 4, 7, 7], seed: 6), s2 = Tensor(shape: [1, 3], scalars: [0.5, -1, 2])
        let both = try plan.gradients([x], withRespectTo: ["x"], seeding: ["h1": s1, "logits": s2]).gradients["x"]!
        let g1 = try plan.gradients([x], withRespectTo: ["x"], seeding: ["h1": s1]).gradients["x"]!
        let g2 = try plan.gradients([x], withRespectTo: ["x"], seeding: ["logits": s2]).gradients["x"]!
        let sum = Tensor(shape: g1.shape, scalars: zip(g1.scalars, g2.scalars).map { $0 + $1 })
        #expect(both.relativeL2Error(to: sum) <= 1e-6)
    }

    /// The seed is computed from the forward pass it belongs to (one forward, no second run).
    @Test func seedFromForwardPass() throws {
        let model = ModelGraph(definition: twoConvNet())
        let x = random([1, 2, 7, 7], seed: 7)
        let plan = try model.plan(forInputShapes: [x.shape], preserving: ["h1"])
        // Seeding h1 with h1 itself: the gradient of ½‖h1‖².
        let a = try plan.gradients([x], capturing: ["h1"], withRespectTo: ["x"]) { forward in
            ["h1": forward.captures["h1"]!]
        }.gradients["x"]!
        let h1 = try plan.run([x], capturing: ["h1"]).captures["h1"]!
        let b = try plan.gradients([x], withRespectTo: ["x"], seeding: ["h1": h1]).gradients["x"]!
        #expect(a == b)
    }

    @Test func badSeedsAreClearErrors() throws {
        let model = ModelGraph(definition: twoConvNet())
        let x = random([1, 2, 7, 7], seed: 8)
        // Wrong shape.
        let kept = try model.plan(forInputShapes: [x.shape], preserving: ["h1"])
        #expect(throws: ONNXGraphError.self) {
            _ = try kept.gradients([x], withRespectTo: ["x"], seeding: ["h1": Tensor(zeros: [1, 4, 6, 6])])
        }
        do {
            _ = try kept.gradients([x], withRespectTo: ["x"], seeding: ["h1": Tensor(zeros: [4, 7, 7])])
            Issue.record("a seed of the wrong shape was accepted")
        } catch {
            #expect("\(error)".contains("shape"))
        }
        // Unknown name.
        #expect(throws: ONNXGraphError.self) {
            _ = try kept.gradients([x], withRespectTo: ["x"], seeding: ["h9": Tensor(zeros: [1])])
        }
        // A value fused away (Conv + Relu merged when c1 is not preserved): the error says how to keep it.
        let fused = try model.plan(forInputShapes: [x.shape])
        do {
            _ = try fused.gradients([x], withRespectTo: ["x"], seeding: ["c1": Tensor(zeros: [1, 4, 7, 7])])
            Issue.record("seeding a fused-away value was accepted")
        } catch {
            #expect("\(error)".contains("preserving"))
        }
    }
}
