import Foundation
import Testing
import TensorCore
@testable import ONNXGraph

/// Forward outputs against ONNX Runtime's, on every committed fixture
/// (`Scripts/fixtures/make_onnx_fixtures.py`). Bar: relative L2 error ≤ 1e-4 per output
/// (issue: "A differentiable-ready ONNX runtime"); integer and Bool outputs must be exact.
@Suite struct FixtureParity {
    @Test(arguments: FixtureCase.all())
    func matchesONNXRuntime(_ fixture: FixtureCase) throws {
        let model = try ModelGraph(contentsOf: fixture.directory.appendingPathComponent("model.onnx"))
        let inputs = try fixture.tensors("input")
        let expected = try fixture.tensors("output")
        let result = try model.run(inputs)
        try #require(result.outputs.count >= expected.count)
        for (k, reference) in expected.enumerated() {
            let actual = result.outputs[k]
            #expect(actual.shape == reference.shape, "output \(k) shape")
            guard actual.shape == reference.shape else { continue }
            if reference.dtype == .float32 {
                let error = actual.converted(to: .float32).relativeL2Error(to: reference)
                #expect(error <= 1e-4, "output \(k): relative L2 error \(error)")
            } else {
                #expect(actual.int64s == reference.int64s, "output \(k) differs")
            }
        }
    }

    /// Module paths ("layer4.1") resolve to the tensor PyTorch's forward hook saw.
    @Test(arguments: FixtureCase.all(kind: "arch"))
    func layerPathsMatchPyTorchModules(_ fixture: FixtureCase) throws {
        let url = fixture.directory.appendingPathComponent("layers.json")
        guard let data = try? Data(contentsOf: url),
              let layers = try JSONSerialization.jsonObject(with: data) as? [[String: String]]
        else { return }
        let model = try ModelGraph(contentsOf: fixture.directory.appendingPathComponent("model.onnx"))
        let inputs = try fixture.tensors("input")
        let modules = layers.compactMap { $0["module"] }
        let result = try model.run(inputs, capturing: modules)
        for layer in layers {
            guard let module = layer["module"], let file = layer["file"] else { continue }
            let reference = try NPY.read(contentsOf: fixture.directory.appendingPathComponent(file))
            let actual = try #require(result.captures[module])
            #expect(actual.shape == reference.shape, "\(module) shape")
            if actual.shape == reference.shape {
                let error = actual.relativeL2Error(to: reference)
                #expect(error <= 1e-4, "\(module): relative L2 error \(error)")
            }
        }
    }
}
