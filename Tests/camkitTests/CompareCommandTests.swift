import Foundation
import Testing

/// `camkit compare` through the built executable: help text, the grid written, errors and exit statuses
/// (sysexits: 64 usage, 66 no input, 73 cannot create; see Sources/camkit/Support/ExitStatus.swift).
@Suite struct CompareCommandTests: CommandLineSuite {
    /// The photo used throughout: 450×300 (Samples/README.md).
    static let photo = "Samples/cat-and-coffee.jpg"

    // Layout constants of the grid, from their sources:
    /// Default tile size: the photo's longer side (450) scaled to 224, so 300 → round(149.33) = 149.
    static let tileWidth = 224, tileHeight = 149
    /// DejaVu Sans at the default 13 px: ascent 13 + descent 4 (FreeType's scaled metrics, as
    /// Pillow's `getmetrics()` reports them; Tests/ImagingTests/Fixtures/text/manifest.json).
    static let lineHeight = 17
    /// Every caption has two lines plus 4 px of padding above and below; cells are 8 px apart.
    static let captionHeight = 2 * lineHeight + 2 * 4, gap = 8

    @Test func helpTextListsTheOptionsAndMethods() throws {
        let run = try camkit(["compare", "--help"])
        #expect(run.status == 0)
        for flag in ["--methods", "--target-category", "--target-layers", "--aug-smooth", "--eigen-smooth",
                     "--colormap", "--image-weight", "--on-input", "--save-path", "--json", "--tile-size", "--model"] {
            #expect(run.stdout.contains(flag), "help lacks \(flag)")
        }
        #expect(run.stdout.contains("gradcam, gradcam++, xgradcam, eigencam"))
        let top = try camkit(["--help"])
        #expect(top.stdout.contains("compare"))
    }

    // 2 methods × 2 categories: 2 rows of (photo, GradCAM, EigenCAM).
    @Test func gridOfTwoMethodsAndTwoCategories() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let output = dir.appendingPathComponent("grid.png")
        let run = try camkit(["compare", Self.photo, "--methods", "gradcam,eigencam", "--target-category", "285", "967",
                              "--save-path", output.path, "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        let size = try pngSize(output)
        #expect(size.width == 3 * Self.tileWidth + 4 * Self.gap)
        #expect(size.height == 2 * (Self.tileHeight + Self.captionHeight) + 3 * Self.gap)

        let record = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        #expect(record["width"] as? Int == size.width && record["height"] as? Int == size.height)
        #expect(record["output"] as? String == output.path)
        #expect(record["columns"] as? [String] == ["photo", "GradCAM", "EigenCAM"])
        let rows = try #require(record["rows"] as? [[String: Any]])
        #expect(rows.map { $0["class"] as? Int } == [285, 967])
        #expect(rows.map { $0["label"] as? String } == ["Egyptian cat", "espresso"])
        // Probabilities against ONNX Runtime's (Samples/cat-and-coffee.expected.json).
        let expected = try #require(try JSONSerialization.jsonObject(
            with: Data(contentsOf: Self.root.appendingPathComponent("Samples/cat-and-coffee.expected.json"))) as? [String: Any])
        let top5 = try #require(expected["top5"] as? [[String: Any]])
        for row in rows {
            let reference = try #require(top5.first { $0["index"] as? Int == row["class"] as? Int }?["probability"] as? Double)
            let p = try #require(row["probability"] as? Double)
            #expect(abs(p - reference) <= 1e-4 * reference, "class \(row["class"] ?? "?"): \(p) vs \(reference)")
        }
        let cells = try #require(record["cells"] as? [[String: Any]])
        #expect(cells.count == 4)
        #expect(cells.allSatisfy { ($0["layers"] as? [String])?.isEmpty == false })
    }

    // --on-input: tiles are the 224×224 model input; no --target-category: one row, the top class.
    @Test func onInputWithTheTopPrediction() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let output = dir.appendingPathComponent("input-grid.png")
        let run = try camkit(["compare", Self.photo, "--methods", "gradcam", "--on-input", "--save-path", output.path, "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        let size = try pngSize(output)
        #expect(size.width == 2 * 224 + 3 * Self.gap)
        #expect(size.height == 224 + Self.captionHeight + 2 * Self.gap)
        let record = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        #expect((record["rows"] as? [[String: Any]])?.map { $0["class"] as? Int } == [285])
    }

    @Test func unknownMethodListsTheValidOnesAndWritesNothing() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let output = dir.appendingPathComponent("grid.png")
        let run = try camkit(["compare", Self.photo, "--methods", "gradcam,foocam", "--save-path", output.path])
        #expect(run.status == 64)
        #expect(run.errorLines.count == 1)
        #expect(run.stderr.contains("unknown method 'foocam'"))
        #expect(run.stderr.contains("gradcam, gradcam++, xgradcam, eigencam"))
        #expect(!FileManager.default.fileExists(atPath: output.path))
        #expect((try FileManager.default.contentsOfDirectory(atPath: dir.path)).isEmpty)
    }

    @Test func badInputsExitNonZeroWithOneLine() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let output = dir.appendingPathComponent("grid.png").path
        let cases: [([String], Int32, String)] = [
            (["compare", "no/such/photo.jpg", "--methods", "gradcam", "--save-path", output], 66, "no/such/photo.jpg"),
            (["compare", Self.photo, "--methods", "gradcam", "--colormap", "rainbow", "--save-path", output], 64, "rainbow"),
            (["compare", Self.photo, "--methods", "gradcam", "--target-category", "5000", "--save-path", output], 64, "5000"),
            (["compare", Self.photo, "--methods", "gradcam", "--save-path", dir.path + "/missing/grid.png"], 73, "missing"),
        ]
        for (arguments, status, mention) in cases {
            let run = try camkit(arguments)
            #expect(run.status == status, "\(arguments): \(run.stderr)")
            #expect(run.errorLines.count == 1 && run.stderr.contains(mention), "\(arguments): \(run.stderr)")
        }
        // ArgumentParser's own validation: usage status, one error line plus its usage hint.
        let invalid = try camkit(["compare", Self.photo, "--image-weight", "2"])
        #expect(invalid.status == 64 && invalid.stderr.contains("--image-weight"))
        #expect(!FileManager.default.fileExists(atPath: output))
    }
}

