import Explain
import Foundation
import ONNXGraph
import TensorCore
import Testing

/// TensorFlow-layout (B, H, W, C) models against pytorch-grad-cam on their NCHW twin
/// (`Scripts/fixtures/make_layout_fixtures.py`): the layout reaches every place that touches the
/// input (augmentation flips, ScoreCAM's masks, the map size), with the same bar as the parity suite.
@Suite("NHWC input layout")
struct InputLayoutTests {
    static let directory = "Tests/ExplainTests/Fixtures/nhwc"

    @Test(arguments: ["gradcam", "gradcam_aug", "scorecam", "layercam"])
    func nhwcModelMatchesTheReferenceOnItsNCHWTwin(_ name: String) throws {
        let model = try fixtureModel("\(Self.directory)/model_nhwc.onnx")
        let input = try loadNPY("\(Self.directory)/input_nhwc.npy")
        #expect(InputLayout.detect(input.shape) == .nhwc)
        let method: any CAMMethod = switch name {
        case "scorecam": ScoreCAM()
        case "layercam": LayerCAM()
        default: GradCAM()
        }
        let explainer = try CAMExplainer(model: model, method: method, targetLayers: ["net.features.7"],
                                         options: CAMOptions(augSmooth: name == "gradcam_aug"))
        let explanation = try explainer.explain(input)
        let reference = try loadNPY("\(Self.directory)/\(name).npy")
        #expect(explanation.maps.shape == [2, 32, 32])
        #expect(explanation.targetClasses == [1, 1])
        guard explanation.maps.shape == reference.shape else { return }
        let n = 32 * 32
        for b in 0..<2 {
            let mine = Tensor(shape: [n], scalars: Array(explanation.maps.scalars[(b * n)..<((b + 1) * n)]))
            let ref = Tensor(shape: [n], scalars: Array(reference.scalars[(b * n)..<((b + 1) * n)]))
            let score = compareMaps(mine, ref)
            #expect(score.pearson >= 0.999 && score.maxAbs <= 2e-3,
                    "\(name) image \(b): Pearson r \(score.pearson), max |Δ| \(score.maxAbs)")
        }
    }

    /// Saying the layout explicitly gives the same maps as detecting it.
    @Test func explicitLayoutEqualsDetection() throws {
        let model = try fixtureModel("\(Self.directory)/model_nhwc.onnx")
        let input = try loadNPY("\(Self.directory)/input_nhwc.npy")
        let detected = try CAMExplainer(model: model, method: GradCAM(), targetLayers: ["net.features.7"],
                                        options: CAMOptions(augSmooth: true)).explain(input)
        let explicit = try CAMExplainer(model: model, method: GradCAM(), targetLayers: ["net.features.7"],
                                        options: CAMOptions(augSmooth: true, inputLayout: .nhwc)).explain(input)
        #expect(detected.maps == explicit.maps)
    }
}
