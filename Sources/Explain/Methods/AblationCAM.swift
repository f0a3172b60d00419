import TensorCore

/// Ablation-CAM: a channel's weight is the relative drop of the target score when the channel is
/// removed from the layer's output. No gradient.
///
/// Desai & Ramaswamy 2020, "Ablation-CAM: Visual Explanations for Deep Convolutional Network via
/// Gradient-free Localization" (WACV), eq. 3: `w_k = (y − y_k) / y`, with `y_k` the score with
/// channel k ablated. Matches pytorch-grad-cam `ablation_cam.py` + `ablation_layer.py`
/// (`ratio_channels_to_ablate = 1`), including its ablation values, which deviate from the paper:
/// - the channel is set to 0 if the image's minimum activation is exactly 0; otherwise to a very
///   negative value. The reference computes it as `torch.min(output) − 1e7` over the batch it is
///   editing row by row, so within one batch of ``batchSize`` channels the values **cascade**:
///   row r (channel `start + r`) gets `v_r = Float(v_{r−1} − 1e7)`, `v_{−1} = min(A_b)`, i.e.
///   min − 1e7, min − 2e7, …, restarting at every batch. CAMKit reproduces that exactly, so the
///   weights depend on ``batchSize`` like the reference's (default 32);
/// - for token/channels-last layers (ViT, Swin) the channel is the last axis of the raw output and
///   every token is ablated, class token included (`AblationLayerVit`).
///
/// Only the network after the layer runs (``ONNXGraph/ExecutionPlan/run(_:overriding:capturing:)``).
public struct AblationCAM: GradientFreeCAMMethod {
    public var name: String { "AblationCAM" }
    /// Ablated copies per forward pass (reference default 32); also the cascade period.
    public var batchSize: Int
    /// The amount subtracted from the minimum when it is not 0 (reference 1e7).
    public var ablationOffset: Float

    /// Creates the method.
    public init(batchSize: Int = 32, ablationOffset: Float = 1e7) {
        self.batchSize = batchSize
        self.ablationOffset = ablationOffset
    }

    public func forwardPassCount(channels: Int) -> Int { channels }

    public func contribution(activations: Tensor, probe: LayerProbe) throws -> LayerContribution {
        let raw = probe.rawActivations
        let b = raw.shape[0]
        let axis = probe.reshape.rawChannelAxis
        let k = raw.shape[axis]
        let sample = raw.count / b
        let inner = raw.shape[(axis + 1)...].reduce(1, *)          // elements after the channel axis
        let outer = raw.shape[1..<axis].reduce(1, *)               // per-sample elements before it
        let values = raw.scalars
        let bs = batchSize
        let offset = ablationOffset
        var weights = [Float](repeating: 0, count: b * k)
        for image in 0..<b {
            let slice = values[(image * sample)..<((image + 1) * sample)]
            let minimum = slice.min() ?? 0
            // Cascaded ablation values for rows 0..<bs of a batch.
            var cascade = [Float](repeating: 0, count: bs)
            if minimum != 0 {
                var v = minimum
                for r in 0..<bs {
                    v = v - offset
                    cascade[r] = v
                }
            }
            let scores = try probe.scoresReplacingLayer(count: k, image: image, batchSize: bs) { channel, dst in
                for i in 0..<sample { dst[i] = slice[slice.startIndex + i] }
                let value = cascade[channel % bs]
                for o in 0..<outer {
                    let base = (o * k + channel) * inner
                    for i in 0..<inner { dst[base + i] = value }
                }
            }
            let y = probe.originalScores[image]
            for c in 0..<k { weights[image * k + c] = (y - scores[c]) / y }
        }
        return .channelWeights(Tensor(shape: [b, k], scalars: weights))
    }
}
