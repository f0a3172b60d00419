import ONNXGraph
import TensorCore

// The shared kernel of the one-gradient methods (Saliency, Input×Gradient, Guided Backprop,
// Deconvolution): the gradient of each image's target score with respect to that image, with a
// chosen ReLU rule, then an element-wise transform of (input, gradient).

/// The gradient of each image's target score with respect to the image, (N, ...) like `images`,
/// run in batches of ``AttributionContext/batchSize`` images.
func inputGradient(of images: Tensor, context: AttributionContext, rule: ActivationGradientRule,
                   transform: (_ input: Float, _ gradient: Float) -> Float) throws -> Tensor {
    let sampleShape = Array(images.shape.dropFirst())
    let n = sampleShape.reduce(1, *)
    var out = Tensor(uninitializedShape: images.shape)
    try images.withUnsafeBufferPointer { src in
        try out.withUnsafeMutableBufferPointer { dst in
            try context.inputGradients(rowCount: images.shape[0], sampleShape: sampleShape, rule: rule,
                                       imageOfRow: { $0 }, fill: { row, sample in
                for i in 0..<n { sample[i] = src[row * n + i] }
            }, consume: { row, g, _ in
                let base = row * n
                for i in 0..<n { dst[base + i] = transform(src[base + i], g[i]) }
            })
        }
    }
    return out
}
