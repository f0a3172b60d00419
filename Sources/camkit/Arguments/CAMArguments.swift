import ArgumentParser
import CAMKit

/// The CAM settings `explain` and `compare` share (vis_cam.py's flags).
struct CAMArguments: ParsableArguments {
    @Option(name: .customLong("target-layers"), parsing: .upToNextOption,
            help: "Layers to explain (PyTorch module paths such as layer4, node or tensor names); default: the last feature map before pooling.")
    var targetLayers: [String] = []

    @Option(name: .customLong("target-category"), parsing: .upToNextOption,
            help: "Class indices to explain, one output each; default: the top prediction.")
    var targetCategory: [Int] = []

    @Flag(name: .customLong("aug-smooth"), help: "Average over flips and scales (test-time augmentation).")
    var augSmooth = false

    @Flag(name: .customLong("eigen-smooth"), help: "Use the first principal component of the weighted activations.")
    var eigenSmooth = false

    @Flag(name: .customLong("vit-like"), help: "The target layer outputs transformer tokens (B, extra+N, C).")
    var vitLike = false

    @Option(name: .customLong("num-extra-tokens"), help: "Class/distillation tokens to drop with --vit-like (default: detected).")
    var numExtraTokens: Int?

    @Option(name: .customLong("batch-size"), help: "Forward-pass batch of ScoreCAM and AblationCAM (default: 16 and 32, as pytorch-grad-cam).")
    var batchSize: Int?

    func validate() throws {
        if let n = targetCategory.first(where: { $0 < 0 }) {
            throw ValidationError("--target-category \(n) is negative; class indices start at 0")
        }
        if let batchSize, batchSize < 1 { throw ValidationError("--batch-size must be at least 1") }
        if let numExtraTokens, numExtraTokens < 0 { throw ValidationError("--num-extra-tokens must not be negative") }
    }

    /// The method called `name`, with ``batchSize``.
    func method(named name: String) throws -> any CAMMethod {
        try CAMMethodName.method(named: name, batchSize: batchSize)
    }

    /// The explainer options these flags describe.
    var options: CAMOptions {
        var options = CAMOptions(augSmooth: augSmooth, eigenSmooth: eigenSmooth)
        if vitLike { options.reshape = .vit(extraTokens: numExtraTokens) }
        return options
    }
}
