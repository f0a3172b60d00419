import ArgumentParser
import CAMKit
import Foundation

/// `camkit attribute`: pixel attributions (Captum-style) of photos, rendered at model-input
/// resolution. The work is ``CAMKit/ImageClassifier/attributor(method:options:)`` and
/// ``Explain/Attributor/attribute(_:targets:)``; the picture is Imaging's
/// `reducedChannels` → `normalizedAttribution` → `attributionHeatmap` / `blendedAttributionOverlay`
/// (Captum's `visualize_image_attr`, Sources/Imaging/AttributionRendering.swift). This file only
/// parses, calls and reports.
///
/// Rendering defaults per method: gradient magnitudes (saliency, SmoothGrad and its variants) are
/// reduced by max |·| over channels (Simonyan et al. 2014, §3.1) and shown as absolute values;
/// signed methods whose attributions add up to a score change (input × gradient, integrated
/// gradients, occlusion) are summed over channels and shown with both signs on a diverging map;
/// guided backpropagation, deconvnet and guided Grad-CAM use Captum's default (channel sum,
/// absolute value).
struct Attribute: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attribute",
        abstract: "Pixel attributions (saliency, integrated gradients, occlusion, ...) of photos, at model-input resolution.",
        discussion: """
            Methods: \(AttributionMethodName.all.joined(separator: ", ")) (case and punctuation do not matter).
            The target is the top prediction unless --target-category is given (one class for all photos, or one per photo). \
            The attribution is reduced over colour channels, normalised so that --outlier-percent of the total |attribution| \
            saturates (default 1: the 99th percentile) and drawn over the model-input crop (--no-overlay: the heat map alone).

            Defaults: saliency and smoothgrad: max |grad| over channels, absolute values; inputxgradient, ig, occlusion: \
            channel sum, both signs on a diverging map (green positive, red negative); guidedbackprop, deconvnet, \
            guidedgradcam: channel sum, absolute. For ig the completeness error Σattr − (f(x) − f(baseline)) is printed.

            Example: camkit attribute Samples/cat-and-coffee.jpg --method ig --target-category 285 --steps 32

            \(ExitStatus.helpText)
            """)

    @Argument(help: "The photos (PNG or JPEG).")
    var images: [String] = []

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, help: ArgumentHelp("Attribution method: \(AttributionMethodName.all.joined(separator: ", ")).", valueName: "name"))
    var method: String = "saliency"

    @Option(name: .customLong("target-category"), parsing: .upToNextOption,
            help: "Class to explain: one for every photo, or one per photo; default: each photo's top prediction.")
    var targetCategory: [Int] = []

    @Option(name: .customLong("target-layers"), help: "guidedgradcam: the Grad-CAM layer (default: the last feature map before pooling).")
    var targetLayers: String?

    @Option(name: .long, help: "ig: integration steps (Captum's n_steps).")
    var steps: Int = 50

    @Option(name: .long, help: ArgumentHelp("ig: integration rule: \(IntegrationRule.allCases.map(\.rawValue).joined(separator: ", ")).", valueName: "rule"))
    var rule: String = "gausslegendre"

    @Option(name: .long, help: ArgumentHelp("ig: baseline: zeros (the mean colour after normalisation) or blurred (the photo blurred, see --blur-sigma).", valueName: "zeros|blurred"))
    var baseline: String = "zeros"

    @Option(name: .customLong("blur-sigma"), help: "ig with --baseline blurred: Gaussian sigma in pixels (default: a tenth of the input's longer side).")
    var blurSigma: Float?

    @Option(name: .long, help: "smoothgrad: noisy samples per photo.")
    var samples: Int = 50

    @Option(name: .long, help: "smoothgrad: noise standard deviation as a fraction of each input's value range.")
    var noise: Float = 0.15

    @Option(name: .long, help: "smoothgrad: random seed of the noise.")
    var seed: UInt64 = 0

    @Option(name: .long, help: "occlusion: side of the square occluding window in pixels.")
    var window: Int = 16

    @Option(name: .long, help: "occlusion: window stride in pixels.")
    var stride: Int = 8

    @Option(name: .customLong("batch-size"), help: "Rows (steps, samples, occluded copies) per network pass at most; passes are made equal where the row count allows (50 steps at 16: five passes of 10).")
    var batchSize: Int = AttributionOptions.defaultBatchSize

    @Option(name: .long, help: ArgumentHelp("Which values to show: absolute, all, positive, negative (default: per method).", valueName: "sign"))
    var sign: String?

    @Option(name: .long, help: ArgumentHelp("How channels become one map: sum, max-abs, sum-abs (default: per method).", valueName: "reduction"))
    var reduction: String?

    @Option(name: .customLong("outlier-percent"), help: "Share (%) of the total |attribution| that saturates the colours, 0-100 (Captum's visualize_image_attr uses 2).")
    var outlierPercent: Double = 1

    @Option(name: .long, help: ArgumentHelp("Colormap: \(Colormap.allCases.map(\.rawValue).joined(separator: ", ")) (default: Captum's for the sign).", valueName: "name"))
    var colormap: String?

    @Flag(name: .long, inversion: .prefixedNo, help: "Draw the map over the model-input crop (grey), or alone.")
    var overlay = true

    @Option(name: .customLong("save-path"), help: "Output image (.png or .jpg); with several photos a directory or a file name the photo's name is inserted into; default: <photo>-<method>.png beside the photo.")
    var savePath: String?

    @Option(name: .customLong("save-raw"), help: "Also write the raw float32 attributions (C, H, W) as .npy (several photos: as --save-path).")
    var saveRaw: String?

    @Flag(name: .long, help: "Print one JSON object per photo on stdout.")
    var json = false

    func validate() throws {
        if images.isEmpty { throw ValidationError("give at least one photo") }
    }

    func run() throws {
        try reportingErrors { try attribute() }
    }

    /// The rendering settings after defaults.
    struct Rendering {
        var sign: AttributionSign
        var reduction: ChannelReduction
        var colormap: Colormap?
    }

    private func attribute() throws {
        // Usage errors first (64), then the output folders (73), then photos and model; nothing is
        // written unless the attribution succeeded.
        let name = try AttributionMethodName.canonical(method)
        _ = try makeMethod(name, inputSide: nil)   // checks the method's settings before any work
        let rendering = try renderingSettings(for: name)
        guard (0...100).contains(outlierPercent) else {
            throw CLIError.usage("--outlier-percent \(outlierPercent) is outside 0...100 (default 1, the 99th percentile; Captum's is 2)")
        }
        guard batchSize >= 1 else { throw CLIError.usage("--batch-size \(batchSize) must be at least 1") }
        guard targetCategory.count <= 1 || targetCategory.count == images.count else {
            throw CLIError.usage("--target-category got \(targetCategory.count) classes for \(images.count) photos: give one class for all, or one per photo")
        }
        let outputs = try images.map { try outputURL(savePath, for: $0, default: "-\(name).png") }
        let raws = try images.map { photo in try saveRaw.map { try outputURL($0, for: photo, default: "-\(name).npy") } }
        for url in outputs + raws.compactMap({ $0 }) {
            let folder = url.deletingLastPathComponent().path
            try OutputPaths.checkWritable(directory: folder.isEmpty ? "." : folder, for: url.path,
                                          flag: url.pathExtension == "npy" ? "--save-raw" : "--save-path")
        }
        let overrides = try modelOptions.overrides()

        let classifier = try modelOptions.load()
        let preprocessing = try classifier.preprocessing(with: overrides)
        for (i, image) in images.enumerated() {
            let started = DispatchTime.now()
            let photo = try RGBImage(contentsOf: URL(fileURLWithPath: image), options: modelOptions.decoding)
            let prepared = preprocessing(photo)
            let side = Float(max(prepared.inputImage.width, prepared.inputImage.height))
            let attributor = try classifier.attributor(method: try makeMethod(name, inputSide: side),
                                                       options: AttributionOptions(batchSize: batchSize))
            let target: [CAMTarget]? = targetCategory.isEmpty ? nil
                : [.classScore(targetCategory.count == 1 ? targetCategory[0] : targetCategory[i])]
            let result = try attributor.attribute(prepared.tensor, targets: target)
            var attribution = result.attributions(ofImage: 0)
            let layout = attributor.options.inputLayout ?? InputLayout.detect(prepared.tensor.shape)
            if attribution.rank == 3 && layout == .nhwc {
                attribution = attribution.transposed(permutation: [2, 0, 1])
            }
            let map = try reducedChannels(attribution, rendering.reduction)
            let normalized = try normalizedAttribution(map, sign: rendering.sign, outlierPercent: outlierPercent)
            let picture = overlay
                ? try blendedAttributionOverlay(prepared.inputImage, normalized: normalized, sign: rendering.sign,
                                                colormap: rendering.colormap)
                : try attributionHeatmap(normalized, sign: rendering.sign, colormap: rendering.colormap)
            try picture.write(to: outputs[i])
            var written = [outputs[i].path]
            if let raw = raws[i] {
                try writeAtomically([UInt8](NPY.encode(attribution)), to: raw)
                written.append(raw.path)
            }
            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e6

            let predictions = classifier.topPredictions(logits: result.logits, k: 5).first ?? []
            let chosen = result.targetClasses.first.flatMap { $0 } ?? predictions.first?.index ?? 0
            let logits = result.logits.scalars
            let targetScore = chosen < logits.count ? logits[chosen] : .nan
            for warning in result.warnings { StandardError.write("camkit: \(image): warning: \(warning)\n") }
            if json {
                var record: [String: Any] = [
                    "input": image, "method": name, "method_class": result.method,
                    "target_class": chosen, "target_label": classifier.label(of: chosen),
                    "target_logit": targetScore,
                    "predictions": predictions.map {
                        ["index": $0.index, "label": $0.label, "logit": $0.logit, "probability": $0.probability] as [String: Any]
                    },
                    "attribution_shape": attribution.shape,
                    "width": picture.width, "height": picture.height,
                    "sign": rendering.sign.rawValue, "reduction": Self.name(of: rendering.reduction),
                    "colormap": (rendering.colormap ?? rendering.sign.defaultColormap).rawValue,
                    "outlier_percent": outlierPercent, "overlay": overlay,
                    "outputs": written,
                    "warnings": result.warnings.map { "\($0)" },
                    "timings_ms": ["total": elapsed],
                ]
                if let error = result.completenessError?.first, let difference = result.scoreDifference?.first {
                    record["completeness_error"] = error
                    record["score_difference"] = difference
                }
                let data = try JSONSerialization.data(withJSONObject: record, options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
            } else {
                let top = predictions.first.map { String(format: "top %d '%@' p %.4f", $0.index, $0.label, $0.probability) } ?? ""
                print("\(image): \(result.method) for class \(chosen) '\(classifier.label(of: chosen))' (logit \(String(format: "%.3f", targetScore))); \(top)")
                if let error = result.completenessError?.first, let difference = result.scoreDifference?.first {
                    let relative = difference != 0 ? String(format: " (%.2f%% of it)", Double(abs(error / difference)) * 100) : ""
                    print(String(format: "  completeness error Σattr − (f(x) − f(baseline)) = %.4g, f(x) − f(baseline) = %.4g", error, difference) + relative)
                }
                print("  wrote \(outputs[i].path) (\(picture.width)×\(picture.height))")
                if let raw = raws[i] { print("  wrote \(raw.path) \(attribution.shape)") }
            }
        }
    }

    /// The attribution method for a canonical name, with the command's settings.
    /// - Parameter inputSide: the model input's longer side (the default blur of a blurred
    ///   baseline); `nil` only to check the settings.
    private func makeMethod(_ name: String, inputSide: Float?) throws -> any AttributionMethod {
        switch name {
        case "saliency": return Saliency()
        case "inputxgradient": return InputXGradient()
        case "guidedbackprop": return GuidedBackprop()
        case "deconvnet": return Deconvolution()
        case "guidedgradcam": return GuidedGradCAM(layer: targetLayers)
        case "ig": return try integratedGradients(inputSide: inputSide ?? 224)
        case "occlusion":
            guard window >= 1, stride >= 1 else {
                throw CLIError.usage("--window \(window) and --stride \(stride) must be at least 1 pixel")
            }
            return Occlusion(window: window, stride: stride)
        default:
            guard samples >= 1 else { throw CLIError.usage("--samples \(samples) must be at least 1") }
            guard noise >= 0, noise.isFinite else { throw CLIError.usage("--noise \(noise) must be a non-negative fraction of the value range") }
            let kind: NoiseTunnel.Kind = name == "vargrad" ? .varGrad : name == "smoothgradsq" ? .smoothGradSquared : .smoothGrad
            return NoiseTunnel(wrapping: Saliency(), kind: kind, samples: samples,
                               noise: .gaussian(.fractionOfRange(noise), seed: seed))
        }
    }

    private func integratedGradients(inputSide side: Float) throws -> IntegratedGradients {
        guard steps >= 1 else { throw CLIError.usage("--steps \(steps) must be at least 1 (Captum's default is 50)") }
        let ruleKey = rule.lowercased().filter { $0.isLetter }
        guard let integration = IntegrationRule.allCases.first(where: { $0.rawValue.filter { $0.isLetter } == ruleKey }) else {
            throw CLIError.usage("unknown integration rule '\(rule)'; valid rules: \(IntegrationRule.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let base: AttributionBaseline
        switch baseline.lowercased() {
        case "zeros", "zero": base = .zeros
        case "blurred", "blur":
            if let blurSigma, !(blurSigma > 0 && blurSigma.isFinite) {
                throw CLIError.usage("--blur-sigma \(blurSigma) must be a positive number of pixels")
            }
            // A tenth of the longer side removes the features but keeps the colours (Sturmfels et al. 2020).
            base = .blurred(sigma: blurSigma ?? side / 10)
        default:
            throw CLIError.usage("unknown baseline '\(baseline)'; valid baselines: zeros, blurred")
        }
        return IntegratedGradients(steps: steps, rule: integration, baseline: base)
    }

    /// The per-method rendering defaults, overridden by `--sign`, `--reduction`, `--colormap`.
    private func renderingSettings(for name: String) throws -> Rendering {
        var settings: Rendering
        switch name {
        case "saliency", "smoothgrad", "smoothgradsq", "vargrad": settings = Rendering(sign: .absoluteValue, reduction: .maxAbsolute)
        case "inputxgradient", "ig", "occlusion": settings = Rendering(sign: .all, reduction: .sum)
        default: settings = Rendering(sign: .absoluteValue, reduction: .sum)
        }
        if let sign {
            switch sign.lowercased().filter({ $0.isLetter }) {
            case "absolute", "absolutevalue", "abs": settings.sign = .absoluteValue
            case "all": settings.sign = .all
            case "positive": settings.sign = .positive
            case "negative": settings.sign = .negative
            default: throw CLIError.usage("unknown sign '\(sign)'; valid signs: absolute, all, positive, negative")
            }
        }
        if let reduction {
            switch reduction.lowercased().filter({ $0.isLetter }) {
            case "sum": settings.reduction = .sum
            case "maxabs", "max": settings.reduction = .maxAbsolute
            case "sumabs": settings.reduction = .sumAbsolute
            default: throw CLIError.usage("unknown reduction '\(reduction)'; valid reductions: sum, max-abs, sum-abs")
            }
        }
        if let colormap {
            guard let palette = Colormap(rawValue: colormap.lowercased()) else {
                throw CLIError.usage("unknown colormap '\(colormap)'; valid colormaps: \(Colormap.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            settings.colormap = palette
        }
        return settings
    }

    static func name(of reduction: ChannelReduction) -> String {
        switch reduction {
        case .sum: return "sum"
        case .maxAbsolute: return "max-abs"
        case .sumAbsolute: return "sum-abs"
        }
    }

    /// The output for one photo: `path` itself for one photo; for several, inside `path` when it is
    /// a directory, else `<path minus extension>.<photo>.<ext>`; without `path`,
    /// `<photo><suffix>` beside the photo.
    private func outputURL(_ path: String?, for image: String, default suffix: String) throws -> URL {
        let base = URL(fileURLWithPath: image).deletingPathExtension().lastPathComponent
        guard let path else {
            return URL(fileURLWithPath: image).deletingLastPathComponent().appendingPathComponent(base + suffix)
        }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            return URL(fileURLWithPath: path).appendingPathComponent(base + suffix)
        }
        let url = URL(fileURLWithPath: path)
        guard images.count > 1 else { return url }
        let ext = url.pathExtension.isEmpty ? String(suffix.split(separator: ".").last ?? "png") : url.pathExtension
        return url.deletingPathExtension().appendingPathExtension("\(base).\(ext)")
    }
}

/// Attribution methods by the names users type: case and punctuation do not matter
/// (`IntegratedGradients`, `integrated-gradients` and `IG` are one method).
enum AttributionMethodName {
    /// The canonical names, in the order `--help` lists them.
    static let all = ["saliency", "inputxgradient", "guidedbackprop", "deconvnet", "guidedgradcam", "ig",
                      "smoothgrad", "smoothgradsq", "vargrad", "occlusion"]

    /// The canonical name a user's name denotes.
    /// - Throws: a usage ``CLIError`` listing the valid names.
    static func canonical(_ name: String) throws -> String {
        let key = name.lowercased().replacingOccurrences(of: "²", with: "sq").filter { $0.isLetter || $0.isNumber }
        switch key {
        case "saliency", "gradient", "vanillagradient": return "saliency"
        case "inputxgradient", "inputgradient", "inputtimesgradient", "gradientxinput", "gradientinput": return "inputxgradient"
        case "guidedbackprop", "guidedbackpropagation": return "guidedbackprop"
        case "deconvnet", "deconvolution", "deconv": return "deconvnet"
        case "guidedgradcam": return "guidedgradcam"
        case "ig", "integratedgradients", "integratedgradient": return "ig"
        case "smoothgrad", "noisetunnel": return "smoothgrad"
        case "smoothgradsq", "smoothgradsquared", "smoothgrad2", "sg2", "sgsq": return "smoothgradsq"
        case "vargrad": return "vargrad"
        case "occlusion": return "occlusion"
        default:
            throw CLIError.usage("unknown attribution method '\(name)'; valid methods: \(all.joined(separator: ", "))")
        }
    }
}
