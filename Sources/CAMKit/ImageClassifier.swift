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

/// Changes to a model's preprocessing (the CLI's `--preset`, `--input-size`, `--mean`, `--std`,
/// `--resize`, `--layout`); each `nil` keeps what the model's sidecar (or the default) says.
public struct PreprocessingOverrides: Sendable {
    /// A preset replacing the sidecar's recipe (its normalisation and resize ratio; the model's
    /// input size still wins unless ``inputSize`` is given).
    public var preset: Preprocessing?
    /// The model input size, height then width.
    public var inputSize: [Int]?
    /// Per-channel means, in the recipe's units (0–1, or 0–255 for `caffe`) and channel order.
    public var mean: [Float]?
    /// Per-channel standard deviations, as ``mean``.
    public var std: [Float]?
    /// How the photo reaches the input size.
    public var resize: ResizeStrategy?
    /// The input tensor layout.
    public var layout: TensorLayout?

    /// Creates overrides; every `nil` keeps the model's setting.
    public init(preset: Preprocessing? = nil, inputSize: [Int]? = nil, mean: [Float]? = nil, std: [Float]? = nil,
                resize: ResizeStrategy? = nil, layout: TensorLayout? = nil) {
        self.preset = preset
        self.inputSize = inputSize
        self.mean = mean
        self.std = std
        self.resize = resize
        self.layout = layout
    }
}

extension ImageClassifier {
    /// The layout of the model input: the sidecar's `"layout"` when it gives one, else detected from
    /// the declared input shape — NHWC when dimension 3 is a fixed 1, 3 or 4 and dimension 1 is not
    /// (Keras and TensorFlow exports, `(N, H, W, 3)`), NCHW otherwise.
    public var inputLayout: TensorLayout {
        if let layout = sidecar?.layout?.uppercased() { return layout == "NHWC" ? .nhwc : .nchw }
        guard let dims = graph.inputs.first?.dimensions, dims.count == 4 else { return .nchw }
        func isChannelCount(_ d: TensorDimension) -> Bool {
            if case .fixed(let v) = d { return [1, 3, 4].contains(v) }
            return false
        }
        return !isChannelCount(dims[1]) && isChannelCount(dims[3]) ? .nhwc : .nchw
    }

    /// The input height and width the model declares, when both are fixed.
    public var declaredInputSize: (height: Int, width: Int)? {
        guard let dims = graph.inputs.first?.dimensions, dims.count == 4 else { return nil }
        let (hi, wi) = inputLayout == .nchw ? (2, 3) : (1, 2)
        guard case .fixed(let h) = dims[hi], case .fixed(let w) = dims[wi], h > 0, w > 0 else { return nil }
        return (h, w)
    }

    /// The photo preprocessing the model expects (see ``preprocessing(with:)`` without overrides).
    public var preprocessing: Preprocessing {
        // The sidecar is validated when loaded, so the recipe without overrides cannot fail.
        (try? preprocessing(with: PreprocessingOverrides())) ?? .imagenet
    }

