import ArgumentParser
import CAMKit
import Foundation

/// `camkit layers`: the layer preview (module paths, ops, output shapes).
struct Layers: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the model's layers: module paths, ops and output shapes (names for --target-layers).",
        discussion: ExitStatus.helpText)

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, help: "Batch size to compute the shapes for.")
    var batch: Int = 1

    func validate() throws {
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
    }

    func run() throws {
        try reportingErrors {
            let overrides = try modelOptions.overrides()
            let classifier = try modelOptions.load()
            let shape = try inputShape(of: classifier, batch: batch,
                                       preprocessing: try classifier.preprocessing(with: overrides))
            let layers = try classifier.graph.layers(forInputShapes: [shape])
            let width = min(60, layers.map(\.path.count).max() ?? 10)
            for layer in layers {
                let path = layer.path.padding(toLength: max(width, layer.path.count), withPad: " ", startingAt: 0)
                let op = layer.opType.padding(toLength: 22, withPad: " ", startingAt: 0)
                print("\(path)  \(op)  \(layer.shape)")
            }
        }
    }
}

/// The concrete input shape for a model: declared fixed dimensions, the batch for the first
/// symbolic one, and the preprocessing's input size (default: the model's own recipe) for the
/// spatial ones, in the recipe's layout.
func inputShape(of classifier: ImageClassifier, batch: Int, preprocessing: Preprocessing? = nil) throws -> [Int] {
    guard let input = classifier.graph.inputs.first else {
        throw CLIError(description: "\(classifier.url.path): the model has no inputs; export it with an image input",
                       status: .dataError)
    }
    let recipe = preprocessing ?? classifier.preprocessing
    let size = recipe.inputSize ?? (224, 224)
    let wanted = recipe.layout == .nchw ? [batch, 3, size.height, size.width] : [batch, size.height, size.width, 3]
    guard input.dimensions.count == 4 else {
        return input.dimensions.enumerated().map { i, d in
            if case .fixed(let v) = d { return v }
            return i == 0 ? batch : 1
        }
    }
    return zip(input.dimensions, wanted).map { d, w in
        if case .fixed(let v) = d { return v }
        return w
    }
}
