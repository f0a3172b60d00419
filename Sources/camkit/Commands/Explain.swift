import ArgumentParser
import CAMKit
import Foundation

/// `camkit explain`: class-activation maps drawn over photos (the default subcommand).
///
/// Photos may be files, directories and glob patterns; a bad photo is reported on one line,
/// skipped and counted, and the others are still explained (see ``ExitStatus`` for the codes).
struct ExplainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Explain what the model looks at: a class-activation map over each photo.",
        discussion: """
            Methods: \(CAMMethodName.all.joined(separator: ", ")) (case and punctuation do not matter).

            IMAGE may be a file, a directory (its .png/.jpg/.jpeg files; subdirectories with --recursive) or a \
            glob pattern such as 'photos/*.jpg'. A progress bar is drawn on stderr when it is a terminal, and a \
            summary (images done, skipped, outputs written, time, images/s) follows a run of several photos.

            --json prints one object per line for each photo and category: input, method, target_class, \
            target_label, layers, predictions [{index, label, logit, probability}], outputs, warnings and \
            timings_ms {decode, preprocess, explain, write, total}; a photo that failed gives \
            {input, error, exit_status}.

            \(ExitStatus.helpText)
            """)

    @Argument(help: "Photos (PNG or JPEG), directories of photos or glob patterns.")
    var images: [String] = []

    @OptionGroup(title: "Model and preprocessing") var modelOptions: ModelOptions

    @OptionGroup(title: "Batches") var batchOptions: BatchOptions

    @Option(name: .long, help: "The CAM method.")
    var method: String = "gradcam"

    @OptionGroup(title: "CAM") var cam: CAMArguments







    @Option(name: .long, help: "Colormap: jet, turbo, viridis, inferno, magma, gray.")
    var colormap: String = "jet"

    @Option(name: .customLong("image-weight"), help: "Weight of the photo in the overlay (pytorch-grad-cam's image_weight).")
    var imageWeight: Float = 0.5

    @Option(name: .customLong("save-path"), help: "Output image (one photo, one category) or directory (existing, or ending in '/'); default: <photo>-<method>-<class>.png beside the photo.")
    var savePath: String?

    @Option(name: .customLong("save-raw"), help: "Also write the float32 map at model-input resolution as .npy (a file, or a directory for several photos).")
    var saveRaw: String?

    @Option(name: .customLong("input-tensor"), help: "Explain an exact preprocessed tensor (.npy) instead of a photo.")
    var inputTensor: String?

    @Flag(name: .customLong("on-input"), help: "Draw on the model-input crop instead of the full photo.")
    var onInput = false

    @Option(name: .customLong("top-k"), help: "How many predictions to print (at most the number of classes).")
    var topK: Int = 5

    @Flag(name: .long, help: "One JSON object per line for each photo and category on stdout.")
    var json = false

    func validate() throws {
        if images.isEmpty && inputTensor == nil { throw ValidationError("give a photo, or --input-tensor x.npy") }
        if !images.isEmpty && inputTensor != nil { throw ValidationError("give photos or --input-tensor, not both") }
        if !(0...1).contains(imageWeight) { throw ValidationError("--image-weight must lie in [0, 1]") }
        if topK < 0 { throw ValidationError("--top-k must not be negative") }
    }

    func run() throws {
        try reportingErrors { try explainAll() }
    }

    /// Everything a worker needs, immutable and shared between jobs.
    struct Context: Sendable {
        let classifier: ImageClassifier
        let explainer: CAMExplainer
        let preprocessing: Preprocessing
        let palette: Colormap
        let outputs: OutputPaths
        let decoding: DecodingOptions
    }

    private func explainAll() throws {
        // Usage first (64), then inputs (66), the model and the request against it (64, 65, 66, 69),
        // then the output directories (73); only then any photo is decoded.
        let camMethod = try cam.method(named: method)
        guard let palette = Colormap(rawValue: colormap.lowercased()) else {
            throw CLIError.usage("unknown colormap '\(colormap)'; valid colormaps: jet, turbo, viridis, inferno, magma, gray")
        }
        let overrides = try modelOptions.overrides()
        let items: [InputItem]
        if let inputTensor {
            guard FileManager.default.fileExists(atPath: inputTensor) else {
                throw CLIError(description: "\(inputTensor): no such file; check the path of --input-tensor", status: .noInput)
            }
            items = [InputItem(path: inputTensor)]
        } else {
            items = InputExpansion.expand(images, recursive: batchOptions.recursive)
        }
        let photos = items.filter { $0.failure == nil }
        if photos.isEmpty, let failure = items.first?.failure {
            for item in items.dropFirst() { if let f = item.failure { StandardError.write(diagnosticLine(for: f) + "\n") } }
            throw failure
        }

        batchOptions.configureThreads()
        let classifier = try modelOptions.load()
        let preprocessing = try classifier.preprocessing(with: overrides)
        var options = cam.options
        options.inputLayout = preprocessing.layout == .nhwc ? .nhwc : .nchw
        let explainer = try CAMExplainer(model: classifier.graph, method: camMethod, targetLayers: cam.targetLayers,
                                         options: options)
        if inputTensor == nil, let size = preprocessing.inputSize {
            // Class indices and --top-k are checked against the model before any photo is read.
            let shape = preprocessing.layout == .nchw ? [1, 3, size.height, size.width] : [1, size.height, size.width, 3]
            if let classes = try classifier.classCount(forInputShape: shape) {
                if let c = cam.targetCategory.first(where: { $0 >= classes }) {
                    throw ExplainError.classOutOfRange(classIndex: c, classCount: classes)
                }
                if topK > classes {
                    throw CLIError.usage("--top-k \(topK) is more than the model's \(classes) classes; give at most \(classes)")
                }
            }
        }
        // Output directories are checked (73) and created only once the request is known to be valid.
        let outputs = try OutputPaths(savePath: savePath, saveRaw: saveRaw, photoCount: photos.count,
                                      categoryCount: max(1, cam.targetCategory.count))
        let context = Context(classifier: classifier, explainer: explainer, preprocessing: preprocessing,
                              palette: palette, outputs: outputs, decoding: modelOptions.decoding)

        let several = items.count > 1
        let reporter = BatchReporter(total: items.count,
                                     progress: several && !batchOptions.quiet && BatchReporter.standardErrorIsTerminal)
        let command = self
        let firstFailure = BatchRunner.run(count: items.count, jobs: batchOptions.jobs, reporter: reporter) { i in
            command.outcome(for: items[i], context: context)
        }
        reporter.clearProgress()
        if several && !batchOptions.quiet { StandardError.write(reporter.summary() + "\n") }
        if let firstFailure { throw ExitCode(firstFailure.rawValue) }
    }

    /// Explains one input; errors become the outcome's failure (the batch goes on).
    func outcome(for item: InputItem, context: Context) -> ItemOutcome {
        do {
            if let failure = item.failure { throw failure }
            return try explain(item, context: context)
        } catch {
            var outcome = ItemOutcome()
            let line = diagnosticLine(for: error, input: item.path)
            let status = ExitStatus(for: error)
            outcome.failure = (line, status)
            if json {
                let record: [String: Any] = ["input": item.path, "error": String(line.dropFirst("camkit: ".count)),
                                             "exit_status": Int(status.rawValue)]
                if let data = try? JSONSerialization.data(withJSONObject: record, options: [.sortedKeys]) {
                    outcome.stdout.append(String(decoding: data, as: UTF8.self))
                }
            }
            return outcome
        }
    }

    /// Time spent on one photo, in milliseconds.
    struct Timings {
        var decode = 0.0, preprocess = 0.0
    }

    private func explain(_ item: InputItem, context: Context) throws -> ItemOutcome {
        let categories: [Int?] = cam.targetCategory.isEmpty ? [nil] : cam.targetCategory
        var timings = Timings()
        var photo: RGBImage?
        var prepared: PreprocessedImage?
        let tensor: Tensor
        if inputTensor != nil {
            let start = DispatchTime.now()
            tensor = try NPY.read(contentsOf: URL(fileURLWithPath: item.path))
            timings.decode = milliseconds(since: start)
        } else {
            // Outputs beside the photo: check the folder before decoding (73, no work done).
            if let c = categories.first {
                try context.outputs.prepareDirectory(
                    of: context.outputs.overlay(for: item, method: context.explainer.method.name, category: c ?? 0))
            }
            var start = DispatchTime.now()
            let decoded = try RGBImage(contentsOf: URL(fileURLWithPath: item.path), options: context.decoding)
            timings.decode = milliseconds(since: start)
            start = DispatchTime.now()
            let p = context.preprocessing(decoded)
            timings.preprocess = milliseconds(since: start)
            photo = decoded
            prepared = p
            tensor = p.tensor
        }
        if let raw = context.outputs.rawMap(for: item, method: context.explainer.method.name, category: categories.first.flatMap { $0 } ?? 0) {
            try context.outputs.prepareDirectory(of: raw)
        }
        var outcome = ItemOutcome()
        for category in categories {
            var start = DispatchTime.now()
            let explanation = try context.explainer.explain(tensor, targets: category.map { [.classScore($0)] })
            let explainMs = milliseconds(since: start)
            let predictions = context.classifier.topPredictions(logits: explanation.logits, k: topK)[0]
            let chosen = explanation.targetClasses.first.flatMap { $0 } ?? predictions.first?.index ?? 0
            let map = explanation.map(ofImage: 0)
            start = DispatchTime.now()
            var written: [String] = []
            if let prepared, let photo {
                let url = context.outputs.overlay(for: item, method: context.explainer.method.name, category: chosen)
                try context.outputs.prepareDirectory(of: url)
                let image = onInput
                    ? camOverlay(prepared.inputImage, mask: map, colormap: context.palette, imageWeight: imageWeight)
                    : camOverlay(photo, mask: prepared.geometry.mapToSource(map), colormap: context.palette,
                                 imageWeight: imageWeight)
                try image.write(to: url)
                written.append(url.path)
                outcome.outputs += 1
            }
            if let url = context.outputs.rawMap(for: item, method: context.explainer.method.name, category: chosen) {
                try writeAtomically([UInt8](NPY.encode(map)), to: url)
                written.append(url.path)
                outcome.outputs += 1
            }
            let writeMs = milliseconds(since: start)
            outcome.notes += explanation.warnings.map { "camkit: \(item.path): warning: \($0)" }
            if json {
                let total = timings.decode + timings.preprocess + explainMs + writeMs
                let record: [String: Any] = [
                    "input": item.path, "method": context.explainer.method.name, "target_class": chosen,
                    "target_label": context.classifier.label(of: chosen),
                    "layers": explanation.layers.map(\.name),
                    "predictions": predictions.map(jsonObject),
                    "outputs": written,
                    "warnings": explanation.warnings.map { "\($0)" },
                    "timings_ms": ["decode": timings.decode, "preprocess": timings.preprocess, "explain": explainMs,
                                   "write": writeMs, "total": total],
                ]
                let data = try JSONSerialization.data(withJSONObject: record, options: [.sortedKeys])
                outcome.stdout.append(String(decoding: data, as: UTF8.self))
            } else {
                outcome.stdout.append("\(item.path): \(context.explainer.method.name) for class \(chosen) '\(context.classifier.label(of: chosen))' at \(explanation.layers.map(\.description).joined(separator: ", "))")
                for p in predictions {
                    outcome.stdout.append(String(format: "  %5d  %@  logit %.3f  p %.4f", p.index, p.label, p.logit, p.probability))
                }
                for path in written { outcome.stdout.append("  wrote \(path)") }
            }
        }
        return outcome
    }
}