    /// The photo preprocessing for this model with the user's overrides.
    ///
    /// - The recipe: the overriding preset, else the sidecar's (its `preset`, refined by its
    ///   `resize`, `mean` and `std`), else torchvision's ImageNet recipe.
    /// - The input size: the override, else the sidecar's `inputSize`, else the model's declared
    ///   fixed input size, else the preset's own (224, or 299 for `inception`). A shorter-side crop
    ///   keeps its resize-to-crop ratio (256/224) at other sizes.
    /// - Then the resize mode, mean, std and layout overrides.
    /// - Throws: ``CAMKitError/invalidPreprocessing(option:value:reason:)`` for an input size,
    ///   mean or std that cannot be used (an input size other than the model's fixed one included).
    public func preprocessing(with overrides: PreprocessingOverrides) throws -> Preprocessing {
        var recipe: Preprocessing
        if let preset = overrides.preset {
            recipe = preset
        } else if let sidecar {
            recipe = sidecar.preset.flatMap(Preprocessing.preset(named:)) ?? .imagenet
            if let mean = sidecar.mean, let std = sidecar.std {
                recipe.normalization = Normalization(mean: mean, std: std, channelOrder: recipe.normalization.channelOrder,
                                                     pixelRange: recipe.normalization.pixelRange)
            } else if sidecar.mean != nil || sidecar.std != nil {
                recipe.normalization = Normalization(mean: sidecar.mean ?? recipe.normalization.mean,
                                                     std: sidecar.std ?? recipe.normalization.std,
                                                     channelOrder: recipe.normalization.channelOrder,
                                                     pixelRange: recipe.normalization.pixelRange)
            }
            if let size = sidecar.inputSize {
                let (h, w) = (size[0], size.count > 1 ? size[1] : size[0])
                recipe = recipe.adapted(toInputWidth: w, height: h)
                if let shorter = sidecar.resize, case .resizeShorterSideAndCenterCrop = recipe.resize {
                    recipe.resize = .resizeShorterSideAndCenterCrop(shorterSide: shorter, cropWidth: w, cropHeight: h)
                }
            }
            if let mode = sidecar.resizeMode.flatMap({ ResizeStrategy(rawValue: $0.lowercased()) }) {
                recipe = recipe.resizing(mode)
            }
        } else {
            recipe = .imagenet
        }
        if let size = overrides.inputSize {
            guard (1...2).contains(size.count), size.allSatisfy({ $0 >= 1 && $0 <= 16384 }) else {
                throw CAMKitError.invalidPreprocessing(
                    option: "input size", value: size.map(String.init).joined(separator: "x"),
                    reason: "give H or HxW with values from 1 to 16384, e.g. 224 or 384x288")
            }
            let (h, w) = (size[0], size.count > 1 ? size[1] : size[0])
            if let declared = declaredInputSize, declared != (h, w) {
                throw CAMKitError.invalidPreprocessing(
                    option: "input size", value: "\(h)x\(w)",
                    reason: "the model's input is fixed at \(declared.height)x\(declared.width); leave the size out or export the model with dynamic height and width")
            }
            recipe = recipe.adapted(toInputWidth: w, height: h)
        } else if sidecar?.inputSize == nil, let (h, w) = declaredInputSize {
            recipe = recipe.adapted(toInputWidth: w, height: h)
        }
        if let mode = overrides.resize { recipe = recipe.resizing(mode) }
        if overrides.mean != nil || overrides.std != nil {
            let mean = overrides.mean ?? recipe.normalization.mean, std = overrides.std ?? recipe.normalization.std
            guard mean.count == 3, mean.allSatisfy(\.isFinite) else {
                throw CAMKitError.invalidPreprocessing(option: "mean", value: mean.map { "\($0)" }.joined(separator: ","),
                                                       reason: "give 3 numbers, one per channel, e.g. 0.485,0.456,0.406")
            }
            guard std.count == 3, std.allSatisfy({ $0.isFinite && $0 != 0 }) else {
                throw CAMKitError.invalidPreprocessing(option: "std", value: std.map { "\($0)" }.joined(separator: ","),
                                                       reason: "give 3 non-zero numbers, one per channel, e.g. 0.229,0.224,0.225")
            }
            recipe.normalization = Normalization(mean: mean, std: std, channelOrder: recipe.normalization.channelOrder,
                                                 pixelRange: recipe.normalization.pixelRange)
        }
        recipe.layout = overrides.layout ?? inputLayout
        return recipe
    }

    /// The number of classes the model outputs for inputs of `shape` (the last dimension of its
    /// first output), or `nil` when the output is not (batch, classes).
    /// - Throws: ``ONNXGraph/ONNXGraphError`` when the model cannot be specialised for `shape`.
    public func classCount(forInputShape shape: [Int]) throws -> Int? {
        let plan = try graph.plan(forInputShapes: [shape])
        guard let name = graph.outputNames.first, let info = plan.info(ofValue: name), info.shape.count == 2 else {
            return nil
        }
        return info.shape[1]
    }
}
