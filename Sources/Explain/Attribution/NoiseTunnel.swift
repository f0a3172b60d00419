import Foundation
import TensorCore

/// A noise tunnel: the wrapped method's attributions averaged over noisy copies of each image —
/// SmoothGrad, SmoothGrad² and VarGrad over any ``AttributionMethod`` (Smooth IG when the wrapped
/// method is ``IntegratedGradients``).
///
/// Smilkov et al. 2017, "SmoothGrad: removing noise by adding noise", eq. (2) (`M̂(x) = 1/n Σ
/// M(x + N(0, σ²))`, σ given as a fraction of `x_max − x_min`, §3.2); SmoothGrad² and VarGrad as
/// in Adebayo et al. 2018, "Local Explanation Methods for Deep Neural Networks Lack Sensitivity to
/// Parameter Values" and Hooker et al. 2019 ("SmoothGrad-Squared"). Matches Captum
/// `captum/attr/_core/noise_tunnel.py`: with `a_s` the wrapped method's attribution of
/// `x + noise_s`, smoothgrad = `mean_s a_s`, smoothgrad_sq = `mean_s a_s²`, vargrad =
/// `mean_s a_s² − (mean_s a_s)²`. Baselines are not perturbed (Captum's
/// `draw_baseline_from_distrib=False`); a blurred baseline is the blur of each noisy copy.
///
/// Noise: ``NoiseSource/gaussian(_:seed:)`` draws it from CAMKit's seeded generator
/// (``GaussianNoise``; not PyTorch's numbers, so compare with Captum statistically), or
/// ``NoiseSource/explicit(_:)`` takes it from the caller (exact parity with a Captum run whose
/// noise is known). Noisy copies go through the wrapped method in chunks of about
/// ``AttributionOptions/batchSize`` images, so memory stays bounded. ``AttributionResult/completenessError``
/// of a tunnel over Integrated Gradients is the mean over samples of each noisy copy's error.
public struct NoiseTunnel: AttributionMethod {
    /// How the samples' attributions are combined (Captum's `nt_type`).
    public enum Kind: String, Sendable, CaseIterable {
        /// `mean_s a_s` (`smoothgrad`).
        case smoothGrad = "smoothgrad"
        /// `mean_s a_s²` (`smoothgrad_sq`).
        case smoothGradSquared = "smoothgrad_sq"
        /// `mean_s a_s² − (mean_s a_s)²` (`vargrad`).
        case varGrad = "vargrad"
    }

    public var name: String { "NoiseTunnel(\(wrapped.name), \(kind.rawValue))" }
    /// The method applied to each noisy copy.
    public var wrapped: any AttributionMethod
    /// How samples are combined.
    public var kind: Kind
    /// Noisy copies per image (Captum's `nt_samples`); ignored for explicit noise, whose first axis
    /// gives the count.
    public var samples: Int
    /// Where the noise comes from.
    public var noise: NoiseSource

    /// Creates a noise tunnel.
    /// - Parameters:
    ///   - wrapped: e.g. ``Saliency`` (SmoothGrad), ``IntegratedGradients`` (Smooth IG).
    ///   - kind: default ``Kind/smoothGrad``.
    ///   - samples: noisy copies per image (default 50; Captum's default is 5, the SmoothGrad paper
    ///     uses 50).
    ///   - noise: default Gaussian noise with σ = 15 % of each image's value range, seed 0.
    public init(wrapping wrapped: any AttributionMethod, kind: Kind = .smoothGrad, samples: Int = 50,
                noise: NoiseSource = .gaussian(.fractionOfRange(0.15), seed: 0)) {
        self.wrapped = wrapped
        self.kind = kind
        self.samples = samples
        self.noise = noise
    }

    /// SmoothGrad over Integrated Gradients ("Smooth IG", Smilkov et al. 2017 §4 applies SmoothGrad
    /// to IG): a noise tunnel wrapping ``IntegratedGradients``.
    public static func smoothIntegratedGradients(_ ig: IntegratedGradients = IntegratedGradients(), kind: Kind = .smoothGrad,
                                                 samples: Int = 50,
                                                 noise: NoiseSource = .gaussian(.fractionOfRange(0.15), seed: 0)) -> NoiseTunnel {
        NoiseTunnel(wrapping: ig, kind: kind, samples: samples, noise: noise)
    }

