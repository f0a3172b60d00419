import Explain
import Foundation
import ONNXGraph
import TensorCore
import Testing

private let resnetPath = "Tests/ONNXGraphTests/Fixtures/resnet_basic/model.onnx"
private let resnetInput = "Tests/ONNXGraphTests/Fixtures/resnet_basic/input_0.npy"
private let resnetLayer4 = "/layer4/layer4.1/relu_1/Relu_output_0"

/// Bad input, the API's contracts and warnings, on the small ResNet fixture (10 classes, 64×64).
@Suite("CAMExplainer")
struct CAMExplainerTests {
    func resnet() throws -> (ModelGraph, Tensor) {
        (try fixtureModel(resnetPath), try loadNPY(resnetInput))
    }

    @Test func unknownLayerIsRejectedWithSuggestions() throws {
        let (model, _) = try resnet()
        #expect {
            _ = try CAMExplainer(model: model, method: GradCAM(), targetLayers: ["layr4"])
        } throws: { error in
            guard case ONNXGraphError.unknownLayer(let name, let suggestions)? = error as? ONNXGraphError else { return false }
            return name == "layr4" && suggestions.contains("layer4")
        }
    }

    @Test func classOutOfRangeNamesTheClassCount() throws {
        let (model, input) = try resnet()
        let explainer = try CAMExplainer(model: model, method: GradCAM(), targetLayers: ["layer4"])
        #expect(throws: ExplainError.classOutOfRange(classIndex: 10, classCount: 10)) {
            _ = try explainer.explain(input, targets: [.classScore(10)])
        }
        #expect(throws: ExplainError.classOutOfRange(classIndex: -1, classCount: 10)) {
            _ = try explainer.explain(input, targets: [.softmax(-1)])
        }
        #expect(ExplainError.classOutOfRange(classIndex: 10, classCount: 10).description.contains("10 classes"))
    }

    @Test func targetCountMustMatchTheBatch() throws {
        let (model, input) = try resnet()
        let explainer = try CAMExplainer(model: model, method: GradCAM(), targetLayers: ["layer4"])
        #expect(throws: ExplainError.targetCountMismatch(targets: 2, batch: 1)) {
            _ = try explainer.explain(input, targets: [.classScore(1), .classScore(2)])
        }
        #expect(throws: ExplainError.targetCountMismatch(targets: 0, batch: 1)) {
            _ = try explainer.explain(input, targets: [])
        }
    }

    @Test func layerWithoutSpatialStructureExplainsTheReshapeOptions() throws {
        let (model, input) = try resnet()
        let explainer = try CAMExplainer(model: model, method: GradCAM(), targetLayers: ["/Flatten_output_0"])
        do {
            _ = try explainer.explain(input)
            Issue.record("expected an error")
        } catch let error as ExplainError {
            guard case .noSpatialStructure(let layer, let shape, _) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(layer == "/Flatten_output_0")
            #expect(shape == [1, 96])
            #expect(error.description.contains("--vit-like"))
            #expect(error.description.contains("--num-extra-tokens"))
        }
    }

    @Test func flatMapIsZerosWithAWarning() throws {
        let (model, input) = try resnet()
        // A score that does not depend on the output: every gradient is 0, so is every weight.
        let constant = CustomTarget(name: "constant", score: { _ in 1 }, gradient: { [Float](repeating: 0, count: $0.count) })
        let explainer = try CAMExplainer(model: model, method: GradCAM(), targetLayers: ["layer4"])
        let e = try explainer.explain(input, targets: [.custom(constant)])
        #expect(e.maps.shape == [1, 64, 64])
        #expect(e.maps.scalars.allSatisfy { $0 == 0 })
        #expect(e.warnings.contains(.flatMap(image: 0)))
        #expect(e.targetClasses == [nil])
    }

    @Test func topPredictionIsTheArgmaxLogit() throws {
        let (model, input) = try resnet()
        let explainer = try CAMExplainer(model: model, method: GradCAM(), targetLayers: ["layer4"])
        let top = try explainer.explain(input)
        let logits = top.logits.scalars
        let argmax = logits.indices.max { logits[$0] < logits[$1] }!
        #expect(top.targetClasses == [argmax])
        let explicit = try explainer.explain(input, targets: [.classScore(argmax)])
        #expect(explicit.maps == top.maps)
        #expect(top.layers.map(\.tensor) == [resnetLayer4])
        #expect(top.warnings.isEmpty)
    }

    @Test func eachOfGivesOneMapPerCategory() throws {
        let (model, input) = try resnet()
        let explainer = try CAMExplainer(model: model, method: GradCAM(), targetLayers: ["layer4"])
        let maps = try explainer.explain(input, eachOf: [.classScore(1), .classScore(3)])
        #expect(maps.map(\.targetClasses) == [[1], [3]])
        let single = try explainer.explain(input, targets: [.classScore(3)])
        #expect(maps[1].maps == single.maps)
    }

    @Test func softmaxTargetSeedsTheSoftmaxGradient() throws {
        // GradCAM weights are linear in the seed: softmax target = Σ_i ∂p_c/∂x_i · (logit-i weights).
        let (model, input) = try resnet()
        let explainer = try CAMExplainer(model: model, method: GradCAM(), targetLayers: ["layer4"])
        let e = try explainer.explain(input, targets: [.softmax(3)])
        #expect(e.targetClasses == [3])
        let logits = e.logits.scalars
        let m = logits.max()!
        let ex = logits.map { Foundation.exp(Double($0 - m)) }
        let p = ex.map { $0 / ex.reduce(0, +) }
        let grad = (0..<logits.count).map { i in Float(p[3] * ((i == 3 ? 1 : 0) - p[i])) }
        let custom = CustomTarget(name: "softmax 3 by hand", score: { _ in 0 }, gradient: { _ in grad })
        let byHand = try explainer.explain(input, targets: [.custom(custom)])
        let (r, d) = compareMaps(e.maps, byHand.maps)
        #expect(r > 0.99999 && d < 1e-4)
    }

    @Test func defaultLayerIsReported() throws {
        let (model, input) = try resnet()
        let explainer = try CAMExplainer(model: model, method: GradCAM())
        let e = try explainer.explain(input)
        #expect(e.layers.count == 1)
        #expect(e.layers[0].tensor == resnetLayer4)
        #expect(e.layers[0].isDefault)
        #expect(e.layers[0].name == "layer4")
        let named = try CAMExplainer(model: model, method: GradCAM(), targetLayers: ["layer4"]).explain(input)
        #expect(named.maps == e.maps)
    }

    @Test func randomCAMIsSeeded() throws {
        let (model, input) = try resnet()
        let a = try CAMExplainer(model: model, method: RandomCAM(seed: 7), targetLayers: ["layer4"]).explain(input)
        let b = try CAMExplainer(model: model, method: RandomCAM(seed: 7), targetLayers: ["layer4"]).explain(input)
        let c = try CAMExplainer(model: model, method: RandomCAM(seed: 8), targetLayers: ["layer4"]).explain(input)
        #expect(a.maps == b.maps)
        #expect(a.maps != c.maps)
    }

    @Test func progressIsReportedForScoreCAM() throws {
        let (model, input) = try resnet()
        final class Box: @unchecked Sendable { var calls: [(Int, Int)] = [] }
        let box = Box()
        let explainer = try CAMExplainer(model: model, method: ScoreCAM(batchSize: 40), targetLayers: ["layer4"],
                                         options: CAMOptions(progress: { box.calls.append(($0, $1)) }))
        _ = try explainer.explain(input)
        // 96 channels; the fixture model declares a fixed batch of 1, so one pass per call.
        #expect(box.calls.last.map { [$0.0, $0.1] } == [96, 96])
        #expect(box.calls.allSatisfy { $0.1 == 96 })
        #expect(zip(box.calls, box.calls.dropFirst()).allSatisfy { $0.0 < $1.0 })
    }

    @Test func batchSizeDoesNotChangeScoreCAM() throws {
        let (model, input) = try resnet()
        let a = try CAMExplainer(model: model, method: ScoreCAM(batchSize: 16), targetLayers: ["layer4"]).explain(input)
        let b = try CAMExplainer(model: model, method: ScoreCAM(batchSize: 7), targetLayers: ["layer4"]).explain(input)
        let (r, d) = compareMaps(a.maps, b.maps)
        #expect(r > 0.99999 && d < 1e-4)
    }

    @Test func nhwcRankAndDtypeOfInputAreChecked() throws {
        let (model, _) = try resnet()
        let explainer = try CAMExplainer(model: model, method: GradCAM(), targetLayers: ["layer4"])
        #expect(throws: ExplainError.self) { _ = try explainer.explain(Tensor(zeros: [3, 64, 64])) }
        #expect(throws: ExplainError.self) { _ = try explainer.explain(Tensor(zeros: [1, 3, 64, 64], dtype: .int64)) }
    }

    @Test func fullGradIgnoresTargetLayersWithANote() throws {
        let (model, input) = try resnet()
        let e = try CAMExplainer(model: model, method: FullGrad(), targetLayers: ["layer4"]).explain(input)
        #expect(e.warnings.contains { if case .note = $0 { return true } else { return false } })
        #expect(!e.layers.isEmpty)
    }
}
