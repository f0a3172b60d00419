import Foundation

/// The model that ships with CAMKit: EfficientNet-Lite0 with its ImageNet weights (Apache-2.0,
/// see `Models/NOTICE`), so that the tools work without a download.
public enum BundledModel {
    /// The model's file name.
    public static let fileName = "efficientnet-lite0.onnx"

    /// The folders searched, in order: `$CAMKIT_MODEL_DIR`, `share/camkit` beside the executable's
    /// folder, and the source checkout's `Models/`.
    public static var searchPaths: [URL] {
        var paths: [URL] = []
        if let dir = ProcessInfo.processInfo.environment["CAMKIT_MODEL_DIR"] {
            paths.append(URL(fileURLWithPath: dir))
        }
        let executable = URL(fileURLWithPath: CommandLine.arguments.first ?? "").resolvingSymlinksInPath()
        paths.append(executable.deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("share/camkit"))
        let checkout = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        paths.append(checkout.appendingPathComponent("Models"))
        return paths
    }

    /// The bundled model's location.
    /// - Throws: ``CAMKitError/bundledModelMissing(searched:)`` listing the folders searched.
    public static func url() throws -> URL {
        for dir in searchPaths {
            let candidate = dir.appendingPathComponent(fileName)
            if FileManager.default.fileExists(atPath: candidate.path) { return candidate }
        }
        throw CAMKitError.bundledModelMissing(searched: searchPaths.map(\.path))
    }
}
