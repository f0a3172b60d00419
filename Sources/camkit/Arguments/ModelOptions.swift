import ArgumentParser
import CAMKit
import Foundation

/// The options that choose a model and how photos are fed to it (shared by the subcommands that
/// read photos). Preprocessing flags override the model's sidecar; see
/// ``CAMKit/ImageClassifier/preprocessing(with:)`` for the order in which they apply.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: "An ONNX model file (default: the bundled EfficientNet-Lite0). A sidecar M.json beside M.onnx gives preprocessing and labels.")
    var model: String?

    @Option(name: .long, help: ArgumentHelp("Preprocessing preset: imagenet (torchvision: shorter side 256, crop 224, ImageNet mean/std), inception (scale to [-1, 1]), caffe (BGR, 0-255 minus the ImageNet means), none (RGB 0-1). Default: the model's sidecar, else imagenet.", valueName: "preset"))
    var preset: String?

    @Option(name: .customLong("input-size"), help: ArgumentHelp("Model input size H or HxW (default: the sidecar's, else the model's declared input, else the preset's).", valueName: "HxW"))
    var inputSize: String?

    @Option(name: .long, help: ArgumentHelp("Per-channel means a,b,c, in the preset's units (0-1; 0-255 for caffe) and channel order.", valueName: "a,b,c"))
    var mean: String?

    @Option(name: .long, help: ArgumentHelp("Per-channel standard deviations a,b,c (as --mean).", valueName: "a,b,c"))
    var std: String?

    @Option(name: .long, help: ArgumentHelp("How the photo reaches the input size: shorter-crop (resize the shorter side, centre crop), stretch, letterbox (fit, pad with gray).", valueName: "mode"))
    var resize: String?

    @Option(name: .long, help: ArgumentHelp("Input tensor layout nchw or nhwc (default: the sidecar's, else detected from the model's input shape).", valueName: "layout"))
    var layout: String?

    @Option(name: .customLong("max-pixels"), help: "Refuse photos with more pixels than this (read from the header, before decoding).")
    var maxPixels: Int = DecodingOptions.defaultPixelLimit

    /// Loads the chosen model.
    /// - Throws: a missing model file as ``CLIError`` (exit status 66), else the model's errors.
    func load() throws -> ImageClassifier {
        if let model {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: model, isDirectory: &isDirectory), !isDirectory.boolValue else {
                throw CLIError(description: "\(model): model file not found; check the path, or leave out --model for the bundled model",
                               status: .noInput)
            }
            return try ImageClassifier(contentsOf: URL(fileURLWithPath: model))
        }
        return try ImageClassifier.bundled()
    }

    /// How photos are decoded.
    var decoding: DecodingOptions { DecodingOptions(pixelLimit: maxPixels) }

    /// The preprocessing flags, parsed.
    /// - Throws: ``CLIError`` (usage) naming the flag and the valid values.
    func overrides() throws -> PreprocessingOverrides {
        var o = PreprocessingOverrides()
        if let preset {
            guard let p = Preprocessing.preset(named: preset) else {
                throw CLIError.usage("unknown preset '\(preset)'; valid presets: \(Preprocessing.presetNames.joined(separator: ", "))")
            }
            o.preset = p
        }
        if let inputSize {
            let parts = inputSize.lowercased().split(separator: "x", omittingEmptySubsequences: false)
            let values = parts.compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard (1...2).contains(parts.count), values.count == parts.count, values.allSatisfy({ (1...16384).contains($0) }) else {
                throw CLIError.usage("invalid --input-size '\(inputSize)'; give H or HxW in pixels, e.g. 224 or 384x288")
            }
            o.inputSize = values
        }
        o.mean = try mean.map { try Self.triple($0, flag: "--mean", example: "0.485,0.456,0.406", allowZero: true) }
        o.std = try std.map { try Self.triple($0, flag: "--std", example: "0.229,0.224,0.225", allowZero: false) }
        if let resize {
            guard let mode = ResizeStrategy(rawValue: resize.lowercased()) else {
                throw CLIError.usage("unknown --resize mode '\(resize)'; valid modes: \(ResizeStrategy.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            o.resize = mode
        }
        if let layout {
            switch layout.lowercased() {
            case "nchw": o.layout = .nchw
            case "nhwc": o.layout = .nhwc
            default: throw CLIError.usage("unknown --layout '\(layout)'; valid layouts: nchw, nhwc")
            }
        }
        return o
    }

    /// Checks the flags that need no model (run before loading one).
    func validate() throws {
        guard maxPixels >= 1 else { throw ValidationError("--max-pixels must be at least 1") }
    }

    /// Three comma-separated finite numbers.
    private static func triple(_ text: String, flag: String, example: String, allowZero: Bool) throws -> [Float] {
        let values = text.split(separator: ",").compactMap { Float($0.trimmingCharacters(in: .whitespaces)) }
        guard values.count == 3, text.split(separator: ",").count == 3, values.allSatisfy({ $0.isFinite && (allowZero || $0 != 0) }) else {
            throw CLIError.usage("invalid \(flag) '\(text)'; give 3 comma-separated\(allowZero ? "" : " non-zero") numbers, one per channel, e.g. \(example)")
        }
        return values
    }
}
