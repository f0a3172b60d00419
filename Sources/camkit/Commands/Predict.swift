import ArgumentParser
import CAMKit
import Foundation

/// `camkit predict`: the top-k classes for photos or a preprocessed input tensor.
struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the top-k classes the model predicts for photos or an input tensor (.npy).",
        discussion: """
            IMAGE may be a file, a directory or a glob pattern, as for `camkit explain`. --json prints one object \
            per line and photo: input, predictions [{index, label, logit, probability}], timings_ms.

            \(ExitStatus.helpText)
            """)

    @Argument(help: "Photos (PNG or JPEG), directories of photos or glob patterns.")
    var images: [String] = []

    @OptionGroup(title: "Model and preprocessing") var modelOptions: ModelOptions

    @OptionGroup(title: "Batches") var batchOptions: BatchOptions

    @Option(name: .customLong("input-tensor"), help: "A preprocessed input tensor saved with numpy.save (float32, the model's input shape).")
    var inputTensor: String?

    @Option(name: .customLong("top-k"), help: "How many classes to print (at most the number of classes).")
    var topK: Int = 5

    @Flag(name: .long, help: "One JSON object per line and photo on stdout.")
    var json = false

    func validate() throws {
        if images.isEmpty && inputTensor == nil { throw ValidationError("give a photo, or --input-tensor x.npy") }
        if !images.isEmpty && inputTensor != nil { throw ValidationError("give photos or --input-tensor, not both") }
        if topK < 1 { throw ValidationError("--top-k must be at least 1") }
    }

    func run() throws {
        try reportingErrors { try predictAll() }
    }

    private func predictAll() throws {
        let overrides = try modelOptions.overrides()
        if let inputTensor {
            guard FileManager.default.fileExists(atPath: inputTensor) else {
                throw CLIError(description: "\(inputTensor): no such file; check the path of --input-tensor", status: .noInput)
            }
            let classifier = try modelOptions.load()
            let input = try NPY.read(contentsOf: URL(fileURLWithPath: inputTensor))
            let logits = try classifier.graph.run([input]).outputs[0]
            try checkTopK(classes: logits.shape.last ?? 0)
            let predictions = classifier.topPredictions(logits: logits, k: topK)
            for (b, ranked) in predictions.enumerated() {
                if json {
                    print(try jsonLine(["input": inputTensor, "image": b, "predictions": ranked.map(jsonObject)]))
                    continue
                }
                if predictions.count > 1 { print("image \(b):") }
                for p in ranked { print(Self.line(p)) }
            }
            return
        }
        let items = InputExpansion.expand(images, recursive: batchOptions.recursive)
        if !items.contains(where: { $0.failure == nil }), let failure = items.first?.failure {
            for item in items.dropFirst() { if let f = item.failure { StandardError.write(diagnosticLine(for: f) + "\n") } }
            throw failure
        }
        batchOptions.configureThreads()
        let classifier = try modelOptions.load()
        let preprocessing = try classifier.preprocessing(with: overrides)
        if let size = preprocessing.inputSize {
            let shape = preprocessing.layout == .nchw ? [1, 3, size.height, size.width] : [1, size.height, size.width, 3]
            if let classes = try classifier.classCount(forInputShape: shape) { try checkTopK(classes: classes) }
        }
        let several = items.count > 1
        let reporter = BatchReporter(total: items.count,
                                     progress: several && !batchOptions.quiet && BatchReporter.standardErrorIsTerminal)
        let (decoding, topK, json) = (modelOptions.decoding, topK, json)
        let firstFailure = BatchRunner.run(count: items.count, jobs: batchOptions.jobs, reporter: reporter) { i in
            let item = items[i]
            var outcome = ItemOutcome()
            do {
                if let failure = item.failure { throw failure }
                var start = DispatchTime.now()
                let photo = try RGBImage(contentsOf: URL(fileURLWithPath: item.path), options: decoding)
                let decodeMs = milliseconds(since: start)
                start = DispatchTime.now()
                let input = preprocessing(photo).tensor
                let preprocessMs = milliseconds(since: start)
                start = DispatchTime.now()
                let logits = try classifier.graph.run([input]).outputs[0]
                let forwardMs = milliseconds(since: start)
                let ranked = classifier.topPredictions(logits: logits, k: topK)[0]
                if json {
                    outcome.stdout.append(try jsonLine([
                        "input": item.path, "predictions": ranked.map(jsonObject),
                        "timings_ms": ["decode": decodeMs, "preprocess": preprocessMs, "forward": forwardMs,
                                       "total": decodeMs + preprocessMs + forwardMs]]))
                } else {
                    outcome.stdout.append("\(item.path):")
                    outcome.stdout += ranked.map(Self.line)
                }
            } catch {
                let line = diagnosticLine(for: error, input: item.path), status = ExitStatus(for: error)
                outcome.failure = (line, status)
                if json, let text = try? jsonLine(["input": item.path, "error": String(line.dropFirst("camkit: ".count)),
                                                   "exit_status": Int(status.rawValue)]) {
                    outcome.stdout.append(text)
                }
            }
            return outcome
        }
        reporter.clearProgress()
        if several && !batchOptions.quiet { StandardError.write(reporter.summary(verb: "classified", countsOutputs: false) + "\n") }
        if let firstFailure { throw ExitCode(firstFailure.rawValue) }
    }

    private func checkTopK(classes: Int) throws {
        if topK > classes {
            throw CLIError.usage("--top-k \(topK) is more than the model's \(classes) classes; give at most \(classes)")
        }
    }

    /// One ranked class as text.
    static func line(_ p: Prediction) -> String {
        let label = p.label.padding(toLength: max(32, p.label.count), withPad: " ", startingAt: 0)
        return String(format: "%5d  ", p.index) + label + String(format: "  logit %8.3f  p %.4f", p.logit, p.probability)
    }
}

/// One JSON object on one line, keys sorted.
func jsonLine(_ object: [String: Any]) throws -> String {
    String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
}
