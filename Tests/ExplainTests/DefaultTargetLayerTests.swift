import Explain
import Foundation
import ONNXGraph
import TensorCore
import Testing

/// The default target layer of each fixture architecture.
@Suite("DefaultTargetLayer")
struct DefaultTargetLayerTests {
    struct Expectation: Sendable, CustomStringConvertible {
        let arch: String
        let tensor: String
        let reshape: ReshapeTransform
        var description: String { arch }
    }

    static let expectations: [Expectation] = [
        .init(arch: "resnet_basic", tensor: "/layer4/layer4.1/relu_1/Relu_output_0", reshape: .automatic),
        .init(arch: "densenet", tensor: "/Relu_output_0", reshape: .automatic),
        .init(arch: "convnext", tensor: "/features/features.3/features.3.0/Add_output_0", reshape: .automatic),
        .init(arch: "vgg_nogap", tensor: "/features/features.21/MaxPool_output_0", reshape: .automatic),
        .init(arch: "vit", tensor: "/encoder/layers/encoder_layer_1/ln_1/LayerNormalization_output_0",
              reshape: .vit(extraTokens: nil)),
        .init(arch: "swin", tensor: "/features/features.3/features.3.1/Add_1_output_0", reshape: .channelsLast),
    ]

    @Test(arguments: expectations)
    func defaultLayer(_ e: Expectation) throws {
        let model = try fixtureModel("Tests/ONNXGraphTests/Fixtures/\(e.arch)/model.onnx")
        let input = try loadNPY("Tests/ONNXGraphTests/Fixtures/\(e.arch)/input_0.npy")
        let plan = try model.plan(forInputShapes: [input.shape])
        let d = try DefaultTargetLayer.find(in: model, plan: plan)
        #expect(d.tensor == e.tensor)
        #expect(d.reshape == e.reshape)
        // And it can be explained as is.
        let explanation = try CAMExplainer(model: model, method: GradCAM()).explain(input)
        #expect(explanation.layers.first?.tensor == e.tensor)
        #expect(explanation.layers.first?.isDefault == true)
        #expect(explanation.maps.scalars.allSatisfy { $0.isFinite && $0 >= 0 && $0 <= 1 })
    }

    @Test func bundledModelDefaultsToTheHeadActivation() throws {
        let model = try fixtureModel("Models/efficientnet-lite0.onnx")
        let plan = try model.plan(forInputShapes: [[1, 3, 224, 224]])
        let d = try DefaultTargetLayer.find(in: model, plan: plan)
        #expect(d.tensor == "/_swish_1/Clip_output_0")
    }
}
