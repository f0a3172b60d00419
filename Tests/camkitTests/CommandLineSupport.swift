import Foundation
import Testing

/// One run of the `camkit` executable.
struct CommandLineRun {
    var status: Int32
    var stdout: String
    var stderr: String
    /// The non-empty lines of stderr.
    var errorLines: [Substring] { stderr.split(separator: "\n") }
    /// stdout parsed as one JSON object.
    func record() throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [String: Any], "\(stdout)")
    }
    /// The stdout lines parsed as JSON objects.
    func records() throws -> [[String: Any]] {
        try stdout.split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }
}

/// A suite that runs the built `camkit` executable as users do (working directory: the repository root).
protocol CommandLineSuite {}

extension CommandLineSuite {
    typealias Run = CommandLineRun

    /// The repository root.
    static var root: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// The built executable, found beside the test bundle (SwiftPM puts both in the products folder).
    static var executable: URL? {
        let candidates = [Bundle.main.bundleURL, Bundle.main.bundleURL.deletingLastPathComponent(),
                          URL(fileURLWithPath: CommandLine.arguments.first ?? "").deletingLastPathComponent()]
        return candidates.map { $0.appendingPathComponent("camkit") }
            .first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }

    /// Runs `camkit` with `arguments` and waits for it.
    /// - Parameters:
    ///   - environment: variables added to the test process's environment.
    ///   - shellSetup: `sh` commands run before `camkit` is exec'd in the same process (e.g.
    ///     `ulimit -f 1`), for conditions a test cannot create otherwise.
    func camkit(_ arguments: [String], environment: [String: String] = [:],
                shellSetup: String? = nil) throws -> CommandLineRun {
        let exe = try #require(Self.executable, "camkit executable not found beside the tests")
        let process = Process()
        if let shellSetup {
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", shellSetup + "\nexec \"$0\" \"$@\"", exe.path] + arguments
        } else {
            process.executableURL = exe
            process.arguments = arguments
        }
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        process.currentDirectoryURL = Self.root
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Read stderr on another thread so that neither pipe can fill up and block the child.
        let errorData = ResultBox<Data>()
        let group = DispatchGroup()
        group.enter()
        Thread {
            errorData.value = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }.start()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        let e = errorData.value ?? Data()
        process.waitUntilExit()
        return CommandLineRun(status: process.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                              stderr: String(decoding: e, as: UTF8.self))
    }

    /// A fresh temporary directory, removed by the caller's `defer`.
    func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("camkit-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Width and height from a PNG's IHDR chunk (bytes 16–23, big-endian).
    func pngSize(_ url: URL) throws -> (width: Int, height: Int) {
        let data = [UInt8](try Data(contentsOf: url))
        try #require(data.count > 24 && data[0] == 0x89 && data[1] == 0x50, "\(url.path) is not a PNG")
        func be32(_ i: Int) -> Int { data[i..<(i + 4)].reduce(0) { $0 << 8 | Int($1) } }
        return (be32(16), be32(20))
    }
}

/// A value written by another thread.
final class ResultBox<T>: @unchecked Sendable { var value: T? }
