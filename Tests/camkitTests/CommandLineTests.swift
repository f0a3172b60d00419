import Foundation
import Testing

/// The `camkit` executable as users run it: help text, exit codes, error lines, outputs written.
@Suite struct CommandLineTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// The built executable, found beside the test bundle (SwiftPM puts both in the products folder).
    static var executable: URL? {
        let candidates = [Bundle.main.bundleURL, Bundle.main.bundleURL.deletingLastPathComponent(),
                          URL(fileURLWithPath: CommandLine.arguments.first ?? "").deletingLastPathComponent()]
        return candidates.map { $0.appendingPathComponent("camkit") }
            .first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }

    struct Run { var status: Int32; var stdout: String; var stderr: String }

    func camkit(_ arguments: [String]) throws -> Run {
        let exe = try #require(Self.executable, "camkit executable not found beside the tests")
        let process = Process()
        process.executableURL = exe
        process.arguments = arguments
        process.currentDirectoryURL = Self.root
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                   stderr: String(decoding: e, as: UTF8.self))
    }

    @Test func helpListsSubcommandsAndMethods() throws {
        let top = try camkit(["--help"])
        #expect(top.status == 0)
        for word in ["explain", "layers", "benchmark", "predict"] { #expect(top.stdout.contains(word)) }
        let explain = try camkit(["explain", "--help"])
        for flag in ["--target-layers", "--target-category", "--aug-smooth", "--eigen-smooth", "--vit-like",
                     "--num-extra-tokens", "--save-path", "--save-raw", "gradcam++", "scorecam"] {
            #expect(explain.stdout.contains(flag), "\(flag) missing from help")
        }
    }

    @Test func explainWritesOneOverlayPerCategoryAndJSON() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("camkit-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = try camkit(["Samples/cat-and-coffee.jpg", "--target-category", "285", "967",
                              "--save-path", dir.path, "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        let lines = run.stdout.split(separator: "\n")
        #expect(lines.count == 2)
        for (line, category) in zip(lines, [285, 967]) {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect(object["target_class"] as? Int == category)
            #expect((object["predictions"] as? [[String: Any]])?.count == 5)
            let outputs = try #require(object["outputs"] as? [String])
            #expect(outputs.allSatisfy { FileManager.default.fileExists(atPath: $0) })
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        #expect(files == ["cat-and-coffee-gradcam-285.png", "cat-and-coffee-gradcam-967.png"])
    }

    @Test func badInputGivesOneLineAndNonZeroStatus() throws {
        let missing = try camkit(["no-such-photo.jpg"])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("no-such-photo.jpg"))
        let method = try camkit(["Samples/cat.jpg", "--method", "gradkam"])
        #expect(method.status != 0)
        #expect(method.stderr.contains("unknown method 'gradkam'") && method.stderr.contains("scorecam"))
        let layer = try camkit(["Samples/cat.jpg", "--target-layers", "_swish_9"])
        #expect(layer.status != 0)
        #expect(layer.stderr.contains("_swish_9"))
        let category = try camkit(["Samples/cat.jpg", "--target-category", "5000"])
        #expect(category.status != 0)
        #expect(category.stderr.contains("1000"))
    }
}
