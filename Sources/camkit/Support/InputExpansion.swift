// Turning the IMAGE arguments into a list of photos: files as given, directories (their PNG and
// JPEG files, sorted by name; subdirectories with --recursive) and glob patterns the shell did not
// expand (`'photos/*.jpg'`, expanded with glob(3), as `find -name` users and Windows shells need).

import Foundation

/// One photo to process, or an argument that yields none (with the reason).
struct InputItem: Sendable {
    /// The photo's path, as given or as found in a directory.
    var path: String
    /// The photo's folder relative to the directory argument it was found in ("" for a file
    /// argument or a photo directly inside the directory): outputs mirror it under `--save-path`.
    var subdirectory: String = ""
    /// Why this argument cannot be processed (`nil`: a file to process).
    var failure: CLIError?
}

/// Expands IMAGE arguments.
enum InputExpansion {
    /// File extensions taken from directories (case-insensitive). Files named explicitly are read
    /// whatever their extension: the decoder recognises the format from the bytes.
    static let imageExtensions: Set<String> = ["png", "jpg", "jpeg", "jpe", "jfif"]

    /// The photos the arguments denote, in argument order (directory contents sorted by name),
    /// each path once. Arguments that yield nothing become items with a ``InputItem/failure``
    /// (exit status 66).
    static func expand(_ arguments: [String], recursive: Bool) -> [InputItem] {
        var items: [InputItem] = []
        var seen = Set<String>()
        func add(_ item: InputItem) {
            if item.failure == nil {
                let key = URL(fileURLWithPath: item.path).standardizedFileURL.path
                guard seen.insert(key).inserted else { return }
            }
            items.append(item)
        }
        for argument in arguments {
            if let isDirectory = kind(of: argument) {
                if isDirectory {
                    directoryItems(argument, recursive: recursive).forEach(add)
                } else {
                    add(InputItem(path: argument))
                }
                continue
            }
            guard argument.contains(where: { "*?[".contains($0) }) else {
                add(InputItem(path: argument, failure: CLIError(
                    description: "\(argument): no such file or directory; check the path (relative paths start at the current directory)",
                    status: .noInput)))
                continue
            }
            let matches = paths(matching: argument)
            if matches.isEmpty {
                add(InputItem(path: argument, failure: CLIError(
                    description: "\(argument): no file matches this pattern; check the pattern and the current directory",
                    status: .noInput)))
                continue
            }
            for match in matches {
                if kind(of: match) == true {
                    directoryItems(match, recursive: recursive).forEach(add)
                } else {
                    add(InputItem(path: match))
                }
            }
        }
        return items
    }

    /// `true` for a directory, `false` for another existing file, `nil` when nothing exists there.
    private static func kind(of path: String) -> Bool? {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return nil }
        return isDirectory.boolValue
    }

    /// The images in a directory (and its subdirectories when `recursive`), sorted by path, or one
    /// failure item when there are none.
    private static func directoryItems(_ directory: String, recursive: Bool) -> [InputItem] {
        var found: [(path: String, subdirectory: String)] = []
        var hasSubdirectories = false
        func scan(_ dir: String, _ relative: String) {
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
            for name in names where !name.hasPrefix(".") {
                let path = dir.hasSuffix("/") ? dir + name : dir + "/" + name
                if kind(of: path) == true {
                    hasSubdirectories = true
                    if recursive { scan(path, relative.isEmpty ? name : relative + "/" + name) }
                } else if imageExtensions.contains((name as NSString).pathExtension.lowercased()) {
                    found.append((path, relative))
                }
            }
        }
        scan(directory, "")
        if found.isEmpty {
            let hint = !recursive && hasSubdirectories ? "; pass --recursive to look in its subdirectories" : "; pass image files or a directory that holds some"
            return [InputItem(path: directory, failure: CLIError(
                description: "\(directory): no PNG or JPEG images in this directory (looked for .png, .jpg, .jpeg)" + hint,
                status: .noInput))]
        }
        return found.map { InputItem(path: $0.path, subdirectory: $0.subdirectory) }
    }

    /// The paths matching a glob pattern (`*`, `?`, `[...]`), sorted; empty when none match.
    static func paths(matching pattern: String) -> [String] {
        var result = glob_t()
        defer { globfree(&result) }
        guard glob(pattern, 0, nil, &result) == 0 else { return [] }
        var paths: [String] = []
        for i in 0..<Int(result.gl_pathc) {
            if let p = result.gl_pathv[i] { paths.append(String(cString: p)) }
        }
        return paths
    }
}