    public func attributions(of images: Tensor, context: AttributionContext) throws -> MethodAttributions {
        let count = images.shape[0]
        let sampleShape = Array(images.shape.dropFirst())
        let n = sampleShape.reduce(1, *)
        let sampleCount: Int
        switch noise {
        case .explicit(let t):
            guard t.dtype == .float32, t.rank == images.rank + 1, Array(t.shape.dropFirst()) == images.shape, t.shape[0] >= 1 else {
                throw ExplainError.shapeMismatch(name: "the explicit noise", shape: t.shape,
                                                 expected: "it must be (samples, \(images.shape.map(String.init).joined(separator: ", "))): noise[s, b] is added to image b")
            }
            sampleCount = t.shape[0]
        case .gaussian(let level, _):
            guard samples >= 1 else {
                throw ExplainError.invalidOption(name: "samples", value: "\(samples)", reason: "a noise tunnel needs at least 1 noisy sample per image")
            }
            try level.validate()
            sampleCount = samples
        }
        // Per image σ for generated noise.
        let sigmas: [Float] = try images.withUnsafeBufferPointer { x in
            guard case .gaussian(let level, _) = noise else { return [] }
            return try (0..<count).map { j in try level.standardDeviation(for: UnsafeBufferPointer(rebasing: x[(j * n)..<((j + 1) * n)])) }
        }
        // Chunks of samples: at most about batchSize noisy images per call of the wrapped method,
        // equal chunks where the sample count allows (AttributionContext.rowsPerPass).
        let threads = ComputeSettings.threadCount
        var divisor = max(count, 1), t = threads
        while t != 0 { (divisor, t) = (t, divisor % t) }  // gcd(count, threads)
        let perChunk = AttributionContext.rowsPerPass(rowCount: sampleCount, batchSize: max(1, context.batchSize / max(count, 1)),
                                                      threads: threads / divisor)
        var sum = [Double](repeating: 0, count: images.count)
        var sumSquares = [Double](repeating: 0, count: images.count)
        var errorSums = [Double](repeating: 0, count: count)
        var differenceSums = [Double](repeating: 0, count: count)
        var hasErrors = false
        var start = 0
        while start < sampleCount {
            let k = min(perChunk, sampleCount - start)
            // Noisy copy (j, s) at row j·k + (s − start), Captum's row order within a chunk.
            var noisy = Tensor(uninitializedShape: [count * k] + sampleShape)
            images.withUnsafeBufferPointer { x in
                noisy.withUnsafeMutableBufferPointer { dst in
                    guard let source = x.baseAddress, let destination = dst.baseAddress else { return }
                    // One row per noisy copy, across threads (each row's noise depends only on
                    // its (seed, image, sample), so the result does not depend on the split).
                    parallelFor(count * k) { rows in
                        for row in rows {
                            let j = row / k, s = start + row % k
                            let out = destination + row * n, image = source + j * n
                            switch noise {
                            case .explicit(let t):
                                t.withUnsafeBufferPointer { e in
                                    let base = (s * count + j) * n
                                    for i in 0..<n { out[i] = image[i] + e[base + i] }
                                }
                            case .gaussian(_, let seed):
                                var g = GaussianNoise(seed: seed, stream: UInt64(context.origins[j]), sample: UInt64(s))
                                let sigma = sigmas[j]
                                for i in 0..<n { out[i] = image[i] + sigma * g.next() }
                            }
                        }
                    }
                }
            }
            let sub = context.deriving(sources: (0..<(count * k)).map { $0 / k })
            let part = try wrapped.attributions(of: noisy, context: sub)
            guard part.attributions.shape == noisy.shape else {
                throw ExplainError.invalidOption(name: "method", value: wrapped.name,
                                                 reason: "returned attributions of shape \(part.attributions.shape) for \(noisy.shape)")
            }
            part.attributions.withUnsafeBufferPointer { a in
                sum.withUnsafeMutableBufferPointer { sum in
                    sumSquares.withUnsafeMutableBufferPointer { sumSquares in
                        guard let a = a.baseAddress, let sum = sum.baseAddress, let sumSquares = sumSquares.baseAddress else { return }
                        // Split over the elements of an image; rows are added in order, so the
                        // sums do not depend on the thread count.
                        parallelFor(n, minimumChunk: 4096) { elements in
                            for row in 0..<(count * k) {
                                let j = row / k
                                let source = a + row * n, total = sum + j * n, squares = sumSquares + j * n
                                for i in elements {
                                    let v = Double(source[i])
                                    total[i] += v
                                    squares[i] += v * v
                                }
                            }
                        }
                    }
                }
            }
            if let e = part.completenessError, let d = part.scoreDifference {
                hasErrors = true
                for row in 0..<(count * k) {
                    errorSums[row / k] += Double(e[row])
                    differenceSums[row / k] += Double(d[row])
                }
            }
            start += k
        }
        let m = Double(sampleCount)
        var out = Tensor(uninitializedShape: images.shape)
        out.withUnsafeMutableBufferPointer { o in
            for i in 0..<o.count {
                let mean = sum[i] / m, meanSquare = sumSquares[i] / m
                switch kind {
                case .smoothGrad: o[i] = Float(mean)
                case .smoothGradSquared: o[i] = Float(meanSquare)
                case .varGrad: o[i] = Float(meanSquare - mean * mean)
                }
            }
        }
        return MethodAttributions(attributions: out,
                                  completenessError: hasErrors ? errorSums.map { Float($0 / m) } : nil,
                                  scoreDifference: hasErrors ? differenceSums.map { Float($0 / m) } : nil)
    }
}

