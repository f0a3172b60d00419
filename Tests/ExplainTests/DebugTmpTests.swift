@testable import Explain
import Foundation
import TensorCore
import Testing

@Test func debugMetrics() throws {
    guard ProcessInfo.processInfo.environment["CAMKIT_DEBUG_METRICS"] == "1" else { return }
    for c in CAMParityCase.all() where !(c.isHeavy && !heavyTestsEnabled) {
        let meta = try c.fixture.meta()
        let entry = meta.methods.first { $0.method == c.method }!
        let model = try fixtureModel(meta.model)
        let input = try loadNPY(meta.input)
        let layers = c.method == "FullGrad" ? [] : meta.targetLayers.map(\.onnxTensor)
        let t0 = Date()
        let e = try CAMExplainer(model: model, method: camMethod(named: c.method)!, targetLayers: layers,
                                 options: CAMOptions(augSmooth: meta.augSmooth, eigenSmooth: meta.eigenSmooth, reshape: meta.reshape)).explain(input, targets: meta.targets)
        let dt = Date().timeIntervalSince(t0)
        let ref = try loadNPY(entry.signConventionFile ?? entry.file)
        let (r, m) = compareMaps(e.maps, ref)
        print(String(format: "METRIC %@ r=%.6f maxAbs=%.2e time=%.2fs", c.description, r, m, dt))
    }
}
