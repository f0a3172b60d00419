import Foundation

/// One ranked class of a prediction, as Keras' `decode_predictions` gives it.
public struct Prediction: Sendable, Equatable, Codable {
    /// The class index.
    public var index: Int
    /// The class name, or `"class <index>"` without labels.
    public var label: String
    /// The raw model output.
    public var logit: Float
    /// The softmax probability over all classes.
    public var probability: Float
}

/// An ONNX image classifier with its sidecar (preprocessing and labels).
public final class ImageClassifier: Sendable {
    /// The model file.
    public let url: URL
    /// The executable graph.
    public let graph: ModelGraph
    /// Preprocessing and labels, when the model has a sidecar.
    public let sidecar: ModelSidecar?
    /// Class names by index, when known.
    public let classNames: [String]?

    /// Loads a model and its sidecar (`M.json` beside `M.onnx`, optional).
    /// - Throws: ``ONNXGraphError`` for the model, ``CAMKitError`` for the sidecar.
    public init(contentsOf url: URL) throws {
        self.url = url
        self.graph = try ModelGraph(contentsOf: url)
        self.sidecar = try ModelSidecar.load(besideModel: url)
        self.classNames = try sidecar?.classNames(besideModel: url)
    }

    /// The bundled EfficientNet-Lite0 (see ``BundledModel``).
    public static func bundled() throws -> ImageClassifier {
        try ImageClassifier(contentsOf: BundledModel.url())
    }

    /// The label of a class index.
    public func label(of index: Int) -> String {
        if let classNames, index >= 0, index < classNames.count { return classNames[index] }
        return "class \(index)"
    }

    /// The top `k` classes of each image of a batch of model outputs (B, classes).
    public func topPredictions(logits: Tensor, k: Int) -> [[Prediction]] {
        let batch = logits.shape.first ?? 1
        let classes = logits.count / max(batch, 1)
        let values = logits.scalars
        return (0..<batch).map { b in
            let row = values[(b * classes)..<((b + 1) * classes)]
            let maxLogit = row.max() ?? 0
            var total = 0.0
            for v in row { total += exp(Double(v - maxLogit)) }
            let order = row.indices.sorted { row[$0] != row[$1] ? row[$0] > row[$1] : $0 < $1 }
            return order.prefix(max(0, k)).map { i in
                let c = i - b * classes
                return Prediction(index: c, label: label(of: c), logit: row[i],
                                  probability: Float(exp(Double(row[i] - maxLogit)) / total))
            }
        }
    }

    /// Runs the model on a preprocessed input tensor and returns the top `k` classes per image.
    public func predict(_ input: Tensor, topK k: Int = 5) throws -> [[Prediction]] {
        let result = try graph.run([input])
        return topPredictions(logits: result.outputs[0], k: k)
    }
}

extension ImageClassifier {
    /// The photo preprocessing the model expects: from its sidecar when it has one (shorter-side
    /// resize, centre crop, mean/std), else torchvision's ImageNet preset at the input's size.
    public var preprocessing: Preprocessing {
        let size = sidecar?.inputSize ?? [224, 224]
        let (height, width) = (size.first ?? 224, size.count > 1 ? size[1] : (size.first ?? 224))
        let shorter = sidecar?.resize ?? Int((Double(min(height, width)) * 256 / 224).rounded())
        let normalization = Normalization(mean: sidecar?.mean ?? Normalization.imagenet.mean,
                                          std: sidecar?.std ?? Normalization.imagenet.std)
        let layout: TensorLayout = sidecar?.layout?.uppercased() == "NHWC" ? .nhwc : .nchw
        return Preprocessing(resize: .resizeShorterSideAndCenterCrop(shorterSide: shorter, cropWidth: width, cropHeight: height),
                             normalization: normalization, layout: layout)
    }
}
