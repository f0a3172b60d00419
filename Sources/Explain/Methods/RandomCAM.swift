import TensorCore

/// RandomCAM: uniformly random channel weights in [−1, 1), a sanity-check baseline for the
/// metrics (an explanation should beat it).
///
/// pytorch-grad-cam `random_cam.py` (`np.random.uniform(-1, 1, size=(B, K))`). CAMKit's weights
/// are **seeded** (SplitMix64), so a run is reproducible; they are not NumPy's numbers.
public struct RandomCAM: GradientCAMMethod {
    public var name: String { "RandomCAM" }
    /// The seed of the generator; the same seed gives the same weights for the same shapes.
    public var seed: UInt64
    /// Creates the method.
    public init(seed: UInt64 = 0) { self.seed = seed }

    public func contribution(activations: Tensor, gradients: Tensor) throws -> LayerContribution {
        var state = seed
        let n = activations.shape[0] * activations.shape[1]
        let w = (0..<n).map { _ -> Float in
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            let unit = Double(z >> 11) / Double(1 << 53)   // [0, 1)
            return Float(unit * 2 - 1)
        }
        return .channelWeights(Tensor(shape: [activations.shape[0], activations.shape[1]], scalars: w))
    }
}
