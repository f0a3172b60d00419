// Tensor data stored outside the .onnx file.
//
// Semantics: ONNX IR spec (docs/ExternalData.md) and `TensorProto.external_data` in
// onnx/onnx.proto: with `data_location = EXTERNAL`, the entries `location` (a path relative to the
// directory of the model file), `offset` and `length` (decimal byte counts; `offset` defaults to 0,
// `length` to the rest of the file) say where the raw, little-endian bytes are. `checksum` is
// not verified.
//
// Like the `onnx` package's own loader (onnx.external_data_helper / checker), CAMKit refuses
// absolute locations and locations that leave the model's directory, through `..` or through a
// symbolic link: a downloaded model must not make CAMKit read arbitrary files.

import Foundation

/// Reads external tensor data relative to one directory, mapping each data file once.
final class DirectoryExternalData: ExternalDataSource {
    /// The model file's directory, or `nil` for a model decoded from memory without one.
    let directory: URL?
    /// Files already mapped, by resolved path.
    private var files: [String: Data] = [:]

    /// Creates a reader for data files beside a model in `directory`.
    init(directory: URL?) {
        self.directory = directory?.standardizedFileURL
    }

    func bytes(for tensor: Onnx_TensorProto, name: String) throws -> Data {
        var location: String?
        var offset = 0
        var length: Int?
        for entry in tensor.externalData {
            switch entry.key {
            case "location":
                location = entry.value
            case "offset":
                guard let v = Int(entry.value), v >= 0 else {
                    throw ONNXGraphError.invalidTensor(tensor: name, reason: "external data offset '\(entry.value)' is not a byte count")
                }
                offset = v
            case "length":
                guard let v = Int(entry.value), v >= 0 else {
                    throw ONNXGraphError.invalidTensor(tensor: name, reason: "external data length '\(entry.value)' is not a byte count")
                }
                length = v
            default:
                continue  // "checksum" and unknown keys
            }
        }
        guard let location, !location.isEmpty else {
            throw ONNXGraphError.invalidTensor(tensor: name, reason: "data_location is EXTERNAL but external_data has no 'location'")
        }
        guard let directory else {
            throw ONNXGraphError.externalDataMissing(tensor: name, location: location)
        }
        let url = try resolve(location, in: directory, tensor: name)
        let data = try mappedFile(url, location: location, tensor: name)

        guard offset <= data.count else {
            throw ONNXGraphError.invalidTensor(
                tensor: name, reason: "external data offset \(offset) is past the end of '\(location)' (\(data.count) bytes)")
        }
        let end: Int
        if let length {
            let (sum, overflow) = offset.addingReportingOverflow(length)
            guard !overflow, sum <= data.count else {
                throw ONNXGraphError.invalidTensor(
                    tensor: name,
                    reason: "external data range \(offset)..<\(offset + min(length, Int.max - offset)) is past the end of '\(location)' (\(data.count) bytes)")
            }
            end = sum
        } else {
            end = data.count
        }
        let start = data.startIndex + offset
        return data[start..<(data.startIndex + end)]
    }

    /// The file `location` names, checked to stay inside `directory`.
    private func resolve(_ location: String, in directory: URL, tensor: String) throws -> URL {
        if location.hasPrefix("/") || location.hasPrefix("~") || location.contains("\\") || location.contains("\0") {
            throw ONNXGraphError.externalDataOutsideModelDirectory(tensor: tensor, location: location)
        }
        let candidate = directory.appendingPathComponent(location).standardizedFileURL
        // First lexically: `..` components that climb out.
        guard isInside(candidate.pathComponents, base: directory.pathComponents) else {
            throw ONNXGraphError.externalDataOutsideModelDirectory(tensor: tensor, location: location)
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: candidate.path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw ONNXGraphError.externalDataMissing(tensor: tensor, location: candidate.path)
        }
        // Then through symbolic links (only resolvable for a file that exists), comparing with the
        // resolved directory, which may itself be reached through a link (e.g. /tmp on macOS).
        let resolvedBase = directory.resolvingSymlinksInPath().standardizedFileURL.pathComponents
        guard isInside(candidate.resolvingSymlinksInPath().standardizedFileURL.pathComponents, base: resolvedBase) else {
            throw ONNXGraphError.externalDataOutsideModelDirectory(tensor: tensor, location: location)
        }
        return candidate
    }

    private func isInside(_ path: [String], base: [String]) -> Bool {
        path.count > base.count && Array(path.prefix(base.count)) == base
    }

    /// The whole file at `url`, memory-mapped where the platform allows, cached.
    private func mappedFile(_ url: URL, location: String, tensor: String) throws -> Data {
        if let cached = files[url.path] { return cached }
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .alwaysMapped)
        } catch {
            throw ONNXGraphError.unreadable(path: url.path, reason: "\(error.localizedDescription) (external data of tensor '\(tensor)')")
        }
        files[url.path] = data
        return data
    }
}
