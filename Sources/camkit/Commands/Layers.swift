import ArgumentParser
import CAMKit
import Foundation

/// `camkit layers`: the layer preview (module paths, ops, output shapes).
struct Layers: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the model's layers: module paths, ops and output shapes (names for --target-layers).")

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, help: "Batch size to compute the shapes for.")
    var batch: Int = 1

    func run() throws {
        let classifier = try modelOptions.load()
        let shape = try inputShape(of: classifier, batch: batch)
        let layers = try classifier.graph.layers(forInputShapes: [shape])
        let width = min(60, layers.map(\.path.count).max() ?? 10)
        for layer in layers {
            let path = layer.path.padding(toLength: max(width, layer.path.count), withPad: " ", startingAt: 0)
            let op = layer.opType.padding(toLength: 22, withPad: " ", startingAt: 0)
            print("\(path)  \(op)  \(layer.shape)")
        }
    }
}

/// The concrete input shape for a model: declared fixed dimensions, the batch for the first
/// symbolic one, and the sidecar's input size for the spatial ones.
func inputShape(of classifier: ImageClassifier, batch: Int) throws -> [Int] {
    guard let input = classifier.graph.inputs.first else {
        throw ValidationError("the model has no inputs")
    }
    let size = classifier.sidecar?.inputSize ?? [224, 224]
    var spatial = size.makeIterator()
    return input.dimensions.enumerated().map { i, d in
        switch d {
        case .fixed(let v): return v
        default: return i == 0 ? batch : (i == 1 && input.dimensions.count == 4 ? 3 : (spatial.next() ?? 224))
        }
    }
}
