import Foundation
import Testing
import Explain
import ONNXGraph
import TensorCore

/// Where `Scripts/fixtures/make_featvis_fixtures.py` writes its cases.
private let featvisDirectory = repositoryRoot.appendingPathComponent("Tests/ExplainTests/Fixtures/featvis")

/// The parts of featvis/<model>/meta.json the tests use (paths relative to the repository root).
private struct FeatvisMeta: Decodable {
    struct FeatureMapEntry: Decodable {
        var module: String
        var onnxTensor: String
        var shape: [Int]
        var mean: String
        var order: String
        var top: String
    }
    struct KernelEntry: Decodable {
        var module: String
        var kind: String
        var shape: [Int]
        var file: String
        var first: Int?
        var count: Int?
        var tileFile: String?
    }
    struct DeconvEntry: Decodable {
        var module: String
        var onnxTensor: String
        var channel: Int
        var file: String
        var positions: [[Int]]
        var activations: [Float]
    }
    struct SeededEntry: Decodable {
        var module: String
        var onnxTensor: String
        var seed: String
        var gradient: String
    }
    var model: String
    var input: String
    var topN: Int
    var featureMaps: [FeatureMapEntry]
    var kernels: [KernelEntry]
    var deconvnet: [DeconvEntry]
    var seeded: [SeededEntry]

    static func load(_ name: String) throws -> FeatvisMeta {
        let data = try Data(contentsOf: featvisDirectory.appendingPathComponent("\(name)/meta.json"))
        return try JSONDecoder().decode(FeatvisMeta.self, from: data)
    }
}

/// One model load per test process.
private let vgg: Result<(FeatvisMeta, ModelGraph, Tensor), any Error> = Result {
    let meta = try FeatvisMeta.load("vgg")
    let model = try ModelGraph(contentsOf: repositoryRoot.appendingPathComponent(meta.model))
    return (meta, model, try loadNPY(meta.input))
}

/// Feature maps, conv kernels and deconvnet reconstructions against PyTorch / Captum on the VGG
/// fixture model (`Scripts/fixtures/make_featvis_fixtures.py`).
@Suite struct FeatureVisualizationTests {
    @Test func featureMapsMatchPyTorch() throws {
        let (meta, model, x) = try vgg.get()
        for entry in meta.featureMaps {
            let selection = try FeatureMaps(model: model, layer: entry.module).top(meta.topN, of: x)
            let order = try loadNPY(entry.order).int64s.prefix(meta.topN).map(Int.init)
            #expect(selection.channels == order, "\(entry.module)")
            #expect(selection.layer.tensor == entry.onnxTensor)
            let means = try loadNPY(entry.mean).scalars
            for (c, m) in zip(selection.channels, selection.meanActivations) {
                #expect(abs(m - means[c]) <= 1e-5 * max(1, abs(means[c])), "\(entry.module) channel \(c)")
            }
            let top = try loadNPY(entry.top)
            #expect(selection.maps.shape == Array(top.shape.dropFirst()))
            let error = selection.maps.relativeL2Error(to: top.reshaped(to: Array(top.shape.dropFirst())))
            // Activations agree with PyTorch to ~1e-6 relative; min–max scaling keeps that order.
            #expect(error <= 1e-5, "\(entry.module): relative L2 \(error)")
            #expect(selection.captions.first == "#\(order[0])")
            // Asking for the same channels explicitly gives the same maps.
            let explicit = try FeatureMaps(model: model, layer: entry.module).channels(order, of: x)
            #expect(explicit.maps == selection.maps)
        }
    }

