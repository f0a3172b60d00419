import ArgumentParser
import CAMKit
import Foundation

/// `camkit predict`: top-k classes for a preprocessed input tensor.
struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the top-k classes the model predicts for an input tensor (.npy).")

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .customLong("input-tensor"), help: "A preprocessed input tensor saved with numpy.save (float32, the model's input shape).")
    var inputTensor: String

    @Option(name: .customLong("top-k"), help: "How many classes to print.")
    var topK: Int = 5

    func run() throws {
        let classifier = try modelOptions.load()
        let input = try NPY.read(contentsOf: URL(fileURLWithPath: inputTensor))
        let predictions = try classifier.predict(input, topK: topK)
        for (b, ranked) in predictions.enumerated() {
            if predictions.count > 1 { print("image \(b):") }
            for p in ranked {
                let label = p.label.padding(toLength: max(32, p.label.count), withPad: " ", startingAt: 0)
                print(String(format: "%5d  ", p.index) + label + String(format: "  logit %8.3f  p %.4f", p.logit, p.probability))
            }
        }
    }
}
