import Foundation
import Testing
import CAMKit

/// End to end on the bundled model and the composite sample (cat on the left half, espresso cup on
/// the right half of `Samples/cat-and-coffee.jpg`, see `Samples/README.md`): decode, preprocess,
/// Grad-CAM for class 285 (Egyptian cat) and 967 (espresso), map back onto the photo.
@Suite struct ExplainPhotoTests {
    static let samples = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Samples")

    /// The x coordinate of the map's maximum on the full photo.
    private func peakColumn(of category: Int) throws -> (x: Int, width: Int) {
        let classifier = try ImageClassifier.bundled()
        let photo = try RGBImage(contentsOf: Self.samples.appendingPathComponent("cat-and-coffee.jpg"))
        let prepared = classifier.preprocessing(photo)
        let input = prepared.tensor.reshaped(to: [1] + prepared.tensor.shape.suffix(3))
        let explainer = try CAMExplainer(model: classifier.graph, method: GradCAM())
        let map = try explainer.explain(input, targets: [.classScore(category)]).map(ofImage: 0)
        let full = prepared.geometry.mapToSource(map)
        let values = full.scalars
        let best = values.indices.max { values[$0] < values[$1] } ?? 0
        return (best % photo.width, photo.width)
    }

    @Test func catMapPeaksOnTheCatAndCupMapOnTheCup() throws {
        let cat = try peakColumn(of: 285)
        let cup = try peakColumn(of: 967)
        #expect(cat.x < cat.width / 2, "cat peak at x = \(cat.x)")
        #expect(cup.x >= cup.width / 2, "cup peak at x = \(cup.x)")
    }

    @Test func bundledModelAgreesWithONNXRuntimeOnTheSampleTensor() throws {
        let classifier = try ImageClassifier.bundled()
        let input = try NPY.read(contentsOf: Self.samples.appendingPathComponent("cat-and-coffee.input.npy"))
        let top = try classifier.predict(input, topK: 5)[0]
        // Samples/cat-and-coffee.expected.json, written by Scripts/make_samples.py from ONNX Runtime.
        let data = try Data(contentsOf: Self.samples.appendingPathComponent("cat-and-coffee.expected.json"))
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let expected = try #require(json["top5"] as? [[String: Any]])
        #expect(top.map(\.index) == expected.compactMap { $0["index"] as? Int })
        for (p, e) in zip(top, expected) {
            let logit = try #require(e["logit"] as? Double)
            #expect(abs(Double(p.logit) - logit) <= 1e-3 * max(1, abs(logit)), "class \(p.index)")
        }
    }
}