    @Test func convKernelsMatchPyTorchWeights() throws {
        let (meta, model, _) = try vgg.get()
        for entry in meta.kernels {
            let kernels = try ConvKernels(model: model, layer: entry.module)
            #expect(kernels.weights.shape == entry.shape)
            let expected = try loadNPY(entry.file)
            if entry.kind == "rgb" {
                let tiles = try kernels.rgbTiles()
                #expect(tiles.tiles.relativeL2Error(to: expected) <= 1e-6)
                #expect(tiles.outputChannels == Array(0..<entry.shape[0]))
                // No layer: the graph's first Conv, which is this one.
                let first = try ConvKernels(model: model)
                #expect(first.nodeName == kernels.nodeName && first.weights == kernels.weights)
                // A ReLU module after the Conv resolves to the Conv.
                let viaRelu = try ConvKernels(model: model, layer: "features.1")
                #expect(viaRelu.nodeName == kernels.nodeName)
            } else {
                let range = (entry.first ?? 0)..<((entry.first ?? 0) + (entry.count ?? 0))
                let grey = try kernels.greyTiles(outputChannels: range)
                #expect(grey.tiles.relativeL2Error(to: expected) <= 1e-6)
                #expect(grey.outputChannels == Array(range))
                let perTile = try kernels.greyTiles(outputChannels: range, normalization: .perTile)
                #expect(perTile.tiles.relativeL2Error(to: try loadNPY(entry.tileFile ?? "")) <= 1e-6)
            }
        }
    }