/// Where a ``NoiseTunnel``'s noise comes from.
public enum NoiseSource: Sendable {
    /// Gaussian noise of the given level from CAMKit's seeded generator (``GaussianNoise``). The
    /// noise of image `b`, sample `s` depends only on (seed, b, s): not on the batch size.
    case gaussian(NoiseLevel, seed: UInt64)
    /// The noise itself, (samples, B, ...): `noise[s, b]` is added to image `b` for sample `s`.
    case explicit(Tensor)
}

/// The standard deviation of a ``NoiseTunnel``'s Gaussian noise.
public enum NoiseLevel: Sendable {
    /// σ = fraction × (max − min) of each image's values (all channels) — SmoothGrad's "noise
    /// level" (the paper finds 10–20 % works well).
    case fractionOfRange(Float)
    /// σ in input units, the same for every image (Captum's `stdevs`).
    case absolute(Float)

    func validate() throws {
        switch self {
        case .fractionOfRange(let f):
            guard f >= 0, f.isFinite else {
                throw ExplainError.invalidOption(name: "noise level", value: "\(f)", reason: "the fraction of the input range must be ≥ 0")
            }
        case .absolute(let s):
            guard s >= 0, s.isFinite else {
                throw ExplainError.invalidOption(name: "noise standard deviation", value: "\(s)", reason: "must be ≥ 0")
            }
        }
    }

    func standardDeviation(for image: UnsafeBufferPointer<Float>) throws -> Float {
        switch self {
        case .absolute(let s): return s
        case .fractionOfRange(let f):
            guard let lo = image.min(), let hi = image.max() else { return 0 }
            return f * (hi - lo)
        }
    }
}

/// CAMKit's seeded standard normal generator: SplitMix64 (Steele, Lea & Flood 2014) feeding the
/// Box–Muller transform (Box & Muller 1958), in Double, rounded to Float32.
///
/// A stream is determined by (seed, stream, sample); draws are independent standard normals (mean 0,
/// variance 1; tested). They are not PyTorch's or NumPy's numbers.
public struct GaussianNoise: Sendable {
    private var state: UInt64
    private var spare: Double?

    /// Creates a generator for one (seed, stream, sample) triple.
    public init(seed: UInt64, stream: UInt64 = 0, sample: UInt64 = 0) {
        var s = seed
        // Mix the three parts through SplitMix64 so that neighbouring streams are unrelated.
        s = GaussianNoise.mix(s &+ 0x9E37_79B9_7F4A_7C15 &* (stream &+ 1))
        s = GaussianNoise.mix(s &+ 0xD1B5_4A32_D192_ED03 &* (sample &+ 1))
        state = s
    }

    private static func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    private mutating func nextUnit() -> Double {
        state &+= 0x9E37_79B9_7F4A_7C15
        return Double(GaussianNoise.mix(state) >> 11) / Double(1 << 53)   // [0, 1)
    }

    /// The next standard normal draw.
    public mutating func next() -> Float {
        if let s = spare {
            spare = nil
            return Float(s)
        }
        let u1 = 1 - nextUnit()            // (0, 1]: log is finite
        let u2 = nextUnit()
        let r = (-2 * Foundation.log(u1)).squareRoot()
        spare = r * Foundation.sin(2 * Double.pi * u2)
        return Float(r * Foundation.cos(2 * Double.pi * u2))
    }
}
