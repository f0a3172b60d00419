// Where outputs go, and checking before any work that they can be created there (exit status 73
// up front rather than after minutes of explaining). The files themselves are written atomically
// (temporary file + rename, Imaging's `writeAtomically`), so an interrupted run never leaves a
// half-written PNG or .npy behind.

import Foundation

/// Names output files for `--save-path` / `--save-raw` (or beside the photo when not given).
struct OutputPaths: Sendable {
    /// A destination given by the user: a directory, or a file name pattern.
    struct Destination: Sendable {
        /// The path as given.
        var path: String
        /// Whether outputs go inside it (an existing directory, or a path ending in `/`).
        var isDirectory: Bool
    }

    /// `--save-path`, if given.
    let overlays: Destination?
    /// `--save-raw`, if given.
    let raw: Destination?
    /// How many photos the run takes (names carry the photo's name when there are several).
    let photoCount: Int
    /// How many categories each photo gets.
    let categoryCount: Int

    /// Checks the destinations and creates directory destinations ending in `/`.
    /// - Throws: ``CLIError`` with ``ExitStatus/cannotCreate`` when a directory is missing, not a
    ///   directory or not writable.
    init(savePath: String?, saveRaw: String?, photoCount: Int, categoryCount: Int) throws {
        self.photoCount = photoCount
        self.categoryCount = categoryCount
        overlays = try savePath.map { try Self.check($0, flag: "--save-path") }
        raw = try saveRaw.map { try Self.check($0, flag: "--save-raw") }
    }

    private static func check(_ path: String, flag: String) throws -> Destination {
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
        if exists && isDirectory.boolValue {
            try checkWritable(directory: path, for: path, flag: flag)
            return Destination(path: path, isDirectory: true)
        }
        if path.hasSuffix("/") {
            do {
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            } catch {
                throw CLIError(description: "\(path): cannot create the \(flag) directory (\(reason(error))); choose a writable location",
                               status: .cannotCreate)
            }
            return Destination(path: path, isDirectory: true)
        }
        let parent = (path as NSString).deletingLastPathComponent
        try checkWritable(directory: parent.isEmpty ? "." : parent, for: path, flag: flag)
        return Destination(path: path, isDirectory: false)
    }

    /// Throws unless `directory` exists, is a directory and is writable.
    static func checkWritable(directory: String, for output: String, flag: String?) throws {
        var isDirectory: ObjCBool = false
        let via = flag.map { " (\($0))" } ?? ""
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) else {
            throw CLIError(description: "\(output): cannot write the output\(via): directory \(directory) does not exist; create it first or choose another path",
                           status: .cannotCreate)
        }
        guard isDirectory.boolValue else {
            throw CLIError(description: "\(output): cannot write the output\(via): \(directory) is not a directory; choose another path",
                           status: .cannotCreate)
        }
        guard access(directory, W_OK) == 0 else {
            throw CLIError(description: "\(output): cannot write the output\(via): directory \(directory) is not writable (\(String(cString: strerror(errno)))); choose another path",
                           status: .cannotCreate)
        }
    }

    private static func reason(_ error: any Error) -> String {
        if let e = error as? CocoaError, let underlying = e.underlying as? POSIXError {
            return String(cString: strerror(underlying.code.rawValue))
        }
        return (error as? LocalizedError)?.errorDescription ?? "\(error)"
    }

    /// The overlay file for one photo and category: `<photo>-<method>-<class>.png` beside the photo,
    /// inside a `--save-path` directory (under the photo's subdirectory for `--recursive`), or the
    /// `--save-path` file itself (`<file>.<photo>-<class>.<ext>` when there are several outputs).
    func overlay(for item: InputItem, method: String, category: Int) -> URL {
        let base = Self.baseName(item.path)
        let file = "\(base)-\(method.lowercased())-\(category).png"
        guard let overlays else {
            return URL(fileURLWithPath: item.path).deletingLastPathComponent().appendingPathComponent(file)
        }
        if overlays.isDirectory {
            return Self.inside(overlays.path, item.subdirectory, file)
        }
        let url = URL(fileURLWithPath: overlays.path)
        guard photoCount > 1 || categoryCount > 1 else { return url }
        let ext = url.pathExtension.isEmpty ? "png" : url.pathExtension
        return url.deletingPathExtension().appendingPathExtension("\(base)-\(category).\(ext)")
    }

    /// The `.npy` file for one photo (or input tensor) and category, `nil` without `--save-raw`.
    func rawMap(for item: InputItem, method: String, category: Int) -> URL? {
        guard let raw else { return nil }
        let base = Self.baseName(item.path)
        if raw.isDirectory {
            return Self.inside(raw.path, item.subdirectory, "\(base)-\(method.lowercased())-\(category).npy")
        }
        let url = URL(fileURLWithPath: raw.path)
        if photoCount > 1 {
            return url.deletingPathExtension().appendingPathExtension("\(base)-\(category).npy")
        }
        if categoryCount > 1 { return url.deletingPathExtension().appendingPathExtension("\(category).npy") }
        return url
    }

    /// The directory an output goes into must exist (subdirectories mirrored for `--recursive` are
    /// created here) and be writable, and the output's own name must not be taken by a directory
    /// (the final rename would fail after all the work); checked before the photo is decoded.
    /// - Throws: ``CLIError`` with ``ExitStatus/cannotCreate``.
    func prepareDirectory(of url: URL) throws {
        let directory = url.deletingLastPathComponent().path
        if !FileManager.default.fileExists(atPath: directory),
           overlays?.isDirectory == true || raw?.isDirectory == true {
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        try Self.checkWritable(directory: directory, for: url.path, flag: nil)
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw CLIError(description: "\(url.path): cannot write the output: a directory of that name exists; move it away or choose another path",
                           status: .cannotCreate)
        }
    }

    private static func baseName(_ path: String) -> String {
        URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
    }

    private static func inside(_ directory: String, _ subdirectory: String, _ file: String) -> URL {
        var url = URL(fileURLWithPath: directory, isDirectory: true)
        if !subdirectory.isEmpty { url.appendPathComponent(subdirectory, isDirectory: true) }
        return url.appendingPathComponent(file)
    }
}
