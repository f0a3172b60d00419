import ArgumentParser
import CAMKit
import Foundation

/// The options that choose a model.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: "An ONNX model file (default: the bundled EfficientNet-Lite0). A sidecar M.json beside M.onnx gives preprocessing and labels.")
    var model: String?

    /// Loads the chosen model.
    func load() throws -> ImageClassifier {
        if let model {
            return try ImageClassifier(contentsOf: URL(fileURLWithPath: model))
        }
        return try ImageClassifier.bundled()
    }
}
