import ArgumentParser
import CAMKit
import Foundation

/// `camkit features`: the activation maps of one layer for one photo, as a captioned grid — the
/// channels with the largest mean activation, strongest first, each min–max normalised on its own,
/// enlarged and colour-mapped (Zeiler & Fergus 2014, §4; the feature-map grids of the Keras and
/// PyTorch tutorials). The work is ``CAMKit/ImageClassifier/featureMaps(_:layer:top:image:)`` and
/// ``CAMKit/FeatureMapSelection/tiles(size:colormap:)``; this file only parses, calls and reports.
///
/// Without `--target-layers` the layer is the model's default CAM target layer
/// (``Explain/DefaultTargetLayer``: for a CNN the feature map that feeds global pooling), so that
/// `camkit features photo.jpg` shows the maps the CAM methods weigh; the layer used is printed.
struct Features: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "features",
        abstract: "Show a layer's activation maps for a photo: the top channels by mean activation as a captioned grid.",
        discussion: """
            Channels are ordered by their mean activation over the map (strongest first, ties by
            channel number); each map is min-max scaled on its own (its pattern, not its strength:
            compare strengths with the mean in the caption or in --json), enlarged bilinearly to
            --tile-size and colour-mapped. Each tile is captioned '#<channel> <mean>'.
            Without --target-layers the model's default CAM layer is shown (for CNNs the feature map
            before global pooling); list the layer names with `camkit layers`.

            Example: camkit features Samples/cat.jpg --target-layers _blocks.5 --top 16

            \(ExitStatus.helpText)
            """)

    @Argument(help: "The photo (PNG or JPEG).")
    var image: String

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .customLong("target-layers"),
            help: "The layer to show (module path such as _blocks.5, node or tensor name); default: the model's default CAM layer.")
    var targetLayers: String?

    @Option(name: .long, help: "How many channels to show, strongest first (fewer if the layer has fewer).")
    var top: Int = 16

    @Option(name: .customLong("tile-size"), help: "Tile side in pixels: each map is enlarged to this size (8-1024).")
    var tileSize: Int = 56

    @Option(name: .long, help: "Colormap: \(Colormap.allCases.map(\.rawValue).joined(separator: ", ")).")
    var colormap: String = "viridis"

    @Option(name: .long, help: "Tiles per row (default: the smallest square that holds them all).")
    var columns: Int?

    @Option(name: .customLong("font-size"), help: "Caption font size in pixels (6-200).")
    var fontSize: Int = 10

    @Flag(name: .customLong("no-captions"), help: "Leave out the captions (plain tiles).")
    var noCaptions = false

    @Option(name: .customLong("save-path"), help: "Output image (.png or .jpg); default: <photo>-features.png beside the photo.")
    var savePath: String?

    @Flag(name: .long, help: "Print one JSON object describing the grid on stdout.")
    var json = false

    func validate() throws {
        if top < 1 { throw ValidationError("--top must be at least 1") }
        if !(8...1024).contains(tileSize) { throw ValidationError("--tile-size must lie in 8...1024") }
        if let columns, columns < 1 { throw ValidationError("--columns must be at least 1") }
        if !(6...200).contains(fontSize) { throw ValidationError("--font-size must lie in 6...200") }
    }

    func run() throws {
        try reportingErrors { try features() }
    }

    private func features() throws {
        let started = DispatchTime.now()
        // Usage errors first (64), then the output folder (73), then the photo (65/66), the model and
        // the layer (64); nothing is written unless everything succeeded.
        guard let palette = Colormap(rawValue: colormap.lowercased()) else {
            throw CLIError.usage("unknown colormap '\(colormap)'; valid colormaps: \(Colormap.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let output = outputURL()
        try OutputPaths.checkWritable(directory: output.deletingLastPathComponent().path, for: output.path, flag: "--save-path")
        let overrides = try modelOptions.overrides()
        let font = noCaptions ? nil : try Font.default(pixelHeight: fontSize)

        let photo = try RGBImage(contentsOf: URL(fileURLWithPath: image), options: modelOptions.decoding)
        let classifier = try modelOptions.load()
        let preprocessing = try classifier.preprocessing(with: overrides)
        let input = preprocessing(photo).tensor

        let layer: (resolve: String, display: String)
        if let targetLayers {
            layer = (targetLayers, targetLayers)
        } else {
            let plan = try classifier.graph.plan(forInputShapes: [input.shape])
            let found = try DefaultTargetLayer.find(in: classifier.graph, plan: plan)
            layer = (found.tensor, found.name)
        }
        let selection = try classifier.featureMaps(input, layer: layer.resolve, top: top)
        var tiles = try selection.tiles(size: (tileSize, tileSize), colormap: palette)
        tiles.captions = zip(selection.channels, selection.meanActivations).map { "#\($0) \(Self.format($1))" }
        let grid = font.map { tiles.grid(captionFont: $0, columns: columns) } ?? tiles.grid(columns: columns)
        try grid.write(to: output)
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e6

        let mapShape = selection.maps.shape
        if json {
            let record: [String: Any] = [
                "input": image,
                "output": output.path,
                "width": grid.width, "height": grid.height,
                "layer": layer.display,
                "tensor": selection.layer.tensor,
                "layer_shape": selection.layer.shape,
                "map": ["height": mapShape[1], "width": mapShape[2]],
                "tile": ["height": tileSize, "width": tileSize],
                "columns": min(columns ?? Self.squareColumns(selection.channels.count), selection.channels.count),
                "colormap": palette.rawValue,
                "channels": zip(selection.channels, selection.meanActivations).map { ["channel": $0, "mean": $1] as [String: Any] },
                "timings_ms": ["total": elapsed],
            ]
            let data = try JSONSerialization.data(withJSONObject: record, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print("\(image): layer \(layer.display) \(selection.layer.shape), top \(selection.channels.count) channels by mean activation: "
                  + selection.channels.map { "#\($0)" }.joined(separator: " "))
            print("  wrote \(output.path) (\(grid.width)×\(grid.height))")
        }
    }

    /// A mean activation in 3 significant digits.
    static func format(_ value: Float) -> String { String(format: "%.3g", Double(value)) }

    /// The default column count of ``CAMKit/CaptionedTiles/grid(columns:padding:background:)``.
    static func squareColumns(_ count: Int) -> Int { max(1, Int(Double(count).squareRoot().rounded(.up))) }

    /// `--save-path`, or `<photo>-features.png` beside the photo.
    private func outputURL() -> URL {
        if let savePath { return URL(fileURLWithPath: savePath) }
        let url = URL(fileURLWithPath: image)
        return url.deletingLastPathComponent()
            .appendingPathComponent(url.deletingPathExtension().lastPathComponent + "-features.png")
    }
}
