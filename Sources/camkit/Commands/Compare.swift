import ArgumentParser
import CAMKit
import Foundation

/// `camkit compare`: several CAM methods side by side on one photo, as one captioned grid image
/// (rows: classes; columns: the photo, then one overlay per method), like the comparison figures of
/// pytorch-grad-cam's README. The work is ``CAMKit/ImageClassifier/compareMethods(_:on:categories:targetLayers:options:preprocessing:)``
/// and ``CAMKit/MethodComparison/render(_:)``.
struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Compare CAM methods side by side: one captioned grid image (rows: classes; columns: the photo, then each method).",
        discussion: """
            Methods: \(CAMMethodName.all.joined(separator: ", ")) (case and punctuation do not matter).
            Each tile is captioned with the method, the class index and name, and the class probability.

            Example: camkit compare Samples/cat-and-coffee.jpg --methods gradcam,gradcam++,scorecam,eigencam --target-category 285 967
            """)

    @Argument(help: "The photo (PNG or JPEG).")
    var image: String

    @OptionGroup var modelOptions: ModelOptions

    @OptionGroup(title: "CAM") var cam: CAMArguments

    @Option(name: .long, parsing: .upToNextOption,
            help: ArgumentHelp("CAM methods, comma- or space-separated, one column each.", valueName: "a,b,c"))
    var methods: [String] = ["gradcam,gradcam++,xgradcam,eigencam,layercam"]








    @Option(name: .long, help: "Colormap: \(Colormap.allCases.map(\.rawValue).joined(separator: ", ")).")
    var colormap: String = "jet"

    @Option(name: .customLong("image-weight"), help: "Weight of the photo in the overlay (pytorch-grad-cam's image_weight), 0-1.")
    var imageWeight: Float = 0.5

    @Flag(name: .customLong("on-input"), help: "Draw on the model-input crop instead of the full photo.")
    var onInput = false

    @Option(name: .customLong("tile-size"), help: "Longer side of each tile in pixels (16-4096).")
    var tileSize: Int = 224

    @Option(name: .customLong("font-size"), help: "Caption font size in pixels (6-200).")
    var fontSize: Int = 13

    @Option(name: .customLong("save-path"), help: "Output image (.png or .jpg); default: <photo>-compare.png beside the photo.")
    var savePath: String?

    @Flag(name: .long, help: "Print one JSON object describing the grid on stdout.")
    var json = false

    /// The method names, split at commas.
    var methodNames: [String] {
        methods.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    func validate() throws {
        if methodNames.isEmpty { throw ValidationError("give at least one method, e.g. --methods gradcam,eigencam") }
        if !(0...1).contains(imageWeight) { throw ValidationError("--image-weight must lie in [0, 1]") }
        if !(16...4096).contains(tileSize) { throw ValidationError("--tile-size must lie in 16...4096") }
        if !(6...200).contains(fontSize) { throw ValidationError("--font-size must lie in 6...200") }
    }

    func run() throws {
        try reportingErrors { try compare() }
    }

    private func compare() throws {
        let started = DispatchTime.now()
        // Everything a user can get wrong without the model is checked first.
        let camMethods = try methodNames.map { try cam.method(named: $0) }
        guard let palette = Colormap(rawValue: colormap.lowercased()) else {
            throw CLIError.usage("unknown colormap '\(colormap)'; valid colormaps: \(Colormap.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let output = outputURL()
        try checkWritableDirectory(of: output)
        let overrides = try modelOptions.overrides()

        let photo = try RGBImage(contentsOf: URL(fileURLWithPath: image), options: modelOptions.decoding)
        let classifier = try modelOptions.load()
        let preprocessing = try classifier.preprocessing(with: overrides)
        let comparison = try classifier.compareMethods(camMethods, on: photo, categories: cam.targetCategory,
                                                       targetLayers: cam.targetLayers, options: cam.options,
                                                       preprocessing: preprocessing)
        let style = MethodComparison.Style(onInput: onInput, colormap: palette, imageWeight: imageWeight,
                                           tileSize: tileSize, fontSize: fontSize)
        let grid: RGBImage
        do {
            grid = try comparison.render(style)
        } catch let e as ComparisonError {
            throw CLIError.usage(e.description)
        }
        try grid.write(to: output)
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e6

        for cell in comparison.cells.joined() {
            for warning in cell.warnings { StandardError.write("camkit: warning: \(cell.method), class \(cell.classIndex): \(warning)\n") }
        }
        if json {
            let tile = comparison.tileSize(for: style)
            let record: [String: Any] = [
                "input": image,
                "output": output.path,
                "width": grid.width, "height": grid.height,
                "tile": ["width": tile.width, "height": tile.height],
                "on_input": onInput,
                "columns": ["photo"] + comparison.methods,
                "rows": comparison.cells.map { row in
                    ["class": row.first?.classIndex ?? 0, "label": row.first?.label ?? "",
                     "probability": row.first?.probability ?? 0]
                },
                "cells": comparison.cells.enumerated().flatMap { r, row in
                    row.enumerated().map { c, cell in
                        ["row": r, "column": c + 1, "method": cell.method, "class": cell.classIndex, "label": cell.label,
                         "probability": cell.probability, "layers": cell.layers.map(\.name)] as [String: Any]
                    }
                },
                "predictions": comparison.predictions.map {
                    ["index": $0.index, "label": $0.label, "logit": $0.logit, "probability": $0.probability]
                },
                "timings_ms": ["total": elapsed],
            ]
            let data = try JSONSerialization.data(withJSONObject: record, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            let classes = comparison.cells.compactMap(\.first).map { "\($0.classIndex) '\($0.label)' p \(String(format: "%.4f", $0.probability))" }
            print("\(image): \(comparison.methods.joined(separator: ", ")) for \(classes.joined(separator: "; "))")
            print("  wrote \(output.path) (\(grid.width)×\(grid.height))")
        }
    }

    /// `--save-path`, or `<photo>-compare.png` beside the photo.
    private func outputURL() -> URL {
        if let savePath { return URL(fileURLWithPath: savePath) }
        let url = URL(fileURLWithPath: image)
        return url.deletingLastPathComponent()
            .appendingPathComponent(url.deletingPathExtension().lastPathComponent + "-compare.png")
    }

    /// Fails before any work when the output's folder is missing or not writable.
    private func checkWritableDirectory(of output: URL) throws {
        let folder = output.deletingLastPathComponent().path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue,
              FileManager.default.isWritableFile(atPath: folder) else {
            throw CLIError(description: "\(output.path): cannot write the grid: the folder \(folder) does not exist or is not writable; create it or choose another --save-path",
                           status: .cannotCreate)
        }
    }
}
