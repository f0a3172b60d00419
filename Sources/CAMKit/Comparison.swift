// Method comparisons: several CAM methods × several classes on one photo, rendered as one
// captioned grid, like the comparison figures of pytorch-grad-cam's README (methods side by side
// in each row) and MMPretrain's `vis_cam.py` docs. The CLI's `camkit compare` is a thin wrapper.

import Foundation

/// A comparison cannot be made or drawn as asked.
public enum ComparisonError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A setting is out of range or missing (the message says which and what is allowed).
    case invalid(String)

    /// One line for a user.
    public var description: String {
        switch self {
        case .invalid(let message): return "cannot compare methods: \(message)"
        }
    }
}

/// Several CAM methods explaining several classes of one photo (see
/// ``ImageClassifier/compareMethods(_:on:categories:targetLayers:options:preprocessing:)``).
public struct MethodComparison: Sendable {
    /// One map: a method explaining a class.
    public struct Cell: Sendable {
        /// The method's name (as the method reports it, e.g. `GradCAM++`).
        public var method: String
        /// The explained class.
        public var classIndex: Int
        /// The class name (``ImageClassifier/label(of:)``).
        public var label: String
        /// The softmax probability of the class for the (un-augmented) input.
        public var probability: Float
        /// The map at model-input resolution, (H, W) in [0, 1].
        public var map: Tensor
        /// The layers the method used.
        public var layers: [ExplainedLayer]
        /// Warnings of the explanation (e.g. a flat map).
        public var warnings: [ExplanationWarning]
    }

    /// The photo as decoded.
    public var photo: RGBImage
    /// The model input made from it, with the crop geometry.
    public var prepared: PreprocessedImage
    /// The model's top predictions for the photo (up to 5).
    public var predictions: [Prediction]
    /// The method names, one per column after the photo.
    public var methods: [String]
    /// The explained classes, one per row.
    public var categories: [Int]
    /// `cells[row][column]`: row = class, column = method.
    public var cells: [[Cell]]

    /// How ``render(_:)`` draws the grid.
    public struct Style: Sendable {
        /// Draw on the model-input crop instead of the full photo. Default `false`.
        public var onInput: Bool
        /// The heatmap colours. Default ``Imaging/Colormap/jet``.
        public var colormap: Colormap
        /// The weight of the photo in the overlay (pytorch-grad-cam's `image_weight`), 0–1. Default 0.5.
        public var imageWeight: Float
        /// The longer side of each tile in pixels. Default 224.
        public var tileSize: Int
        /// The caption font size in pixels. Default 13.
        public var fontSize: Int
        /// Gap between tiles and around the grid. Default 8.
        public var padding: Int

        /// Creates a style; see the properties for the defaults.
        public init(onInput: Bool = false, colormap: Colormap = .jet, imageWeight: Float = 0.5, tileSize: Int = 224,
                    fontSize: Int = 13, padding: Int = 8) {
            self.onInput = onInput
            self.colormap = colormap
            self.imageWeight = imageWeight
            self.tileSize = tileSize
            self.fontSize = fontSize
            self.padding = padding
        }
    }

    /// The size of one tile (before its caption): the photo (or crop) scaled so that its longer side
    /// is `tileSize`, keeping the aspect ratio.
    public func tileSize(for style: Style) -> (width: Int, height: Int) {
        let (w, h) = style.onInput ? (prepared.inputImage.width, prepared.inputImage.height) : (photo.width, photo.height)
        let longer = max(w, h, 1)
        let scale = Double(max(1, style.tileSize)) / Double(longer)
        return (max(1, Int((Double(w) * scale).rounded())), max(1, Int((Double(h) * scale).rounded())))
    }

    /// The caption of a cell: the method on the first line, the class and its probability on the second.
    public static func caption(for cell: Cell) -> String {
        "\(cell.method)\n\(cell.classIndex) \(cell.label) \(String(format: "%.3f", cell.probability))"
    }

    /// The caption of the photo tile in a row.
    public func photoCaption(style: Style) -> String {
        style.onInput ? "input \(prepared.inputImage.width)×\(prepared.inputImage.height)"
            : "photo \(photo.width)×\(photo.height)"
    }

