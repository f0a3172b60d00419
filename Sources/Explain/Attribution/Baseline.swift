import Foundation
import TensorCore

/// The reference input of a path or perturbation method (Integrated Gradients' `baselines`).
public enum AttributionBaseline: Sendable {
    /// All zeros (Captum's default `baselines=None`/`0`). In a normalised input space zero is the
    /// dataset mean colour, not black.
    case zeros
    /// Every element set to one value.
    case constant(Float)
    /// The image itself blurred by a Gaussian of standard deviation `sigma` pixels over its height
    /// and width (each channel separately): `scipy.ndimage.gaussian_filter` with `truncate = 4`
    /// (kernel radius `⌊4σ + 0.5⌋`) and `mode = "reflect"` (edges mirrored, `d c b a | a b c d`).
    /// A large σ (e.g. a tenth of the image side or more) removes the features while keeping the
    /// colours (Sturmfels, Lundberg & Lee 2020, "Visualizing the Impact of Feature Attribution
    /// Baselines", Distill). Under a ``NoiseTunnel`` each noisy copy is blurred.
    case blurred(sigma: Float)
    /// An explicit baseline: one sample shaped like an image without the batch axis (or with a
    /// batch axis of 1), used for every image; or a full batch shaped like the input.
    case tensor(Tensor)

    /// The baseline of each of `images` (N, ...) as a tensor of the same shape.
    ///
    /// - Parameters:
    ///   - origins: for each image, the index of the input image it derives from (a full-batch
    ///     baseline is indexed by it).
    ///   - batch: the number of input images (a full-batch baseline must have that many).
    ///   - layout: where the spatial axes are (for `.blurred`).
    /// - Throws: ``ExplainError/shapeMismatch(name:shape:expected:)``,
    ///   ``ExplainError/invalidOption(name:value:reason:)`` for σ ≤ 0.
    func materialized(for images: Tensor, origins: [Int], batch: Int, layout: InputLayout) throws -> Tensor {
        let sampleShape = Array(images.shape.dropFirst())
        let n = sampleShape.reduce(1, *)
        switch self {
        case .zeros:
            return Tensor(zeros: images.shape)
        case .constant(let v):
            guard v.isFinite else {
                throw ExplainError.invalidOption(name: "baseline", value: "\(v)", reason: "must be a finite number")
            }
            return Tensor(repeating: v, shape: images.shape)
        case .blurred(let sigma):
            guard sigma > 0, sigma.isFinite else {
                throw ExplainError.invalidOption(name: "blur sigma", value: "\(sigma)",
                                                 reason: "must be a positive number of pixels")
            }
            guard images.rank == 4 else {
                throw ExplainError.unsupportedInput(shape: images.shape, reason: "a blurred baseline needs (B, C, H, W) or (B, H, W, C) images")
            }
            return gaussianBlurred(images, sigma: sigma, layout: layout)
        case .tensor(let t):
            guard t.dtype == .float32 else {
                throw ExplainError.shapeMismatch(name: "the baseline", shape: t.shape, expected: "it must hold Float32 values")
            }
            let expected = "a baseline must be shaped like one image \(sampleShape), like [1] + that, or like the whole input \([batch] + sampleShape)"
            let perImage: Bool
            if t.shape == sampleShape || t.shape == [1] + sampleShape {
                perImage = false
            } else if t.shape == [batch] + sampleShape {
                perImage = true
            } else {
                throw ExplainError.shapeMismatch(name: "the baseline", shape: t.shape, expected: expected)
            }
            var out = Tensor(uninitializedShape: images.shape)
            t.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { dst in
                    for j in 0..<images.shape[0] {
                        let s = perImage ? origins[j] * n : 0
                        for i in 0..<n { dst[j * n + i] = src[s + i] }
                    }
                }
            }
            return out
        }
    }
}

/// `scipy.ndimage.gaussian_filter(x, sigma)` over the two spatial axes of each channel
/// (`truncate = 4`, `mode = "reflect"`), in Float32 with Double accumulation.
func gaussianBlurred(_ images: Tensor, sigma: Float, layout: InputLayout) -> Tensor {
    let s = images.shape
    let (b, c, h, w) = layout == .nchw ? (s[0], s[1], s[2], s[3]) : (s[0], s[3], s[1], s[2])
    // scipy _gaussian_kernel1d: radius int(truncate * sd + 0.5), weights exp(-0.5 x² / σ²) / sum.
    let radius = Int(4 * Double(sigma) + 0.5)
    var kernel = (-radius...radius).map { x in Foundation.exp(-0.5 * Double(x * x) / (Double(sigma) * Double(sigma))) }
    let total = kernel.reduce(0, +)
    for i in kernel.indices { kernel[i] /= total }
    // scipy "reflect": d c b a | a b c d | d c b a (period 2n).
    func reflect(_ i: Int, _ n: Int) -> Int {
        let period = 2 * n
        var m = i % period
        if m < 0 { m += period }
        return m < n ? m : period - 1 - m
    }
    let hIndex = (0..<h).map { y in (-radius...radius).map { reflect(y + $0, h) } }
    let wIndex = (0..<w).map { x in (-radius...radius).map { reflect(x + $0, w) } }
    // Element (n, ch, y, x) offset in either layout.
    let (strideB, strideC, strideY, strideX) = layout == .nchw ? (c * h * w, h * w, w, 1) : (h * w * c, 1, w * c, c)
    var out = Tensor(uninitializedShape: s)
    images.withUnsafeBufferPointer { src in
        out.withUnsafeMutableBufferPointer { dst in
            var plane = [Double](repeating: 0, count: h * w)
            for n in 0..<b {
                for ch in 0..<c {
                    let base = n * strideB + ch * strideC
                    // Along the height (scipy filters axis by axis in order; the result is the same).
                    for y in 0..<h {
                        for x in 0..<w {
                            var acc = 0.0
                            for (k, yy) in hIndex[y].enumerated() { acc += kernel[k] * Double(src[base + yy * strideY + x * strideX]) }
                            plane[y * w + x] = Double(Float(acc))
                        }
                    }
                    for y in 0..<h {
                        for x in 0..<w {
                            var acc = 0.0
                            for (k, xx) in wIndex[x].enumerated() { acc += kernel[k] * plane[y * w + xx] }
                            dst[base + y * strideY + x * strideX] = Float(acc)
                        }
                    }
                }
            }
        }
    }
    return out
}