    /// Captum NeuronDeconvolution (seed 1 on the strongest activation), relative L2 ≤ 1e-3.
    @Test func deconvnetMatchesCaptum() throws {
        let (meta, model, x) = try vgg.get()
        for entry in meta.deconvnet {
            let unit = try DeconvnetReconstruction(model: model, layer: entry.module, channel: entry.channel, seed: .unit)
                .reconstruct(x)
            let expected = try loadNPY(entry.file)
            #expect(unit.positions.map { [$0.row, $0.column] } == entry.positions, "channel \(entry.channel)")
            for (a, b) in zip(unit.activations, entry.activations) { #expect(abs(a - b) <= 1e-4 * max(1, abs(b))) }
            let error = unit.reconstruction.relativeL2Error(to: expected)
            #expect(error <= 1e-3, "channel \(entry.channel): relative L2 \(error)")
            // The paper's seed (the activation's value) scales the reconstruction by that value.
            let paper = try DeconvnetReconstruction(model: model, layer: entry.module, channel: entry.channel)
                .reconstruct(x)
            let scaled = Tensor(shape: expected.shape, scalars: expected.scalars.map { $0 * entry.activations[0] })
            #expect(paper.reconstruction.relativeL2Error(to: scaled) <= 1e-3)
        }
    }

    /// The seeded reverse pass (standard rule) against torch.autograd.grad(layer, x, grad_outputs=seed).
    @Test func seededReversePassMatchesAutograd() throws {
        let (meta, model, x) = try vgg.get()
        for entry in meta.seeded {
            let seed = try loadNPY(entry.seed), expected = try loadNPY(entry.gradient)
            let plan = try model.plan(forInputShapes: [x.shape], preserving: [entry.onnxTensor])
            let input = model.inputs[0].name
            let g = try plan.gradients([x], withRespectTo: [input], seeding: [entry.onnxTensor: seed]).gradients[input]!
            let error = g.relativeL2Error(to: expected)
            #expect(error <= 1e-4, "relative L2 \(error)")
        }
    }

    /// Token layers: a ViT block's (B, 1 + N, C) output shown as (C, √N, √N) maps, compared with
    /// the PyTorch activations of the CAM fixture rearranged by hand (class token dropped).
    @Test func vitTokenLayerFeatureMaps() throws {
        let meta = try CAMFixtureCase(name: "vit_ln1_pred").meta()
        let model = try ModelGraph(contentsOf: repositoryRoot.appendingPathComponent(meta.model))
        let x = try loadNPY(meta.input)
        let layer = meta.targetLayers[0]
        let raw = try loadNPY(layer.activations)                // (B, 1 + N, C)
        let (tokens, c) = (raw.shape[1], raw.shape[2])
        let side = Int(Double(tokens - 1).squareRoot())
        let selection = try FeatureMaps(model: model, layer: layer.module).top(4, of: x, image: 1)
        #expect(selection.layer.reshape == .tokens(extra: 1, height: side, width: side))
        let r = raw.scalars
        func value(_ ch: Int, _ t: Int) -> Float { r[(1 * tokens + 1 + t) * c + ch] }
        let means = (0..<c).map { ch in (0..<(tokens - 1)).reduce(Float(0)) { $0 + value(ch, $1) } / Float(tokens - 1) }
        let order = (0..<c).sorted { means[$0] != means[$1] ? means[$0] > means[$1] : $0 < $1 }
        #expect(selection.channels == Array(order.prefix(4)))
        var expected: [Float] = []
        for ch in order.prefix(4) {
            let plane = (0..<(tokens - 1)).map { value(ch, $0) }
            let lo = plane.min()!, hi = plane.max()!
            expected += plane.map { ($0 - lo) / (hi - lo) }
        }
        let error = selection.maps.relativeL2Error(to: Tensor(shape: [4, side, side], scalars: expected))
        #expect(error <= 1e-4, "relative L2 \(error)")

        // Deconvnet on tokens: the strongest token of channel `ch` per image (PyTorch's argmax), and
        // the seed placed on raw element (b, 1 + row·side + column, ch). The ViT has no ReLU, so
        // the reconstruction is the plain gradient of that element: compare with a seed built here.
        let ch = order[0]
        let result = try DeconvnetReconstruction(model: model, layer: layer.module, channel: ch, seed: .unit).reconstruct(x)
        var seed = [Float](repeating: 0, count: raw.count)
        for b in 0..<raw.shape[0] {
            let values = (0..<(tokens - 1)).map { r[(b * tokens + 1 + $0) * c + ch] }
            let best = values.indices.max { values[$0] < values[$1] || (values[$0] == values[$1] && $0 > $1) }!
            #expect(result.positions[b] == FeaturePosition(row: best / side, column: best % side), "image \(b)")
            #expect(abs(result.activations[b] - values[best]) <= 1e-4 * max(1, abs(values[best])))
            seed[(b * tokens + 1 + best) * c + ch] = 1
        }
        let plan = try model.plan(forInputShapes: [x.shape], preserving: [layer.onnxTensor])
        let input = model.inputs[0].name
        let g = try plan.gradients([x], withRespectTo: [input],
                                   seeding: [layer.onnxTensor: Tensor(shape: raw.shape, scalars: seed)]).gradients[input]!
        #expect(result.reconstruction.relativeL2Error(to: g) <= 1e-6)
    }

    @Test func badRequestsAreClearErrors() throws {
        let (_, model, x) = try vgg.get()
        // Layers without conv kernels.
        for layer in ["avgpool", "classifier.0", "features.2"] {
            do {
                _ = try ConvKernels(model: model, layer: layer)
                Issue.record("\(layer) has no conv kernels but was accepted")
            } catch let error as ExplainError {
                guard case .noConvolutionKernels(let name, _) = error else {
                    Issue.record("unexpected \(error)")
                    continue
                }
                #expect(name == layer)
                #expect(error.description.contains("no convolution kernels"))
            }
        }
        // RGB tiles of a deeper conv (8 input channels).
        #expect(throws: ExplainError.self) { _ = try ConvKernels(model: model, layer: "features.3").rgbTiles() }
        // Output channels out of range (features.3 has 16 kernels).
        #expect(throws: ExplainError.channelOutOfRange(layer: "features.3", channel: 16, channelCount: 16)) {
            _ = try ConvKernels(model: model, layer: "features.3").greyTiles(outputChannels: 14..<17)
        }
        // Feature-map and deconvnet channels out of range (features.9 has 32 channels).
        #expect(throws: ExplainError.channelOutOfRange(layer: "features.9", channel: 32, channelCount: 32)) {
            _ = try FeatureMaps(model: model, layer: "features.9").channels([3, 32], of: x)
        }
        #expect(throws: ExplainError.channelOutOfRange(layer: "features.9", channel: 32, channelCount: 32)) {
            _ = try DeconvnetReconstruction(model: model, layer: "features.9", channel: 32).reconstruct(x)
        }
        #expect(throws: ExplainError.self) { _ = try DeconvnetReconstruction(model: model, layer: "features.9", channel: -1) }
        let message = ExplainError.channelOutOfRange(layer: "features.9", channel: 32, channelCount: 32).description
        #expect(message.contains("0...31"))
        // Counts and image indices.
        #expect(throws: ExplainError.self) { _ = try FeatureMaps(model: model, layer: "features.9").top(0, of: x) }
        #expect(throws: ExplainError.self) { _ = try FeatureMaps(model: model, layer: "features.9").top(4, of: x, image: 1) }
        // Unknown layer names come with suggestions.
        #expect(throws: ONNXGraphError.self) { _ = try FeatureMaps(model: model, layer: "featurs.9") }
    }
}
