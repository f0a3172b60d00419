import ONNXGraph
import TensorCore

/// Guided Grad-CAM: Guided Backpropagation multiplied element-wise by the layer's Grad-CAM map
/// upsampled to the input's size.
///
/// Selvaraju et al. 2017, "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based
/// Localization", §3.1 ("Guided Grad-CAM"). Matches Captum `captum/attr/_core/guided_grad_cam.py`:
/// - the map is Captum's `LayerGradCam` with `relu_attributions=True` and ordinary gradients:
///   `ReLU(Σ_k mean_ij(∂S/∂A_k) · A_k)`, (B, 1, h, w), **not** min-max normalised (unlike
///   pytorch-grad-cam's Grad-CAM);
/// - `LayerAttribution.interpolate` upsamples it with `F.interpolate(mode=interpolate_mode)`:
///   ``Upsampling/nearest`` by default (Captum's default `interpolate_mode="nearest"`: source index
///   `⌊dst · in/out⌋` in Float32), or ``Upsampling/bilinear`` (`align_corners=False`);
/// - the result is ``GuidedBackprop``'s attribution times the map, broadcast over channels.
/// The layer's output must be a (B, K, h, w) feature map.
public struct GuidedGradCAM: AttributionMethod {
    /// How the Grad-CAM map is resized to the input (Captum's `interpolate_mode`).
    public enum Upsampling: String, Sendable {
        /// PyTorch's `nearest` (Captum's default).
        case nearest
        /// PyTorch's `bilinear` with `align_corners=False`.
        case bilinear
    }

    public var name: String { "GuidedGradCam" }
    /// The layer (module path, node or tensor name); `nil` chooses the default CAM layer
    /// (``DefaultTargetLayer``: the feature map that feeds global pooling).
    public var layer: String?
    /// The upsampling of the map (default ``Upsampling/nearest``, as Captum).
    public var upsampling: Upsampling

    /// Creates the method.
    public init(layer: String? = nil, upsampling: Upsampling = .nearest) {
        self.layer = layer
        self.upsampling = upsampling
    }

    public func attributions(of images: Tensor, context: AttributionContext) throws -> MethodAttributions {
        guard images.rank == 4 else {
            throw ExplainError.unsupportedInput(shape: images.shape, reason: "Guided Grad-CAM needs (B, C, H, W) or (B, H, W, C) images")
        }
        let model = context.model
        let sampleShape = Array(images.shape.dropFirst())
        let n = sampleShape.reduce(1, *)
        let tensor: String
        let layerName: String
        if let layer {
            tensor = try model.resolveLayer(layer)
            layerName = layer
        } else {
            let d = try DefaultTargetLayer.find(in: model, plan: try model.plan(forInputShapes: [images.shape]))
            tensor = d.tensor
            layerName = d.name
        }
        let layout = context.inputLayout
        let (channels, height, width) = layout == .nchw
            ? (sampleShape[0], sampleShape[1], sampleShape[2]) : (sampleShape[2], sampleShape[0], sampleShape[1])

        var out = try inputGradient(of: images, context: context, rule: .guided) { _, g in g }
        try images.withUnsafeBufferPointer { src in
            try context.forEachBatch(rowCount: images.shape[0], sampleShape: sampleShape, fill: { row, dst in
                for i in 0..<n { dst[i] = src[row * n + i] }
            }, body: { first, rows, batch in
                let pass = try context.gradientPass(batch, rows: rows, firstImage: { first + $0 }, rule: .standard,
                                                    withRespectTo: [tensor], capturing: [tensor])
                guard let a = pass.captures[tensor], let g = pass.gradients[tensor] else {
                    throw ExplainError.layerNotOnPath(layer: layerName, reason: "the model's outputs do not depend on it")
                }
                guard a.rank == 4, a.dtype == .float32 else {
                    throw ExplainError.noSpatialStructure(layer: layerName, shape: a.shape,
                                                          reason: "Guided Grad-CAM needs a (B, K, h, w) feature map")
                }
                let cams = gradCAM(activations: a, gradients: g, rows: rows)
                let (h, w) = (a.shape[2], a.shape[3])
                let up = upsampled(cams, rows: rows, from: (h, w), to: (height, width))
                out.withUnsafeMutableBufferPointer { o in
                    for r in 0..<rows {
                        let base = (first + r) * n
                        for y in 0..<height {
                            for x in 0..<width {
                                let m = up[(r * height + y) * width + x]
                                for c in 0..<channels {
                                    let i = layout == .nchw ? (c * height + y) * width + x : (y * width + x) * channels + c
                                    o[base + i] *= m
                                }
                            }
                        }
                    }
                }
            })
        }
        return MethodAttributions(attributions: out)
    }

    /// Captum `LayerGradCam(relu_attributions=True)`: `ReLU(Σ_k mean_ij(G_k) A_k)`, (rows, h, w) flat.
    private func gradCAM(activations a: Tensor, gradients g: Tensor, rows: Int) -> [Float] {
        let (k, h, w) = (a.shape[1], a.shape[2], a.shape[3])
        let plane = h * w
        var cams = [Float](repeating: 0, count: rows * plane)
        a.withUnsafeBufferPointer { ap in
            g.withUnsafeBufferPointer { gp in
                for r in 0..<rows {
                    for c in 0..<k {
                        let base = (r * k + c) * plane
                        var mean: Float = 0
                        for i in 0..<plane { mean += gp[base + i] }
                        mean /= Float(plane)
                        for i in 0..<plane { cams[r * plane + i] += mean * ap[base + i] }
                    }
                    for i in 0..<plane { cams[r * plane + i] = max(cams[r * plane + i], 0) }
                }
            }
        }
        return cams
    }

    /// PyTorch `F.interpolate` of (rows, 1, h, w) maps to (height, width).
    private func upsampled(_ cams: [Float], rows: Int, from: (Int, Int), to: (Int, Int)) -> [Float] {
        let (h, w) = from, (height, width) = to
        switch upsampling {
        case .bilinear:
            let t = resizedBilinear(Tensor(shape: [rows, 1, h, w], scalars: cams), height: height, width: width, alignCorners: false)
            return t.scalars
        case .nearest:
            // aten nearest_idx: identity for equal sizes, i/2 for exact doubling, else
            // min(⌊i · (in/out)⌋, in − 1) with the scale in Float32.
            func index(_ i: Int, _ input: Int, _ output: Int) -> Int {
                if input == output { return i }
                if output == 2 * input { return i >> 1 }
                let scale = Float(input) / Float(output)
                return min(Int((Float(i) * scale).rounded(.down)), input - 1)
            }
            let ys = (0..<height).map { index($0, h, height) }, xs = (0..<width).map { index($0, w, width) }
            var out = [Float](repeating: 0, count: rows * height * width)
            for r in 0..<rows {
                for y in 0..<height {
                    for x in 0..<width { out[(r * height + y) * width + x] = cams[(r * h + ys[y]) * w + xs[x]] }
                }
            }
            return out
        }
    }
}
