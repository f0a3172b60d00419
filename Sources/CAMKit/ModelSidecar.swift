import Foundation

/// What a model needs besides its graph: preprocessing, labels and layout, read from a JSON file
/// beside the model (`M.json` for `M.onnx`).
///
/// ```json
/// {"input": "input", "layout": "NCHW", "inputSize": [224, 224], "resize": 256,
///  "mean": [0.498, 0.498, 0.498], "std": [0.502, 0.502, 0.502], "labels": "imagenet-classes.txt"}
/// ```
public struct ModelSidecar: Codable, Sendable, Equatable {
    /// The graph input to feed (default: the first).
    public var input: String?
    /// `"NCHW"` or `"NHWC"` (default: detected from the input shape).
    public var layout: String?
    /// Model input height and width.
    public var inputSize: [Int]?
    /// Shorter-side resize before the centre crop (torchvision's `Resize(256)`).
    public var resize: Int?
    /// Per-channel mean subtracted from pixels scaled to [0, 1].
    public var mean: [Float]?
    /// Per-channel standard deviation divided after the mean.
    public var std: [Float]?
    /// A text file beside the model with one class name per line.
    public var labels: String?
    /// A preprocessing preset (`imagenet`, `inception`, `caffe`, `none`) that ``mean``, ``std``,
    /// ``resize`` and ``inputSize`` refine (default: `imagenet`'s recipe).
    public var preset: String?
    /// How the photo reaches the input size: `shorter-crop` (default), `stretch` or `letterbox`.
    public var resizeMode: String?

    /// Reads the sidecar of `modelURL` (`model.json` beside `model.onnx`), or returns `nil` if none.
    /// - Throws: a decoding error naming the file when the JSON is malformed.
    public static func load(besideModel modelURL: URL) throws -> ModelSidecar? {
        let url = modelURL.deletingPathExtension().appendingPathExtension("json")
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        let sidecar: ModelSidecar
        do {
            sidecar = try JSONDecoder().decode(ModelSidecar.self, from: Data(contentsOf: url))
        } catch {
            throw CAMKitError.invalidSidecar(path: url.path, reason: "\(error)")
        }
        if let reason = sidecar.problem {
            throw CAMKitError.invalidSidecar(path: url.path, reason: reason)
        }
        return sidecar
    }

    /// What is wrong with the values, or `nil` when they are usable.
    var problem: String? {
        if let layout, !["NCHW", "NHWC"].contains(layout.uppercased()) {
            return "\"layout\" is \"\(layout)\"; use \"NCHW\" or \"NHWC\""
        }
        if let inputSize, !(1...2).contains(inputSize.count) || inputSize.contains(where: { $0 < 1 }) {
            return "\"inputSize\" is \(inputSize); give [height, width] with positive values"
        }
        if let resize, resize < 1 { return "\"resize\" is \(resize); give the shorter side in pixels (e.g. 256)" }
        if let mean, mean.count != 3 { return "\"mean\" has \(mean.count) values; give 3 (one per channel)" }
        if let std, std.count != 3 || std.contains(0) || std.contains(where: { !$0.isFinite }) {
            return "\"std\" is \(std); give 3 non-zero values (one per channel)"
        }
        if let preset, Preprocessing.preset(named: preset) == nil {
            return "\"preset\" is \"\(preset)\"; use one of \(Preprocessing.presetNames.joined(separator: ", "))"
        }
        if let resizeMode, ResizeStrategy(rawValue: resizeMode.lowercased()) == nil {
            return "\"resizeMode\" is \"\(resizeMode)\"; use one of \(ResizeStrategy.allCases.map(\.rawValue).joined(separator: ", "))"
        }
        return nil
    }

    /// The class names listed in ``labels`` (resolved beside the model), or `nil`.
    public func classNames(besideModel modelURL: URL) throws -> [String]? {
        guard let labels else { return nil }
        let url = modelURL.deletingLastPathComponent().appendingPathComponent(labels)
        guard let text = try? String(contentsOf: url, encoding: .utf8) else {
            throw CAMKitError.invalidSidecar(path: url.path, reason: "the labels file cannot be read")
        }
        return text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).filter { !$0.isEmpty }
    }
}

/// Errors of the high-level API, each naming the file or value and what to do.
public enum CAMKitError: Error, CustomStringConvertible, Sendable {
    /// A model sidecar (`M.json`) or its labels file is unreadable.
    case invalidSidecar(path: String, reason: String)
    /// The bundled model is not where CAMKit looks for it.
    case bundledModelMissing(searched: [String])
    /// A CAM method name that is not known.
    case unknownMethod(String, valid: [String])
    /// A preprocessing setting that cannot be used (`option` names the flag or field).
    case invalidPreprocessing(option: String, value: String, reason: String)

    public var description: String {
        switch self {
        case .invalidSidecar(let path, let reason):
            return "\(path): invalid model sidecar: \(reason). See README, 'Models'."
        case .bundledModelMissing(let searched):
            return "the bundled model was not found (looked in \(searched.joined(separator: ", "))); "
                + "pass --model M.onnx or set CAMKIT_MODEL_DIR to the folder holding efficientnet-lite0.onnx"
        case .unknownMethod(let name, let valid):
            return "unknown method '\(name)'; valid methods: \(valid.joined(separator: ", "))"
        case .invalidPreprocessing(let option, let value, let reason):
            return "invalid \(option) '\(value)': \(reason)"
        }
    }
}
