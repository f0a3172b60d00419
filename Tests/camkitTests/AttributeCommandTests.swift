import Foundation
import Testing

/// `camkit attribute` through the built executable: help text, the image written (the bundled
/// EfficientNet-Lite0 takes 224×224 inputs: Models/efficientnet-lite0.json), the JSON record, and
/// each bad input's exit status (sysexits: 64 usage; Sources/camkit/Support/ExitStatus.swift), one
/// stderr line and nothing written. The attribution numbers themselves are checked against Captum
/// in Tests/ExplainTests; here the completeness error is checked against its definition
/// Σattr − (f(x) − f(baseline)) (Sundararajan et al. 2017, §3; Captum's convergence delta),
/// summing the raw attributions the command writes with --save-raw.
///
/// The process-running helper is a private copy of the one in FeatureCommandTests.swift.
@Suite struct AttributeCommandTests: CommandLineSuite {

    static let photo = "Samples/cat.jpg"
    /// The bundled model's input side (Models/efficientnet-lite0.json: 224×224, NCHW, 3 channels).
    static let side = 224

    /// The Float32 values of a little-endian `.npy` file (format 1.0: magic, version, a 2-byte
    /// header length, the header, the data).
    func npyValues(_ url: URL) throws -> (shape: String, values: [Float]) {
        let data = [UInt8](try Data(contentsOf: url))
        try #require(data.count > 10 && data[0] == 0x93 && data[6] == 1, "\(url.path) is not a .npy 1.0 file")
        let headerLength = Int(data[8]) | Int(data[9]) << 8
        let header = String(decoding: data[10..<(10 + headerLength)], as: UTF8.self)
        try #require(header.contains("'<f4'"), "\(header)")
        let body = data[(10 + headerLength)...]
        let values = stride(from: body.startIndex, to: body.endIndex, by: 4).map { i in
            Float(bitPattern: UInt32(body[i]) | UInt32(body[i + 1]) << 8 | UInt32(body[i + 2]) << 16 | UInt32(body[i + 3]) << 24)
        }
        return (header, values)
    }

    @Test func helpListsTheMethods() throws {
        let run = try camkit(["attribute", "--help"])
        #expect(run.status == 0)
        for word in ["saliency", "inputxgradient", "guidedbackprop", "deconvnet", "guidedgradcam", "ig", "smoothgrad",
                     "occlusion", "--method", "--target-category", "--steps", "--rule", "--baseline", "--samples",
                     "--noise", "--window", "--stride", "--sign", "--outlier-percent", "--no-overlay", "--save-raw",
                     "--json", "Exit status"] {
            #expect(run.stdout.contains(word), "attribute --help lacks \(word)")
        }
        #expect(try camkit(["--help"]).stdout.contains("attribute"))
    }

    // Saliency of the top class: a 224×224 PNG over the model-input crop; the JSON names the top
    // prediction as the target and the per-method rendering defaults.
    @Test func saliencyWritesAnInputSizedImage() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let output = dir.appendingPathComponent("saliency.png")
        let run = try camkit(["attribute", Self.photo, "--method", "Saliency", "--save-path", output.path, "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        let record = try run.record()
        for key in ["input", "method", "target_class", "target_label", "target_logit", "predictions", "outputs",
                    "width", "height", "sign", "reduction", "colormap", "outlier_percent", "overlay", "timings_ms"] {
            #expect(record[key] != nil, "--json lacks \(key)")
        }
        let predictions = try #require(record["predictions"] as? [[String: Any]])
        #expect(predictions.count == 5)
        #expect(record["target_class"] as? Int == predictions.first?["index"] as? Int)
        #expect(record["target_logit"] as? Double == predictions.first?["logit"] as? Double)
        #expect(record["method"] as? String == "saliency")
        #expect(record["sign"] as? String == "absolute_value" && record["reduction"] as? String == "max-abs")
        #expect(record["completeness_error"] == nil)
        #expect(record["outputs"] as? [String] == [output.path])
        #expect(try pngSize(output) == (Self.side, Self.side))
        #expect(record["width"] as? Int == Self.side && record["height"] as? Int == Self.side)

        // Plain text: the target and the file.
        let text = try camkit(["attribute", Self.photo, "--no-overlay", "--save-path", output.path])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.contains("Saliency for class") && text.stdout.contains("wrote \(output.path) (224×224)"))
    }

    // Integrated gradients (8 steps to stay fast) for a chosen class: the completeness error is
    // reported and equals Σ(raw attributions) − score_difference, its definition.
    @Test func integratedGradientsReportsCompleteness() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let output = dir.appendingPathComponent("ig.png"), raw = dir.appendingPathComponent("ig.npy")
        let run = try camkit(["attribute", Self.photo, "--method", "Integrated-Gradients", "--steps", "8",
                              "--target-category", "285", "--save-path", output.path, "--save-raw", raw.path, "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        let record = try run.record()
        #expect(record["method"] as? String == "ig" && record["target_class"] as? Int == 285)
        #expect(record["sign"] as? String == "all" && record["reduction"] as? String == "sum")
        let error = try #require(record["completeness_error"] as? Double)
        let difference = try #require(record["score_difference"] as? Double)
        #expect(try pngSize(output) == (Self.side, Self.side))
        let (header, values) = try npyValues(raw)
        #expect(header.contains("(3, 224, 224)") && values.count == 3 * Self.side * Self.side)
        let total = values.reduce(0.0) { $0 + Double($1) }
        // Σattr is summed in a different order than the library's Float32 sum: 1e-4 relative to Σ|attr|.
        let scale = values.reduce(0.0) { $0 + abs(Double($1)) }
        #expect(abs((total - difference) - error) <= 1e-4 * scale, "Σattr \(total), f(x) − f(b) \(difference), error \(error)")

        let text = try camkit(["attribute", Self.photo, "--method", "ig", "--steps", "8", "--save-path", output.path])
        #expect(text.status == 0 && text.stdout.contains("completeness error"), "\(text.stderr)")
    }

    // Bad values: usage status 64, one line naming the problem, nothing written.
    @Test func badValuesAreUsageErrors() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let output = dir.appendingPathComponent("out.png").path
        let unknown = try camkit(["attribute", Self.photo, "--method", "lime", "--save-path", output])
        #expect(unknown.status == 64)
        #expect(unknown.errorLines.count == 1 && unknown.stderr.contains("lime"), "\(unknown.stderr)")
        for name in ["saliency", "inputxgradient", "guidedbackprop", "deconvnet", "guidedgradcam", "ig", "smoothgrad", "occlusion"] {
            #expect(unknown.stderr.contains(name), "the error lacks \(name)")
        }
        let cases: [([String], String)] = [
            (["--method", "ig", "--steps", "0"], "--steps"),
            (["--method", "ig", "--rule", "simpson"], "riemann_trapezoid"),
            (["--method", "smoothgrad", "--samples", "0"], "--samples"),
            (["--sign", "both"], "positive"),
            (["--outlier-percent", "101"], "--outlier-percent"),
        ]
        for (arguments, mention) in cases {
            let run = try camkit(["attribute", Self.photo, "--save-path", output] + arguments)
            #expect(run.status == 64, "\(arguments): \(run.stderr)")
            #expect(run.errorLines.count == 1 && run.stderr.contains(mention), "\(arguments): \(run.stderr)")
            #expect(run.stdout.isEmpty, "\(arguments): \(run.stdout)")
        }
        #expect((try FileManager.default.contentsOfDirectory(atPath: dir.path)).isEmpty)
    }
}

