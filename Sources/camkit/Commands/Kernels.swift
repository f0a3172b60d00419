import ArgumentParser
import CAMKit
import Foundation

/// `camkit kernels`: a convolution's kernels as images — the first convolution's (O, 3, kH, kW)
/// filters as RGB tiles (Krizhevsky et al. 2012, fig. 3; Zeiler & Fergus 2014, fig. 5), deeper
/// ones as one grey tile per input channel. The work is ``CAMKit/ImageClassifier/convKernels(layer:)``,
/// ``Explain/ConvKernels/rgbTiles()``, ``Explain/ConvKernels/greyTiles(outputChannels:normalization:)``
/// and ``CAMKit/KernelTiles/images(scale:)``.
///
/// Layout (unless `--columns` is given): about square, with whole kernels per row — a kernel's grey
/// tiles (one per input channel) side by side; kernels over 64 or more input channels wrap at 64.
struct Kernels: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels",
        abstract: "Show a convolution's kernels: the first conv as RGB tiles, deeper convs as grey tiles per input channel.",
        discussion: """
            Without --target-layers the model's first convolution is shown. A layer that is an
            activation or normalisation after a Conv (e.g. a ReLU module) shows that Conv's kernels.
            Kernels over 3 input channels are drawn as one RGB tile each (channel 0 red); others as
            one grey tile per input channel, captioned '#<kernel>/<input channel>'.
            Values are min-max scaled per kernel (default: tiles of one kernel stay comparable) or
            per tile (--normalization per-tile: every tile uses the full range; for RGB kernels a
            kernel is one tile, so the two are the same). The weights are those the model computes
            with (eval-mode BatchNorm folded in by the exporter).
            Grey tiles: without --output-channels, as many kernels from 0 as fit in \(Kernels.defaultTileBudget) tiles.

            Examples: camkit kernels
                      camkit kernels --target-layers _blocks.1._depthwise_conv --output-channels 0:32

            \(ExitStatus.helpText)
            """)

    /// How many grey tiles are drawn when no `--output-channels` is given.
    static let defaultTileBudget = 1024
    /// Grey tiles of one kernel per row before wrapping (default layout).
    static let maxGreyColumns = 64

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .customLong("target-layers"),
            help: "The convolution (module path, node or tensor name); default: the model's first Conv.")
    var targetLayers: String?

    @Option(name: .customLong("output-channels"),
            help: ArgumentHelp("Kernels to show, a:b half-open as in Python (0:8 is kernels 0-7), or one index a.", valueName: "a:b"))
    var outputChannels: String?

    @Option(name: .long, help: "Scaling to [0, 1]: per-kernel or per-tile.")
    var normalization: String = "per-kernel"

    @Option(name: .long, help: "Pixels per weight (nearest neighbour, 1-64).")
    var scale: Int = 8

    @Option(name: .long, help: "Tiles per row (default: about square, whole kernels per row, at most 64).")
    var columns: Int?

    @Option(name: .customLong("font-size"), help: "Caption font size in pixels (6-200).")
    var fontSize: Int = 9

    @Flag(name: .customLong("no-captions"), help: "Leave out the captions (plain tiles).")
    var noCaptions = false

    @Option(name: .customLong("save-path"), help: "Output image (.png or .jpg); default: <model>-kernels.png in the current directory.")
    var savePath: String?

    @Flag(name: .long, help: "Print one JSON object describing the grid on stdout.")
    var json = false

    func validate() throws {
        if !(1...64).contains(scale) { throw ValidationError("--scale must lie in 1...64") }
        if let columns, columns < 1 { throw ValidationError("--columns must be at least 1") }
        if !(6...200).contains(fontSize) { throw ValidationError("--font-size must lie in 6...200") }
    }

    func run() throws {
        try reportingErrors { try kernels() }
    }

    private func kernels() throws {
        let mode: KernelNormalization
        switch normalization.lowercased() {
        case "per-kernel", "perkernel", "kernel": mode = .perKernel
        case "per-tile", "pertile", "tile": mode = .perTile
        default: throw CLIError.usage("unknown --normalization '\(normalization)'; valid values: per-kernel, per-tile")
        }
        let range = try outputChannels.map(Self.parseRange)
        let output = outputURL()
        try OutputPaths.checkWritable(directory: output.deletingLastPathComponent().path, for: output.path, flag: "--save-path")
        let font = noCaptions ? nil : try Font.default(pixelHeight: fontSize)

        let classifier = try modelOptions.load()
        let kernels = try classifier.convKernels(layer: targetLayers)
        let rgb = kernels.inputChannelsPerKernel == 3
        var tiles: KernelTiles
        if rgb {
            tiles = try kernels.rgbTiles()
            if let range {
                try Self.check(range, kernels)
                tiles.tiles = tiles.tiles.sliced(starts: [range.lowerBound], ends: [range.upperBound], axes: [0])
                tiles.outputChannels = Array(range)
            }
        } else {
            let perKernel = kernels.inputChannelsPerKernel
            let fallback = 0..<max(1, min(kernels.outputChannels, Self.defaultTileBudget / max(1, perKernel)))
            tiles = try kernels.greyTiles(outputChannels: range ?? fallback, normalization: mode)
        }
        var images = try tiles.images(scale: scale)
        // One input channel per kernel (depthwise): '#5' says it all, '#5/0' would be cut short.
        if !rgb && kernels.inputChannelsPerKernel == 1 { images.captions = tiles.captions }
        let cols = columns ?? Self.defaultColumns(tiles: images.tiles.count, perKernel: rgb ? 1 : kernels.inputChannelsPerKernel)
        let grid = font.map { images.grid(captionFont: $0, columns: cols) } ?? images.grid(columns: cols)
        try grid.write(to: output)

        let shape = kernels.weights.shape
        let layerName = targetLayers ?? kernels.nodeName
        if json {
            let record: [String: Any] = [
                "output": output.path,
                "width": grid.width, "height": grid.height,
                "layer": layerName,
                "node": kernels.nodeName,
                "weights_shape": shape,
                "groups": kernels.groups,
                "rgb": rgb,
                "normalization": rgb || mode == .perKernel ? "per-kernel" : "per-tile",
                "output_channels": tiles.outputChannels,
                "tiles": images.tiles.count,
                "tile": ["height": shape[2] * scale, "width": shape[3] * scale],
                "columns": min(cols, images.tiles.count),
            ]
            let data = try JSONSerialization.data(withJSONObject: record, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            let kind = rgb ? "RGB tiles" : "grey tiles, \(kernels.inputChannelsPerKernel) per kernel"
            let shown = tiles.outputChannels.count == shape[0] ? "all \(shape[0]) kernels"
                : "kernels \(tiles.outputChannels.first ?? 0)...\(tiles.outputChannels.last ?? 0) of \(shape[0])"
            print("\(layerName) (Conv '\(kernels.nodeName)', weights \(shape)): \(shown) as \(kind)")
            print("  wrote \(output.path) (\(grid.width)×\(grid.height))")
        }
    }

    /// The default layout: about square, whole kernels per row (a kernel's `perKernel` grey tiles
    /// side by side), at most ``maxGreyColumns`` tiles per row (a wider kernel wraps).
    static func defaultColumns(tiles: Int, perKernel: Int) -> Int {
        guard perKernel < maxGreyColumns else { return maxGreyColumns }
        let square = min(Features.squareColumns(tiles), maxGreyColumns)
        return perKernel * max(1, square / perKernel)
    }

    /// `a:b` (half-open) or `a`.
    static func parseRange(_ text: String) throws -> Range<Int> {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            .map { Int($0.trimmingCharacters(in: .whitespaces)) }
        switch (parts.count, parts.first ?? nil, parts.last ?? nil) {
        case (1, let a?, _): return a..<(a + 1)
        case (2, let a?, let b?) where b > a: return a..<b
        default:
            throw CLIError.usage("invalid --output-channels '\(text)'; give a:b with a < b (half-open, as in Python: 0:8 is kernels 0-7) or one index")
        }
    }

    /// The range lies in the convolution's kernels.
    static func check(_ range: Range<Int>, _ kernels: ConvKernels) throws {
        for c in [range.lowerBound, range.upperBound - 1] where c < 0 || c >= kernels.outputChannels {
            throw ExplainError.channelOutOfRange(layer: kernels.layerName, channel: c, channelCount: kernels.outputChannels)
        }
    }

    /// `--save-path`, or `<model>-kernels.png` in the current directory.
    private func outputURL() -> URL {
        if let savePath { return URL(fileURLWithPath: savePath) }
        let model = modelOptions.model.map { URL(fileURLWithPath: $0).deletingPathExtension().lastPathComponent } ?? "efficientnet-lite0"
        return URL(fileURLWithPath: model + "-kernels.png")
    }
}
