import Foundation
import Testing

/// `camkit features`, `camkit kernels` and `camkit deconv` through the built executable: help text,
/// the images written (their sizes follow from the layout formulas below), and each bad input's
/// exit status (sysexits: 64 usage, 66 no input, 73 cannot create; Sources/camkit/Support/ExitStatus.swift),
/// one stderr line and nothing written. The numbers themselves (channel order, kernel scaling,
/// the reconstruction) are checked against PyTorch/Captum in Tests/ExplainTests/FeatureVisualizationTests.swift.
///
/// The process-running helper is a private copy of the one in CompareCommandTests.swift.
@Suite struct FeatureCommandTests: CommandLineSuite {

    static let photo = "Samples/cat.jpg"

    // Layout constants, from their sources:
    /// `CaptionedTiles.grid` separates and surrounds cells with 4 px (Sources/Imaging/AttributionRendering.swift).
    static let gap = 4
    /// A caption band is the font's line height plus 2 px above and below; DejaVu Sans line heights
    /// (ascent + descent, as Pillow's `getmetrics()`; Tests/ImagingTests/Fixtures/text/manifest.json):
    /// 9 px → 9 + 3, 13 px → 13 + 4; 10 px → 10 + 3 (Pillow 13's `getmetrics()` for the same file,
    /// i.e. ⌈1901/2048 · 10⌉ + ⌈483/2048 · 10⌉ from the font's ascender and descender).
    static let band9 = 12 + 4, band10 = 13 + 4, band13 = 17 + 4
    /// The bundled EfficientNet-Lite0 (Models/efficientnet-lite0.onnx): the stem conv `_conv_stem`
    /// has weights (32, 3, 3, 3); `_blocks.5` (the first 80-channel block, stride 2) outputs
    /// (1, 80, 14, 14) at 224×224; `_blocks.1._depthwise_conv` has weights (96, 1, 3, 3).
    static let stemKernels = 32, blocks5Shape = [1, 80, 14, 14]

    /// The size of a grid of `count` equal cells, `columns` per row.
    static func grid(count: Int, columns: Int, cell: (width: Int, height: Int)) -> (width: Int, height: Int) {
        let cols = min(columns, count), rows = (count + cols - 1) / cols
        return (cols * cell.width + (cols + 1) * gap, rows * cell.height + (rows + 1) * gap)
    }

