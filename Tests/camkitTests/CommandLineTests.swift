import Foundation
import Testing

/// The `camkit` executable as users run it: help text, exit codes, error lines, outputs written.
///
/// Exit statuses are those of `<sysexits.h>` (see Sources/camkit/Support/ExitStatus.swift):
/// 64 usage, 65 data error, 66 no input, 73 cannot create.
@Suite struct CommandLineTests: CommandLineSuite {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    func files(in dir: URL) -> [String] {
        ((FileManager.default.enumerator(atPath: dir.path)?.allObjects as? [String]) ?? [])
            .filter { !$0.hasSuffix("/") && !isDirectory(dir.appendingPathComponent($0)) }.sorted()
    }

    func isDirectory(_ url: URL) -> Bool {
        var d: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &d) && d.boolValue
    }

    func copySample(_ name: String, to url: URL) throws {
        try FileManager.default.copyItem(at: Self.root.appendingPathComponent("Samples/\(name)"), to: url)
    }

    // MARK: Help

    @Test func helpListsSubcommandsMethodsFlagsAndExitStatuses() throws {
        let top = try camkit(["--help"])
        #expect(top.status == 0)
        for word in ["explain", "layers", "benchmark", "predict"] { #expect(top.stdout.contains(word)) }
        let explain = try camkit(["explain", "--help"])
        for flag in ["--target-layers", "--target-category", "--aug-smooth", "--eigen-smooth", "--vit-like",
                     "--num-extra-tokens", "--save-path", "--save-raw", "gradcam++", "scorecam", "--recursive",
                     "--jobs", "--quiet", "--preset", "--input-size", "--mean", "--std", "--resize", "--max-pixels",
                     "64  EX_USAGE", "65  EX_DATAERR", "66  EX_NOINPUT", "73  EX_CANTCREAT", "timings_ms"] {
            #expect(explain.stdout.contains(flag), "\(flag) missing from help")
        }
    }

    // MARK: Bad input: one line, the documented status, nothing written

    /// One bad invocation: arguments (with `$T` for the temporary directory), expected status, and
    /// words the stderr line must contain.
    struct BadCase: Sendable, CustomTestStringConvertible {
        var name: String
        var arguments: [String]
        var status: Int32
        var mentions: [String]
        var testDescription: String { name }
    }

    static let badCases: [BadCase] = [
        BadCase(name: "missing file", arguments: ["$T/no-such-photo.jpg"], status: 66, mentions: ["no-such-photo.jpg", "no such file"]),
        BadCase(name: "directory without images", arguments: ["$T/empty"], status: 66, mentions: ["empty", "no PNG or JPEG"]),
        BadCase(name: "glob without matches", arguments: ["$T/*.tiff"], status: 66, mentions: ["*.tiff", "no file matches"]),
        BadCase(name: "zero-byte image", arguments: ["$T/zero.jpg"], status: 65, mentions: ["zero.jpg", "empty"]),
        BadCase(name: "truncated JPEG", arguments: ["$T/truncated.jpg"], status: 65, mentions: ["truncated.jpg", "truncated"]),
        BadCase(name: "corrupt JPEG", arguments: ["$T/corrupt.jpg"], status: 65, mentions: ["corrupt.jpg", "corrupt"]),
        BadCase(name: "text file named .png", arguments: ["$T/text.png"], status: 65, mentions: ["text.png", "not an image"]),
        BadCase(name: "GIF", arguments: ["$T/tiny.gif"], status: 65, mentions: ["tiny.gif", "unsupported format"]),
        BadCase(name: "over the pixel limit", arguments: ["Samples/cat.jpg", "--max-pixels", "10000"], status: 65,
                mentions: ["cat.jpg", "451×300", "10000"]),
        BadCase(name: "unknown method", arguments: ["Samples/cat.jpg", "--method", "gradkam"], status: 64,
                mentions: ["unknown method 'gradkam'", "scorecam", "gradcam++"]),
        BadCase(name: "unknown layer", arguments: ["Samples/cat.jpg", "--target-layers", "_swish_9"], status: 64,
                mentions: ["unknown layer '_swish_9'", "did you mean"]),
        BadCase(name: "category out of range", arguments: ["Samples/cat.jpg", "--target-category", "5000"], status: 64,
                mentions: ["5000", "1000 classes"]),
        BadCase(name: "top-k over the class count", arguments: ["Samples/cat.jpg", "--top-k", "1001"], status: 64,
                mentions: ["--top-k 1001", "1000 classes"]),
        BadCase(name: "unknown preset", arguments: ["Samples/cat.jpg", "--preset", "keras"], status: 64,
                mentions: ["unknown preset 'keras'", "inception", "caffe"]),
        BadCase(name: "bad mean", arguments: ["Samples/cat.jpg", "--mean", "0.5,0.5"], status: 64, mentions: ["--mean", "3"]),
        BadCase(name: "missing model", arguments: ["Samples/cat.jpg", "--model", "$T/nope.onnx"], status: 66,
                mentions: ["nope.onnx", "not found"]),
        BadCase(name: "output directory missing", arguments: ["Samples/cat.jpg", "--save-path", "$T/missing/out.png"],
                status: 73, mentions: ["out.png", "does not exist"]),
        BadCase(name: "output under a file", arguments: ["Samples/cat.jpg", "--save-path", "$T/text.png/out.png"],
                status: 73, mentions: ["out.png", "not a directory"]),
        BadCase(name: "raw output directory missing", arguments: ["Samples/cat.jpg", "--save-path", "$T/out/", "--save-raw", "$T/missing/map.npy"],
                status: 73, mentions: ["map.npy", "does not exist"]),
    ]

    /// Writes the bad files into `dir`: zero bytes, a truncated and a corrupted copy of
    /// Samples/cat.jpg, text named .png, a GIF, and an empty directory.
    func writeBadFiles(into dir: URL) throws {
        let cat = try Data(contentsOf: Self.root.appendingPathComponent("Samples/cat.jpg"))
        try Data().write(to: dir.appendingPathComponent("zero.jpg"))
        try cat.prefix(cat.count / 2).write(to: dir.appendingPathComponent("truncated.jpg"))
        var corrupt = [UInt8](cat)
        // Overwrite the entropy-coded data after the headers with a marker the decoder rejects.
        if let sos = (0..<(corrupt.count - 1)).first(where: { corrupt[$0] == 0xFF && corrupt[$0 + 1] == 0xDA }) {
            for i in (sos + 2)..<min(corrupt.count, sos + 4) { corrupt[i] = 0xFF }
        }
        try Data(corrupt).write(to: dir.appendingPathComponent("corrupt.jpg"))
        try Data("just some text\n".utf8).write(to: dir.appendingPathComponent("text.png"))
        // The smallest GIF89a: 1×1, one black pixel.
        let gif: [UInt8] = [0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 1, 0, 1, 0, 0x80, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF,
                            0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x44, 0x01, 0, 0x3B]
        try Data(gif).write(to: dir.appendingPathComponent("tiny.gif"))
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("empty"), withIntermediateDirectories: true)
        try Data("not an image".utf8).write(to: dir.appendingPathComponent("empty/readme.txt"))
    }

    @Test(arguments: badCases)
    func badInputGivesOneLineTheDocumentedStatusAndWritesNothing(_ bad: BadCase) throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try writeBadFiles(into: dir)
        let out = dir.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let before = files(in: dir)
        var arguments = bad.arguments.map { $0.replacingOccurrences(of: "$T", with: dir.path) }
        if !arguments.contains("--save-path") { arguments += ["--save-path", out.path + "/"] }
        let run = try camkit(arguments)
        #expect(run.status == bad.status, "\(bad.name): status \(run.status), stderr: \(run.stderr)")
        #expect(run.errorLines.count == 1, "\(bad.name): stderr should be one line: \(run.stderr)")
        let line = String(run.errorLines.first ?? "")
        #expect(line.hasPrefix("camkit: "), "\(line)")
        for word in bad.mentions { #expect(line.contains(word), "\(bad.name): '\(word)' missing from: \(line)") }
        #expect(!run.stderr.contains("Fatal error") && !run.stderr.contains("Stack dump"))
        #expect(run.stdout.isEmpty, "\(bad.name): \(run.stdout)")
        #expect(files(in: dir) == before, "\(bad.name) wrote files")
    }

    // MARK: Batches

    @Test func batchSkipsAndCountsABadPhotoAndExplainsTheRest() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let photos = dir.appendingPathComponent("photos")
        try FileManager.default.createDirectory(at: photos, withIntermediateDirectories: true)
        try copySample("cat.jpg", to: photos.appendingPathComponent("a-cat.jpg"))
        try copySample("coffee.jpg", to: photos.appendingPathComponent("c-coffee.jpg"))
        let cat = try Data(contentsOf: Self.root.appendingPathComponent("Samples/cat.jpg"))
        try cat.prefix(5000).write(to: photos.appendingPathComponent("b-truncated.jpg"))
        let out = dir.appendingPathComponent("out")
        let run = try camkit([photos.path, "--save-path", out.path + "/", "--json", "--top-k", "3"])
        #expect(run.status == 65, "\(run.stderr)")
        // stderr: the bad photo's line, then the summary; no progress bar when piped.
        #expect(run.errorLines.count == 2, "\(run.stderr)")
        #expect(run.errorLines.first?.contains("b-truncated.jpg") == true)
        #expect(run.errorLines.last?.contains("2 images explained, 1 skipped, 2 outputs written") == true, "\(run.stderr)")
        #expect(!run.stderr.contains("\r") && !run.stderr.contains("█"))
        let records = try run.records()
        #expect(records.count == 3)
        #expect(records.map { ($0["input"] as? String).map { URL(fileURLWithPath: $0).lastPathComponent } }
            == ["a-cat.jpg", "b-truncated.jpg", "c-coffee.jpg"])
        #expect(records[1]["exit_status"] as? Int == 65)
        #expect((records[1]["error"] as? String)?.contains("truncated") == true)
        #expect(files(in: out) == ["a-cat-gradcam-\(records[0]["target_class"] as? Int ?? -1).png",
                                   "c-coffee-gradcam-\(records[2]["target_class"] as? Int ?? -1).png"])
    }

    @Test func directoriesRecursionAndGlobs() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let photos = dir.appendingPathComponent("photos")
        try FileManager.default.createDirectory(at: photos.appendingPathComponent("sub"), withIntermediateDirectories: true)
        try copySample("cat.jpg", to: photos.appendingPathComponent("cat.jpg"))
        try copySample("coffee.jpg", to: photos.appendingPathComponent("sub/coffee.JPG"))
        try Data("notes".utf8).write(to: photos.appendingPathComponent("notes.txt"))
        let flags = ["--target-category", "281", "--top-k", "1", "--quiet"]

        let flat = dir.appendingPathComponent("flat")
        let one = try camkit([photos.path, "--save-path", flat.path + "/"] + flags)
        #expect(one.status == 0, "\(one.stderr)")
        #expect(one.stderr.isEmpty, "--quiet: \(one.stderr)")
        #expect(files(in: flat) == ["cat-gradcam-281.png"])

        let deep = dir.appendingPathComponent("deep")
        let recursive = try camkit([photos.path, "--recursive", "--save-path", deep.path + "/"] + flags)
        #expect(recursive.status == 0, "\(recursive.stderr)")
        #expect(files(in: deep) == ["cat-gradcam-281.png", "sub/coffee-gradcam-281.png"])

        // A pattern the shell did not expand (Process passes it verbatim).
        let globbed = dir.appendingPathComponent("globbed")
        let glob = try camkit([photos.path + "/*/*.JPG", photos.path + "/c?t.jp[g]", "--save-path", globbed.path + "/", "--jobs", "2"] + flags)
        #expect(glob.status == 0, "\(glob.stderr)")
        #expect(files(in: globbed) == ["cat-gradcam-281.png", "coffee-gradcam-281.png"])
    }

    /// `--jobs 2` explains two photos at once with one thread each: the same outputs and maps as one
    /// job with two threads. (Thread counts change how kernels split sums, so float rounding may
    /// differ in the last bits; the maps are min-max normalised to [0, 1].)
    @Test func jobsGiveTheSameMapsAsOneJob() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let photos = dir.appendingPathComponent("photos")
        try FileManager.default.createDirectory(at: photos, withIntermediateDirectories: true)
        for name in ["cat.jpg", "coffee.jpg", "cat-and-coffee.jpg"] { try copySample(name, to: photos.appendingPathComponent(name)) }
        var maps: [[String: [Float]]] = []
        for jobs in ["1", "2"] {
            let out = dir.appendingPathComponent("out\(jobs)")
            let run = try camkit([photos.path, "--jobs", jobs, "--save-path", out.path + "/", "--save-raw", out.path + "/",
                                  "--json", "--top-k", "1"])
            #expect(run.status == 0, "\(run.stderr)")
            // Records come in input order whatever the scheduling.
            #expect(try run.records().compactMap { ($0["input"] as? String).map { URL(fileURLWithPath: $0).lastPathComponent } }
                == ["cat-and-coffee.jpg", "cat.jpg", "coffee.jpg"])
            var byName: [String: [Float]] = [:]
            for file in files(in: out) where file.hasSuffix(".npy") {
                byName[file] = try NPYFile(contentsOf: out.appendingPathComponent(file)).values
            }
            #expect(files(in: out).count == 6)
            maps.append(byName)
        }
        #expect(maps[0].keys.sorted() == maps[1].keys.sorted())
        for (name, a) in maps[0] {
            let b = maps[1][name] ?? []
            let worst = zip(a, b).map { abs($0 - $1) }.max() ?? .infinity
            #expect(a.count == b.count && worst <= 1e-4, "\(name): max |Δ| \(worst)")
        }
    }

    // MARK: Outputs and JSON

    @Test func explainWritesOneOverlayPerCategoryAndTheJSONSchema() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = try camkit(["Samples/cat-and-coffee.jpg", "--target-category", "285", "967",
                              "--save-path", dir.path, "--save-raw", dir.appendingPathComponent("map.npy").path,
                              "--json", "--top-k", "1000"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.isEmpty, "\(run.stderr)")
        let records = try run.records()
        #expect(records.count == 2)
        for (object, category) in zip(records, [285, 967]) {
            #expect(Set(object.keys) == ["input", "method", "target_class", "target_label", "layers", "predictions",
                                         "outputs", "warnings", "timings_ms"])
            #expect(object["input"] as? String == "Samples/cat-and-coffee.jpg")
            #expect(object["method"] as? String == "GradCAM")
            #expect(object["target_class"] as? Int == category)
            #expect((object["layers"] as? [String])?.isEmpty == false)
            let predictions = try #require(object["predictions"] as? [[String: Any]])
            #expect(predictions.count == 1000)                       // --top-k may go up to the class count
            #expect(Set(predictions[0].keys) == ["index", "label", "logit", "probability"])
            let total = predictions.compactMap { $0["probability"] as? Double }.reduce(0, +)
            #expect(abs(total - 1) < 1e-3, "probabilities sum to \(total)")
            let logits = predictions.compactMap { $0["logit"] as? Double }
            #expect(zip(logits, logits.dropFirst()).allSatisfy { $0 >= $1 })
            let timings = try #require(object["timings_ms"] as? [String: Double])
            #expect(Set(timings.keys) == ["decode", "preprocess", "explain", "write", "total"])
            let parts = ["decode", "preprocess", "explain", "write"].compactMap { timings[$0] }
            #expect(parts.allSatisfy { $0 >= 0 } && abs(parts.reduce(0, +) - (timings["total"] ?? 0)) < 1e-6)
            let outputs = try #require(object["outputs"] as? [String])
            #expect(outputs.count == 2 && outputs.allSatisfy { FileManager.default.fileExists(atPath: $0) })
        }
        #expect(files(in: dir) == ["cat-and-coffee-gradcam-285.png", "cat-and-coffee-gradcam-967.png",
                                   "map.285.npy", "map.967.npy"])
        let map = try NPYFile(contentsOf: dir.appendingPathComponent("map.285.npy"))
        #expect(map.shape == [224, 224] && map.values.allSatisfy { (0...1).contains($0) })
    }

    /// A model with free height and width (Fixtures/nhwc/tiny-nchw-dynamic.onnx): `--input-size`
    /// and `--resize` set the model input; `--preset none` feeds the photo at its own size.
    @Test func preprocessingFlagsChooseTheModelInput() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = Self.fixtures.appendingPathComponent("nhwc/tiny-nchw-dynamic.onnx").path
        let raw = dir.appendingPathComponent("map.npy")
        let run = try camkit(["Samples/cat.jpg", "--model", model, "--input-size", "160x128", "--resize", "letterbox",
                              "--save-path", dir.path + "/", "--save-raw", raw.path, "--top-k", "1"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(try NPYFile(contentsOf: raw).shape == [160, 128])
        let native = try camkit(["Samples/cat.jpg", "--model", model, "--preset", "none",
                                 "--save-path", dir.path + "/", "--save-raw", raw.path, "--top-k", "1"])
        #expect(native.status == 0, "\(native.stderr)")
        #expect(try NPYFile(contentsOf: raw).shape == [300, 451])
        let fixed = try camkit(["Samples/cat.jpg", "--input-size", "96"])
        #expect(fixed.status == 64 && fixed.stderr.contains("fixed at 224x224"), "\(fixed.stderr)")
        let bad = try camkit(["Samples/cat.jpg", "--resize", "fit"])
        #expect(bad.status == 64 && bad.stderr.contains("shorter-crop, stretch, letterbox"), "\(bad.stderr)")
    }

    // MARK: A channels-last (Keras-style) model

    /// Tests/camkitTests/Fixtures/nhwc (Scripts/fixtures/make_cli_fixtures.py): a tiny conv net with
    /// input (1, 224, 224, 3) and pytorch-grad-cam's GradCAM map for class 5 on Samples/cat.jpg.
    @Test func explainsAnNHWCModelEndToEnd() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = Self.fixtures.appendingPathComponent("nhwc/tiny-nhwc.onnx").path
        let reference = try NPYFile(contentsOf: Self.fixtures.appendingPathComponent("nhwc/gradcam_5.npy"))

        // The exact preprocessed tensor: the map matches pytorch-grad-cam.
        let exact = dir.appendingPathComponent("exact.npy")
        let tensorRun = try camkit(["--model", model, "--input-tensor", Self.fixtures.appendingPathComponent("nhwc/input.npy").path,
                                    "--target-category", "5", "--save-raw", exact.path])
        #expect(tensorRun.status == 0, "\(tensorRun.stderr)")
        let map = try NPYFile(contentsOf: exact)
        #expect(map.shape == [224, 224])
        let maxDiff = zip(map.values, reference.values).map { abs($0 - $1) }.max() ?? .infinity
        #expect(maxDiff < 1e-4, "max |Δ| = \(maxDiff)")

        // The photo: layout detected from the input shape (no sidecar), overlay and map written.
        let run = try camkit(["--model", model, "Samples/cat.jpg", "--target-category", "5", "--json",
                              "--save-path", dir.path + "/", "--save-raw", dir.path + "/"])
        #expect(run.status == 0, "\(run.stderr)")
        let record = try #require(try run.records().first)
        #expect(record["target_class"] as? Int == 5)
        #expect((record["predictions"] as? [[String: Any]])?.first?["label"] as? String == "class 1")
        #expect(files(in: dir).contains("cat-gradcam-5.png") && files(in: dir).contains("cat-gradcam-5.npy"))
        let photoMap = try NPYFile(contentsOf: dir.appendingPathComponent("cat-gradcam-5.npy"))
        // CAMKit decodes this JPEG as PIL does and its preprocessing is bit-identical to torchvision's,
        // so the photo gives the reference map too (measured max |Δ| 2.4e-7).
        let photoDiff = zip(photoMap.values, reference.values).map { abs($0 - $1) }.max() ?? .infinity
        #expect(photoDiff < 1e-4, "max |Δ| = \(photoDiff)")

        let predict = try camkit(["predict", "--model", model, "--input-tensor",
                                  Self.fixtures.appendingPathComponent("nhwc/input.npy").path, "--json", "--top-k", "10"])
        #expect(predict.status == 0, "\(predict.stderr)")
        let logits = try NPYFile(contentsOf: Self.fixtures.appendingPathComponent("nhwc/logits.npy")).values
        let predictions = try #require(try predict.records().first?["predictions"] as? [[String: Any]])
        for p in predictions {
            let index = try #require(p["index"] as? Int), logit = try #require(p["logit"] as? Double)
            #expect(abs(Float(logit) - logits[index]) < 1e-4)
        }
        let layers = try camkit(["layers", "--model", model])
        #expect(layers.status == 0 && layers.stdout.contains("features.3"), "\(layers.stdout)\(layers.stderr)")
    }
}

/// A little-endian float32 `.npy` file (version 1), read without TensorCore.
struct NPYFile {
    var shape: [Int]
    var values: [Float]

    init(contentsOf url: URL) throws {
        let bytes = [UInt8](try Data(contentsOf: url))
        try #require(bytes.count > 10 && bytes[1...5].elementsEqual("NUMPY".utf8))
        let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
        let header = String(decoding: bytes[10..<(10 + headerLength)], as: UTF8.self)
        try #require(header.contains("'<f4'"), "not float32: \(header)")
        let shapeText = try #require(header.split(separator: "(").last?.split(separator: ")").first)
        shape = shapeText.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let data = bytes[(10 + headerLength)...]
        values = data.withUnsafeBytes { raw in
            (0..<(raw.count / 4)).map { raw.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) }
        }
    }
}

/// A value handed from a reader thread to the test (written once before `group.leave()`).
