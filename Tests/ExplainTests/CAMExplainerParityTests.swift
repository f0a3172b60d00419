@testable import Explain
import Foundation
import ONNXGraph
import TensorCore
import Testing

/// One method of one pytorch-grad-cam fixture case.
struct CAMParityCase: Sendable, CustomStringConvertible {
    let fixture: CAMFixtureCase
    let method: String
    var description: String { "\(fixture.name)/\(method)" }

    static func all() -> [CAMParityCase] {
        CAMFixtureCase.all().flatMap { c -> [CAMParityCase] in
            guard let meta = try? c.meta() else { return [] }
            return meta.methods.map { CAMParityCase(fixture: c, method: $0.method) }
        }
    }

    /// ScoreCAM on the 224×224 model makes 1280 full forward passes: opt-in.
    var isHeavy: Bool { fixture.name.hasPrefix("lite0") && method == "ScoreCAM" }
}

/// The final maps against pytorch-grad-cam 1.5.7 (`Scripts/fixtures/make_cam_fixtures.py`):
/// Pearson r ≥ 0.999 and max |Δ| ≤ 2e-3 on the [0, 1] maps, image by image. Methods that project
/// on a principal component are compared **up to sign**: with the fixture written with the sign
/// convention CAMKit uses (`signConventionFile`, Σ V[0] ≥ 0), the library's own file, and CAMKit's
/// map with the signs inverted (for layers whose channel sum is flat, where no rule fixes the sign).
@Suite("pytorch-grad-cam parity")
struct CAMExplainerParityTests {
    @Test(arguments: CAMParityCase.all())
    func finalMapsMatchTheReference(_ c: CAMParityCase) throws {
        if c.isHeavy && !heavyTestsEnabled { return }
        let meta = try c.fixture.meta()
        let entry = try #require(meta.methods.first { $0.method == c.method })
        let method = try #require(camMethod(named: c.method), "no CAMKit method for \(c.method)")
        let model = try fixtureModel(meta.model)
        let input = try loadNPY(meta.input)
        let layers = c.method == "FullGrad" ? [] : meta.targetLayers.map(\.onnxTensor)
        let explainer = try CAMExplainer(
            model: model, method: method, targetLayers: layers,
            options: CAMOptions(augSmooth: meta.augSmooth, eigenSmooth: meta.eigenSmooth, reshape: meta.reshape))
        let explanation = try explainer.explain(input, targets: meta.targets)
        let reference = try loadNPY(entry.signConventionFile ?? entry.file)
        #expect(explanation.maps.shape == reference.shape)
        guard explanation.maps.shape == reference.shape else { return }
        #expect(explanation.maps.scalars.allSatisfy { $0.isFinite && $0 >= 0 && $0 <= 1 })
        // Projection signs are arbitrary in the reference: for methods that project, each image
        // may match the library's file or the file written with the Σ V[0] ≥ 0 convention.
        var candidates = [reference]
        if entry.signConventionFile != nil && entry.signConventionFile != entry.file {
            candidates.append(try loadNPY(entry.file))
        }
        // Where the reference's sign is noise (a LayerNorm output sums to ~0 over channels, so
        // Σ V[0] ≈ 0), compare also CAMKit's map with every projection sign inverted.
        var mineCandidates = [explanation.maps]
        if entry.signConventionFile != nil {
            mineCandidates.append(try EigenDecomposition.$invertSigns.withValue(true) {
                try explainer.explain(input, targets: meta.targets).maps
            })
        }
        let n = reference.count / meta.batch
        for b in 0..<meta.batch {
            let scores = mineCandidates.flatMap { maps in
                let mine = Tensor(shape: [n], scalars: Array(maps.scalars[(b * n)..<((b + 1) * n)]))
                return candidates.map { ref in
                    compareMaps(mine, Tensor(shape: [n], scalars: Array(ref.scalars[(b * n)..<((b + 1) * n)])))
                }
            }
            let best = scores.max { $0.pearson < $1.pearson }!
            #expect(best.pearson >= 0.999 && best.maxAbs <= 2e-3,
                    "\(c) image \(b): Pearson r \(best.pearson), max |Δ| \(best.maxAbs)")
        }
        if !meta.augSmooth {
            #expect(explanation.targetClasses == meta.resolvedCategories.map { Optional($0) })
        }
        #expect(explanation.method == c.method)
    }

    /// The reverse pass's d(score)/d(layer) against torch autograd's (`gradients_<k>.npy`, raw
    /// layout), and the captured activations against the forward hooks' (`activations_<k>.npy`).
    @Test(arguments: CAMFixtureCase.all())
    func layerGradientsMatchAutograd(_ c: CAMFixtureCase) throws {
        let meta = try c.meta()
        let model = try fixtureModel(meta.model)
        let input = try loadNPY(meta.input)
        let tensors = meta.targetLayers.map(\.onnxTensor)
        let plan = try model.plan(forInputShapes: [input.shape], preserving: Set(tensors))
        let categories = meta.resolvedCategories
        let result = try plan.gradients([input], capturing: tensors, withRespectTo: tensors) { outputs in
            var seed = Tensor(zeros: outputs[0].shape)
            let n = outputs[0].count / meta.batch
            seed.withUnsafeMutableBufferPointer { p in
                for (b, cat) in categories.enumerated() { p[b * n + cat] = 1 }
            }
            return [seed]
        }
        let logits = try loadNPY(meta.logits)
        #expect(result.forward.outputs[0].relativeL2Error(to: logits) <= 1e-3)
        for (k, layer) in meta.targetLayers.enumerated() {
            let a = try #require(result.forward.captures[layer.onnxTensor])
            let g = try #require(result.gradients[layer.onnxTensor])
            let refA = try loadNPY(layer.activations), refG = try loadNPY(layer.gradients)
            #expect(a.shape == layer.rawShape)
            #expect(g.shape == layer.rawShape)
            guard a.shape == refA.shape, g.shape == refG.shape else { continue }
            let ea = a.relativeL2Error(to: refA), eg = g.relativeL2Error(to: refG)
            #expect(ea <= 1e-3, "\(c.name) layer \(k) (\(layer.module)): activations relative L2 \(ea)")
            #expect(eg <= 1e-3, "\(c.name) layer \(k) (\(layer.module)): gradients relative L2 \(eg)")
        }
    }

    /// Explaining the fixtures' target layers by their PyTorch module paths resolves to the same
    /// tensors the fixtures recorded (where the module exists in the ONNX graph).
    @Test(arguments: CAMFixtureCase.all())
    func modulePathsResolveToTheFixtureTensors(_ c: CAMFixtureCase) throws {
        let meta = try c.meta()
        let model = try fixtureModel(meta.model)
        for layer in meta.targetLayers {
            guard let t = try? model.resolveLayer(layer.module) else { continue }
            // The fixture records the tensor whose value equals the module's output; a module whose
            // last node is an in-place-equivalent op may resolve one node later with equal value.
            if t != layer.onnxTensor {
                let input = try loadNPY(meta.input)
                let r = try model.run([input], capturing: [t, layer.onnxTensor])
                let a = try #require(r.captures[t]), b = try #require(r.captures[layer.onnxTensor])
                #expect(a.shape == b.shape && a.relativeL2Error(to: b) <= 1e-5,
                        "\(c.name): '\(layer.module)' resolves to \(t), fixture uses \(layer.onnxTensor)")
            }
        }
    }
}
