import ArgumentParser
import CAMKit
import Foundation

/// `camkit explain`: class-activation maps drawn over photos (the default subcommand).
struct ExplainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Explain what the model looks at: a class-activation map over each photo.",
        discussion: "Methods: \(CAMMethodName.all.joined(separator: ", ")) (case and punctuation do not matter).")

    @Argument(help: "Photos (PNG or JPEG).")
    var images: [String] = []

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, help: "The CAM method.")
    var method: String = "gradcam"

    @Option(name: .customLong("target-layers"), parsing: .upToNextOption,
            help: "Layers to explain (PyTorch module paths such as layer4, node or tensor names); default: the last feature map before pooling.")
    var targetLayers: [String] = []

    @Option(name: .customLong("target-category"), parsing: .upToNextOption,
            help: "Class indices to explain, one map each; default: the top prediction.")
    var targetCategory: [Int] = []

    @Flag(name: .customLong("aug-smooth"), help: "Average over flips and scales (test-time augmentation).")
    var augSmooth = false

    @Flag(name: .customLong("eigen-smooth"), help: "Use the first principal component of the weighted activations.")
    var eigenSmooth = false

    @Flag(name: .customLong("vit-like"), help: "The target layer outputs transformer tokens (B, extra+N, C).")
    var vitLike = false

    @Option(name: .customLong("num-extra-tokens"), help: "Class/distillation tokens to drop with --vit-like (default: detected).")
    var numExtraTokens: Int?

    @Option(name: .long, help: "Colormap: jet, turbo, viridis, inferno, magma, gray.")
    var colormap: String = "jet"

    @Option(name: .customLong("image-weight"), help: "Weight of the photo in the overlay (pytorch-grad-cam's image_weight).")
    var imageWeight: Float = 0.5

    @Option(name: .customLong("save-path"), help: "Output image (one photo, one category) or directory; default: <photo>-<method>-<class>.png beside the photo.")
    var savePath: String?

    @Option(name: .customLong("save-raw"), help: "Also write the float32 map at model-input resolution as .npy.")
    var saveRaw: String?

    @Option(name: .customLong("input-tensor"), help: "Explain an exact preprocessed tensor (.npy) instead of a photo.")
    var inputTensor: String?

    @Flag(name: .customLong("on-input"), help: "Draw on the model-input crop instead of the full photo.")
    var onInput = false

    @Option(name: .customLong("top-k"), help: "How many predictions to print.")
    var topK: Int = 5

    @Flag(name: .long, help: "One JSON object per image and category on stdout.")
    var json = false

    func validate() throws {
        if images.isEmpty && inputTensor == nil { throw ValidationError("give a photo, or --input-tensor x.npy") }
        if !(0...1).contains(imageWeight) { throw ValidationError("--image-weight must lie in [0, 1]") }
        if topK < 0 { throw ValidationError("--top-k must not be negative") }
    }

    func run() throws {
        let classifier = try modelOptions.load()
        let camMethod = try CAMMethodName.method(named: method)
        guard let palette = Colormap(rawValue: colormap.lowercased()) else {
            throw ValidationError("unknown colormap '\(colormap)'; valid: jet, turbo, viridis, inferno, magma, gray")
        }
        var options = CAMOptions(augSmooth: augSmooth, eigenSmooth: eigenSmooth)
        if vitLike { options.reshape = .vit(extraTokens: numExtraTokens) }
        let explainer = try CAMExplainer(model: classifier.graph, method: camMethod, targetLayers: targetLayers,
                                         options: options)
        if let inputTensor {
            let tensor = try NPY.read(contentsOf: URL(fileURLWithPath: inputTensor))
            try explain(tensor: tensor, photo: nil, name: inputTensor, classifier: classifier, explainer: explainer,
                        palette: palette)
            return
        }
        for path in images {
            let url = URL(fileURLWithPath: path)
            let photo = try RGBImage(contentsOf: url)
            try explain(tensor: nil, photo: photo, name: path, classifier: classifier, explainer: explainer,
                        palette: palette)
        }
    }

    private func explain(tensor given: Tensor?, photo: RGBImage?, name: String, classifier: ImageClassifier,
                         explainer: CAMExplainer, palette: Colormap) throws {
        let started = DispatchTime.now()
        var prepared: PreprocessedImage?
        let tensor: Tensor
        if let given {
            tensor = given
        } else if let photo {
            let p = classifier.preprocessing(photo)
            prepared = p
            tensor = p.tensor.reshaped(to: [1] + p.tensor.shape.suffix(3))
        } else {
            return
        }
        let targets: [CAMTarget?] = targetCategory.isEmpty ? [nil] : targetCategory.map { .classScore($0) }
        for target in targets {
            let explanation = try explainer.explain(tensor, targets: target.map { [$0] })
            let predictions = classifier.topPredictions(logits: explanation.logits, k: topK)[0]
            let chosen = explanation.targetClasses.first.flatMap { $0 } ?? predictions.first?.index ?? 0
            let map = explanation.map(ofImage: 0)
            let output = outputURL(for: name, method: explainer.method.name, category: chosen)
            if let prepared, let photo {
                let image = onInput
                    ? camOverlay(prepared.inputImage, mask: map, colormap: palette, imageWeight: imageWeight)
                    : camOverlay(photo, mask: prepared.geometry.mapToSource(map), colormap: palette, imageWeight: imageWeight)
                try image.write(to: output)
            }
            if let saveRaw {
                var url = URL(fileURLWithPath: saveRaw)
                if targets.count > 1 { url = url.deletingPathExtension().appendingPathExtension("\(chosen).npy") }
                try writeAtomically([UInt8](NPY.encode(map)), to: url)
            }
            let elapsed = milliseconds(since: started)
            for warning in explanation.warnings { FileHandle.standardError.write(Data("warning: \(warning)\n".utf8)) }
            if json {
                let record: [String: Any] = [
                    "input": name, "method": explainer.method.name, "target_class": chosen,
                    "target_label": classifier.label(of: chosen),
                    "layers": explanation.layers.map(\.name),
                    "predictions": predictions.map { ["index": $0.index, "label": $0.label, "logit": $0.logit,
                                                      "probability": $0.probability] },
                    "outputs": (photo != nil ? [output.path] : []) + (saveRaw.map { [$0] } ?? []),
                    "timings_ms": ["total": elapsed],
                ]
                let data = try JSONSerialization.data(withJSONObject: record, options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
            } else {
                print("\(name): \(explainer.method.name) for class \(chosen) '\(classifier.label(of: chosen))' at \(explanation.layers.map(\.description).joined(separator: ", "))")
                for p in predictions {
                    print(String(format: "  %5d  %@  logit %.3f  p %.4f", p.index, p.label, p.logit, p.probability))
                }
                if photo != nil { print("  wrote \(output.path)") }
            }
        }
    }

    /// Where the overlay of one photo and category goes.
    private func outputURL(for input: String, method: String, category: Int) -> URL {
        let base = URL(fileURLWithPath: input).deletingPathExtension().lastPathComponent
        let file = "\(base)-\(method.lowercased())-\(category).png"
        guard let savePath else {
            return URL(fileURLWithPath: input).deletingLastPathComponent().appendingPathComponent(file)
        }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: savePath, isDirectory: &isDirectory), isDirectory.boolValue {
            return URL(fileURLWithPath: savePath).appendingPathComponent(file)
        }
        if images.count > 1 || targetCategory.count > 1 {
            let url = URL(fileURLWithPath: savePath)
            return url.deletingPathExtension().appendingPathExtension("\(base)-\(category).\(url.pathExtension.isEmpty ? "png" : url.pathExtension)")
        }
        return URL(fileURLWithPath: savePath)
    }
}
