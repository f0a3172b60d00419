import Foundation
import TensorCore

/// Score-CAM: each channel, upsampled and normalised, masks the input; the target score of each
/// masked input, softmaxed over the channels, is the channel's weight. No gradient.
///
/// Wang et al. 2020, "Score-CAM: Score-Weighted Visual Explanations for Convolutional Neural
/// Networks", eq. 6–8 (`H_k = s(Up(A_k))`, `C(A_k) = f(X ∘ H_k) − f(X_b)`, weights softmaxed).
/// Matches pytorch-grad-cam `score_cam.py`:
/// - `Up` is `nn.UpsamplingBilinear2d` — bilinear with **align_corners = true** (unlike the final
///   map resize) — to the input size;
/// - `s` is per-channel min-max: `(U − min) / (max − min + 1e-8)`;
/// - the score is the target of `model(x ⊙ H_k)` itself (no baseline subtracted), and the weights
///   are `softmax_k` of those scores;
/// - masked inputs are run in batches of ``batchSize`` (reference 16). CAMKit pads the last batch
///   so that one specialised plan serves every batch; results are per-sample, so identical.
public struct ScoreCAM: GradientFreeCAMMethod {
    public var name: String { "ScoreCAM" }
    /// Masked inputs per forward pass (reference default 16).
    public var batchSize: Int
    /// The ε of the per-channel normalisation (reference 1e-8).
    public var epsilon: Float

    /// Creates the method.
    public init(batchSize: Int = 16, epsilon: Float = 1e-8) {
        self.batchSize = batchSize
        self.epsilon = epsilon
    }

    public func forwardPassCount(channels: Int) -> Int { channels }

    public func contribution(activations: Tensor, probe: LayerProbe) throws -> LayerContribution {
        let (b, k, h, w) = (activations.shape[0], activations.shape[1], activations.shape[2], activations.shape[3])
        let input = probe.input
        let nchw = probe.inputLayout == .nchw
        let (channels, height, width) = nchw ? (input.shape[1], input.shape[2], input.shape[3])
                                             : (input.shape[3], input.shape[1], input.shape[2])
        let plane = height * width
        let sample = channels * plane
        let eps = epsilon
        var weights = [Float](repeating: 0, count: b * k)
        let inputValues = input.scalars
        for image in 0..<b {
            let maps = activations.sliced(starts: [image], ends: [image + 1], axes: [0])   // (1, K, h, w)
            let scores = try probe.scoresOfInputs(count: k, image: image, batchSize: batchSize) { row, dst in
                let channel = maps.sliced(starts: [row], ends: [row + 1], axes: [1]).reshaped(to: [1, 1, h, w])
                var up = resizedBilinear(channel, height: height, width: width, alignCorners: true)
                up.withUnsafeMutableBufferPointer { u in
                    var lo = u[0], hi = u[0]
                    for v in u { lo = min(lo, v); hi = max(hi, v) }
                    let d = hi - lo + eps
                    for i in 0..<u.count { u[i] = (u[i] - lo) / d }
                }
                up.withUnsafeBufferPointer { u in
                    let base = image * sample
                    if nchw {
                        for c in 0..<channels {
                            for p in 0..<plane { dst[c * plane + p] = inputValues[base + c * plane + p] * u[p] }
                        }
                    } else {
                        for p in 0..<plane {
                            for c in 0..<channels { dst[p * channels + c] = inputValues[base + p * channels + c] * u[p] }
                        }
                    }
                }
            }
            // torch.nn.Softmax(dim=-1) over the channel scores, in Float32.
            let m = scores.max() ?? 0
            var e = scores.map { Foundation.exp($0 - m) }
            let s = e.reduce(0, +)
            for i in e.indices { e[i] /= s }
            for c in 0..<k { weights[image * k + c] = e[c] }
        }
        return .channelWeights(Tensor(shape: [b, k], scalars: weights))
    }
}