    @Test func helpTexts() throws {
        let expected: [String: [String]] = [
            "features": ["--target-layers", "--top", "--tile-size", "--colormap", "--columns", "--save-path", "--json",
                         "default CAM layer", "Exit status"],
            "kernels": ["--target-layers", "--output-channels", "--normalization", "--scale", "--save-path", "--json",
                        "per-kernel", "per-tile", "RGB"],
            "deconv": ["--target-layers", "--channel", "--seed", "--save-path", "--heatmap-path", "--panel", "--json",
                       "Zeiler"],
        ]
        for (command, words) in expected {
            let run = try camkit([command, "--help"])
            #expect(run.status == 0)
            for word in words { #expect(run.stdout.contains(word), "\(command) --help lacks \(word)") }
        }
        let top = try camkit(["--help"])
        for command in expected.keys { #expect(top.stdout.contains(command)) }
    }

    // The stem's 32 kernels of 3×3 at 8 px per weight: 24×24 RGB tiles in a 6×6 grid (⌈√32⌉ = 6).
    @Test func kernelsOfTheFirstConvolution() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let plain = dir.appendingPathComponent("plain.png"), captioned = dir.appendingPathComponent("captioned.png")
        let run = try camkit(["kernels", "--no-captions", "--save-path", plain.path, "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        let record = try run.record()
        #expect(record["weights_shape"] as? [Int] == [Self.stemKernels, 3, 3, 3])
        #expect(record["rgb"] as? Bool == true)
        #expect(record["node"] as? String == "/_conv_stem/Conv")
        #expect(record["output_channels"] as? [Int] == Array(0..<Self.stemKernels))
        let size = try pngSize(plain)
        let expected = Self.grid(count: 32, columns: 6, cell: (24, 24))
        #expect(size == expected && expected == (172, 172))

        let labelled = try camkit(["kernels", "--save-path", captioned.path])
        #expect(labelled.status == 0, "\(labelled.stderr)")
        #expect(try pngSize(captioned) == Self.grid(count: 32, columns: 6, cell: (24, 24 + Self.band9)))
    }

    // A depthwise conv (one input channel per kernel): 6 grey tiles of 3×3 at 4 px per weight,
    // ⌈√6⌉ = 3 per row.
    @Test func greyKernelsOfADeeperConvolution() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let output = dir.appendingPathComponent("deep.png")
        let run = try camkit(["kernels", "--target-layers", "_blocks.1._depthwise_conv", "--output-channels", "4:10",
                              "--normalization", "per-tile", "--scale", "4", "--no-captions",
                              "--save-path", output.path, "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        let record = try run.record()
        #expect(record["weights_shape"] as? [Int] == [96, 1, 3, 3])
        #expect(record["rgb"] as? Bool == false)
        #expect(record["output_channels"] as? [Int] == Array(4..<10))
        #expect(record["normalization"] as? String == "per-tile")

        // 1×1 kernels over 320 input channels: by default as many kernels as fit in 1024 tiles
        // (3 × 320 = 960), wrapped at 64 per row.
        let head = dir.appendingPathComponent("head.png")
        let wide = try camkit(["kernels", "--target-layers", "_conv_head", "--scale", "2", "--no-captions",
                               "--save-path", head.path, "--json"])
        #expect(wide.status == 0, "\(wide.stderr)")
        let headRecord = try wide.record()
        #expect(headRecord["weights_shape"] as? [Int] == [1280, 320, 1, 1])
        #expect(headRecord["output_channels"] as? [Int] == [0, 1, 2])
        #expect(try pngSize(head) == Self.grid(count: 960, columns: 64, cell: (2, 2)))
        #expect(try pngSize(output) == Self.grid(count: 6, columns: 3, cell: (12, 12)))
    }

    // _blocks.5 on the cat: 16 channels of 14×14 enlarged to 56×56, 4 per row, captions at 10 px.
    @Test func featureMapsOfAMidLevelBlock() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let output = dir.appendingPathComponent("features.png")
        let run = try camkit(["features", Self.photo, "--target-layers", "_blocks.5", "--save-path", output.path, "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(try pngSize(output) == Self.grid(count: 16, columns: 4, cell: (56, 56 + Self.band10)))
        let record = try run.record()
        #expect(record["layer_shape"] as? [Int] == Self.blocks5Shape)
        let channels = try #require(record["channels"] as? [[String: Any]])
        #expect(channels.count == 16)
        let indices = channels.compactMap { $0["channel"] as? Int }
        let means = channels.compactMap { $0["mean"] as? Double }
        #expect(Set(indices).count == 16 && indices.allSatisfy { (0..<80).contains($0) })
        #expect(zip(means, means.dropFirst()).allSatisfy { $0 >= $1 }, "means not in descending order: \(means)")

        // --columns and --top change the layout only.
        let wide = dir.appendingPathComponent("wide.png")
        let second = try camkit(["features", Self.photo, "--target-layers", "_blocks.5", "--top", "6", "--columns", "6",
                                 "--tile-size", "32", "--no-captions", "--save-path", wide.path])
        #expect(second.status == 0, "\(second.stderr)")
        #expect(try pngSize(wide) == Self.grid(count: 6, columns: 6, cell: (32, 32)))
    }

    // Without --target-layers: the default CAM layer (Lite0: the 7×7×1280 map before pooling).
    @Test func featureMapsOfTheDefaultLayer() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let output = dir.appendingPathComponent("default.png")
        let run = try camkit(["features", Self.photo, "--top", "4", "--save-path", output.path, "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        let record = try run.record()
        #expect(record["layer_shape"] as? [Int] == [1, 1280, 7, 7])
        #expect(try pngSize(output) == Self.grid(count: 4, columns: 2, cell: (56, 56 + Self.band10)))
    }

    @Test func deconvPictureHeatmapAndPanel() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let picture = dir.appendingPathComponent("deconv.png"), heat = dir.appendingPathComponent("heat.png")
        let run = try camkit(["deconv", Self.photo, "--target-layers", "_blocks.5", "--channel", "3",
                              "--save-path", picture.path, "--heatmap-path", heat.path, "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(try pngSize(picture) == (224, 224))
        #expect(try pngSize(heat) == (224, 224))
        let record = try run.record()
        #expect(record["layer_shape"] as? [Int] == Self.blocks5Shape)
        let position = try #require(record["position"] as? [String: Int])
        #expect((0..<14).contains(position["row"] ?? -1) && (0..<14).contains(position["column"] ?? -1))

        let panel = dir.appendingPathComponent("panel.png")
        let second = try camkit(["deconv", Self.photo, "--target-layers", "_blocks.5", "--channel", "3", "--seed", "unit",
                                 "--panel", "--save-path", panel.path])
        #expect(second.status == 0, "\(second.stderr)")
        #expect(try pngSize(panel) == Self.grid(count: 3, columns: 3, cell: (224, 224 + Self.band13)))
    }

    @Test func badInputsExitNonZeroWithOneLineAndWriteNothing() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let output = dir.appendingPathComponent("out.png").path
        let cases: [([String], Int32, String)] = [
            // Unknown layer: usage, with the closest names.
            (["features", Self.photo, "--target-layers", "_blocks.55", "--save-path", output], 64, "unknown layer '_blocks.55'"),
            (["deconv", Self.photo, "--target-layers", "_blok.5", "--channel", "0", "--save-path", output], 64, "_blocks.5"),
            // A layer without convolution kernels (the classifier's Gemm).
            (["kernels", "--target-layers", "_fc", "--save-path", output], 64, "no convolution kernels"),
            // Channels out of range.
            (["kernels", "--output-channels", "30:40", "--save-path", output], 64, "channel 39 is out of range"),
            (["kernels", "--target-layers", "_blocks.1._depthwise_conv", "--output-channels", "96", "--save-path", output],
             64, "channel 96 is out of range"),
            (["deconv", Self.photo, "--target-layers", "_blocks.5", "--channel", "80", "--save-path", output],
             64, "channel 80 is out of range"),
            // Malformed values.
            (["kernels", "--output-channels", "8:4", "--save-path", output], 64, "--output-channels '8:4'"),
            (["kernels", "--normalization", "global", "--save-path", output], 64, "per-kernel, per-tile"),
            (["features", Self.photo, "--colormap", "rainbow", "--save-path", output], 64, "rainbow"),
            (["deconv", Self.photo, "--target-layers", "_blocks.5", "--channel", "0", "--seed", "random", "--save-path", output],
             64, "activation, unit"),
            // Missing photo, missing output folder.
            (["features", "no/such/photo.jpg", "--save-path", output], 66, "no/such/photo.jpg"),
            (["deconv", "no/such/photo.jpg", "--target-layers", "_blocks.5", "--channel", "0", "--save-path", output],
             66, "no/such/photo.jpg"),
            (["kernels", "--save-path", dir.path + "/missing/k.png"], 73, "missing"),
        ]
        for (arguments, status, mention) in cases {
            let run = try camkit(arguments)
            #expect(run.status == status, "\(arguments): \(run.stderr)")
            #expect(run.errorLines.count == 1 && run.stderr.contains(mention), "\(arguments): \(run.stderr)")
            #expect(run.stdout.isEmpty, "\(arguments): \(run.stdout)")
        }
        // ArgumentParser's own validation: usage status, the message plus its usage hint.
        let negative = try camkit(["deconv", Self.photo, "--target-layers", "_blocks.5", "--channel", "-1", "--save-path", output])
        #expect(negative.status == 64 && negative.stderr.contains("--channel"))
        #expect((try FileManager.default.contentsOfDirectory(atPath: dir.path)).isEmpty)
    }
}

