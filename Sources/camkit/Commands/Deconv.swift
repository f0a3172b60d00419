import ArgumentParser
import CAMKit
import Foundation

/// `camkit deconv`: the deconvnet reconstruction (Zeiler & Fergus 2014, "Visualizing and
/// Understanding Convolutional Networks", §2.1) of one channel's strongest activation, projected
/// back to the model-input pixels. The work is ``CAMKit/ImageClassifier/deconvnet(_:layer:channel:seed:)``,
/// ``CAMKit/DeconvnetResult/picture(image:layout:)`` (the paper's display: the signed
/// reconstruction min–max scaled to 0–255 over all three channels together) and
/// ``CAMKit/DeconvnetResult/heatmap(image:layout:reduction:sign:outlierPercent:colormap:)``
/// (Captum-style |Σ_c| with the 99th-percentile clip).
struct Deconv: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deconv",
        abstract: "Project one channel's strongest activation back to pixels (Zeiler & Fergus deconvnet).",
        discussion: """
            The channel's strongest activation in the layer (the first maximum over the map) is kept,
            every other activation set to zero, and the result passed back to the input through the
            deconvnet: max-unpooling with the forward switches, ReLUs applied to the signal going
            back, transposed filters (Captum's NeuronDeconvolution). The picture is the
            reconstruction at model-input size, scaled to 0-255 over its three channels together.
            --seed activation (default) starts from the activation's value as the paper does; unit
            starts from 1 (Captum's gradient of the neuron); pictures are identical after scaling.
            --heatmap-path also writes |reconstruction| summed over channels as a heat map (clipped at
            the 99th percentile of the cumulative sum; Captum's visualize_image_attr uses the 98th).
            --panel writes the model-input crop, the reconstruction and the heat map side by side.

            Example: camkit deconv Samples/cat.jpg --target-layers _blocks.5 --channel 12

            \(ExitStatus.helpText)
            """)

    @Argument(help: "The photo (PNG or JPEG).")
    var image: String

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .customLong("target-layers"), help: "The layer (module path such as _blocks.5, node or tensor name).")
    var targetLayers: String

    @Option(name: .long, help: "The channel of the layer to reconstruct (0-based; see `camkit features` for strong ones).")
    var channel: Int

    @Option(name: .long, help: "What the chosen activation starts as: activation (its value, as Zeiler & Fergus) or unit (1, as Captum).")
    var seed: String = "activation"

    @Flag(name: .long, help: "Write the model-input crop, the reconstruction and its heat map side by side, captioned.")
    var panel = false

    @Option(name: .customLong("save-path"), help: "Output image (.png or .jpg); default: <photo>-deconv-<layer>-<channel>.png beside the photo.")
    var savePath: String?

    @Option(name: .customLong("heatmap-path"), help: "Also write the heat map of |reconstruction| here.")
    var heatmapPath: String?

    @Flag(name: .long, help: "Print one JSON object describing the result on stdout.")
    var json = false

    func validate() throws {
        if channel < 0 { throw ValidationError("--channel must not be negative (channels are numbered from 0)") }
    }

    func run() throws {
        try reportingErrors { try deconv() }
    }

    private func deconv() throws {
        let started = DispatchTime.now()
        let seedKind: DeconvnetReconstruction.Seed
        switch seed.lowercased() {
        case "activation": seedKind = .activation
        case "unit": seedKind = .unit
        default: throw CLIError.usage("unknown --seed '\(seed)'; valid values: activation, unit")
        }
        let output = outputURL()
        let heatmapOutput = heatmapPath.map { URL(fileURLWithPath: $0) }
        for url in [output] + (heatmapOutput.map { [$0] } ?? []) {
            try OutputPaths.checkWritable(directory: url.deletingLastPathComponent().path, for: url.path,
                                          flag: url == output ? "--save-path" : "--heatmap-path")
        }
        let overrides = try modelOptions.overrides()
        let font = panel ? try Font.default(pixelHeight: 13) : nil

        let photo = try RGBImage(contentsOf: URL(fileURLWithPath: image), options: modelOptions.decoding)
        let classifier = try modelOptions.load()
        let preprocessing = try classifier.preprocessing(with: overrides)
        let prepared = preprocessing(photo)
        let result = try classifier.deconvnet(prepared.tensor, layer: targetLayers, channel: channel, seed: seedKind)
        let picture = try result.picture(layout: preprocessing.layout)
        let heat = try result.heatmap(layout: preprocessing.layout)

        let written: RGBImage
        if let font {
            let tiles = CaptionedTiles(tiles: [prepared.inputImage, picture, heat],
                                       captions: ["input", "\(targetLayers) #\(channel)", "|reconstruction|"])
            written = tiles.grid(captionFont: font, columns: 3)
        } else {
            written = picture
        }
        // The optional heat map first: if the main output then fails, the run still reports it.
        if let heatmapOutput { try heat.write(to: heatmapOutput) }
        try written.write(to: output)
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e6

        let position = result.positions.first ?? FeaturePosition(row: 0, column: 0)
        let activation = result.activations.first ?? 0
        if json {
            var record: [String: Any] = [
                "input": image,
                "output": output.path,
                "width": written.width, "height": written.height,
                "layer": targetLayers,
                "tensor": result.layer.tensor,
                "layer_shape": result.layer.shape,
                "channel": channel,
                "seed": seed.lowercased(),
                "position": ["row": position.row, "column": position.column],
                "activation": activation,
                "panel": panel,
                "timings_ms": ["total": elapsed],
            ]
            if let heatmapOutput { record["heatmap"] = heatmapOutput.path }
            let data = try JSONSerialization.data(withJSONObject: record, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print("\(image): layer \(targetLayers) \(result.layer.shape), channel \(channel) peaks at (row \(position.row), column \(position.column)) with \(Features.format(activation))")
            print("  wrote \(output.path) (\(written.width)×\(written.height))")
            if let heatmapOutput { print("  wrote \(heatmapOutput.path) (\(heat.width)×\(heat.height))") }
        }
    }

    /// `--save-path`, or `<photo>-deconv-<layer>-<channel>.png` beside the photo.
    private func outputURL() -> URL {
        if let savePath { return URL(fileURLWithPath: savePath) }
        let url = URL(fileURLWithPath: image)
        let layer = String(targetLayers.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "_" || $0 == "-" ? $0 : "_" })
        return url.deletingLastPathComponent()
            .appendingPathComponent(url.deletingPathExtension().lastPathComponent + "-deconv-\(layer)-\(channel).png")
    }
}