    /// The grid: one row per class, the photo (or the model-input crop) followed by each method's
    /// overlay (pytorch-grad-cam's `show_cam_on_image`), every tile captioned with the method, the
    /// class index and name, and its probability.
    ///
    /// - Throws: ``Imaging/FontError`` when no caption font is available (see ``Imaging/Font/default(pixelHeight:kerning:)``),
    ///   ``ComparisonError/invalid(_:)`` for a tile or font size out of range.
    public func render(_ style: Style = Style()) throws -> RGBImage {
        guard (16...4096).contains(style.tileSize) else {
            throw ComparisonError.invalid("tile size \(style.tileSize) is outside 16...4096 pixels")
        }
        guard (6...200).contains(style.fontSize) else {
            throw ComparisonError.invalid("font size \(style.fontSize) is outside 6...200 pixels")
        }
        guard (0...1).contains(style.imageWeight) else {
            throw ComparisonError.invalid("image weight \(style.imageWeight) is outside 0...1")
        }
        let font = try Font.default(pixelHeight: style.fontSize)
        let (tw, th) = tileSize(for: style)
        let base = style.onInput ? prepared.inputImage : photo
        let baseTile = base.resized(width: tw, height: th)
        var tiles: [RGBImage] = []
        for row in cells {
            tiles.append(captioned(baseTile, caption: photoCaption(style: style) + "\n ", font: font))
            for cell in row {
                let map = style.onInput ? cell.map : prepared.geometry.mapToSource(cell.map)
                let tileMap = (map.shape[0] == th && map.shape[1] == tw) ? map : resizedBilinear(map, height: th, width: tw)
                let overlay = camOverlay(baseTile, mask: tileMap, colormap: style.colormap, imageWeight: style.imageWeight)
                tiles.append(captioned(overlay, caption: Self.caption(for: cell), font: font))
            }
        }
        return gridImage(tiles, columns: methods.count + 1, padding: style.padding)
    }
}

extension ImageClassifier {
    /// Explains classes of one photo with several methods, for a side-by-side comparison.
    ///
    /// ```swift
    /// let classifier = try ImageClassifier.bundled()
    /// let photo = try RGBImage(contentsOf: URL(fileURLWithPath: "Samples/cat-and-coffee.jpg"))
    /// let methods = try ["gradcam", "gradcam++", "eigencam"].map { try CAMMethodName.method(named: $0) }
    /// let comparison = try classifier.compareMethods(methods, on: photo, categories: [285, 967])
    /// try comparison.render().write(to: URL(fileURLWithPath: "compare.png"))
    /// ```
    ///
    /// - Parameters:
    ///   - methods: the methods, one column each (at least one).
    ///   - photo: the decoded photo.
    ///   - categories: the classes, one row each; `nil` or empty for the top prediction.
    ///   - targetLayers: layer names for every method (empty: the default layer).
    ///   - options: see ``Explain/CAMOptions`` (aug-smooth, eigen-smooth, reshape, progress).
    ///   - preprocessing: the photo preprocessing (default: ``preprocessing``, the model's own).
    /// - Returns: the maps with their classes and probabilities.
    /// - Throws: ``ComparisonError/invalid(_:)`` without methods, the errors of
    ///   ``explainer(method:targetLayers:options:)`` (unknown layer) and of
    ///   ``Explain/CAMExplainer/explain(_:targets:)`` (class out of range).
    public func compareMethods(_ methods: [any CAMMethod], on photo: RGBImage, categories: [Int]? = nil,
                               targetLayers: [String] = [], options: CAMOptions = CAMOptions(),
                               preprocessing: Preprocessing? = nil) throws -> MethodComparison {
        guard !methods.isEmpty else { throw ComparisonError.invalid("no methods to compare; give at least one") }
        let prepared = (preprocessing ?? self.preprocessing)(photo)
        let input = prepared.tensor.reshaped(to: [1] + prepared.tensor.shape.suffix(3))
        let targets: [CAMTarget]? = categories.flatMap { $0.isEmpty ? nil : $0.map { CAMTarget.classScore($0) } }
        var columns: [[MethodComparison.Cell]] = []
        var predictions: [Prediction] = []
        for method in methods {
            let explainer = try self.explainer(method: method, targetLayers: targetLayers, options: options)
            let explanations = try targets.map { try explainer.explain(input, eachOf: $0) } ?? [explainer.explain(input)]
            if predictions.isEmpty, let first = explanations.first {
                predictions = topPredictions(logits: first.logits, k: 5).first ?? []
            }
            columns.append(explanations.map { e in
                let classIndex = e.targetClasses.first.flatMap { $0 } ?? predictions.first?.index ?? 0
                return MethodComparison.Cell(method: e.method, classIndex: classIndex, label: label(of: classIndex),
                                             probability: Self.probability(of: classIndex, logits: e.logits),
                                             map: e.map(ofImage: 0), layers: e.layers, warnings: e.warnings)
            })
        }
        let rows = columns.first?.count ?? 0
        let cells = (0..<rows).map { r in columns.map { $0[r] } }
        return MethodComparison(photo: photo, prepared: prepared, predictions: predictions,
                                methods: columns.compactMap { $0.first?.method },
                                categories: cells.map { $0.first?.classIndex ?? 0 }, cells: cells)
    }

    /// The softmax probability of one class in the first row of `logits` (B, classes).
    static func probability(of classIndex: Int, logits: Tensor) -> Float {
        let classes = logits.shape.last ?? logits.count
        let row = logits.scalars.prefix(classes)
        guard classIndex >= 0, classIndex < row.count, let maxLogit = row.max() else { return 0 }
        var total = 0.0
        for v in row { total += exp(Double(v - maxLogit)) }
        return Float(exp(Double(row[classIndex] - maxLogit)) / total)
    }
}
