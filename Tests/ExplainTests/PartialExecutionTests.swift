import Foundation
import ONNXGraph
import TensorCore
import Testing

/// `ExecutionPlan.run(_:overriding:capturing:)` (Sources/ONNXGraph/Plan/PartialExecution.swift).
@Suite("Partial execution")
struct PartialExecutionTests {
    @Test func overridingALayerWithItsOwnValueGivesTheSameOutputs() throws {
        let model = try fixtureModel("Tests/ONNXGraphTests/Fixtures/resnet_basic/model.onnx")
        let input = try loadNPY("Tests/ONNXGraphTests/Fixtures/resnet_basic/input_0.npy")
        let layer = "/layer3/layer3.0/relu_1/Relu_output_0"
        let plan = try model.plan(forInputShapes: [input.shape], preserving: [layer])
        let full = try plan.run([input], capturing: [layer])
        let partial = try plan.run([input], overriding: [layer: full.captures[layer]!])
        #expect(partial.outputs[0] == full.outputs[0])
        // A different value changes the output; zeros everywhere give the bias-only logits.
        let zeroed = try plan.run([input], overriding: [layer: Tensor(zeros: full.captures[layer]!.shape)])
        #expect(zeroed.outputs[0] != full.outputs[0])
    }

    @Test func overrideOfTheWrongShapeIsRejected() throws {
        let model = try fixtureModel("Tests/ONNXGraphTests/Fixtures/resnet_basic/model.onnx")
        let input = try loadNPY("Tests/ONNXGraphTests/Fixtures/resnet_basic/input_0.npy")
        let plan = try model.plan(forInputShapes: [input.shape], preserving: ["/layer3/layer3.0/relu_1/Relu_output_0"])
        #expect(throws: ONNXGraphError.self) {
            _ = try plan.run([input], overriding: ["/layer3/layer3.0/relu_1/Relu_output_0": Tensor(zeros: [1])])
        }
        #expect(throws: ONNXGraphError.self) {
            _ = try plan.run([input], overriding: ["no such tensor": Tensor(zeros: [1])])
        }
    }
}
