import Explain
import Imaging
import TensorCore

extension ImageClassifier {
    /// The `count` strongest channels of `layer` for one image of a preprocessed input.
    ///
    /// ```swift
    /// let classifier = try ImageClassifier.bundled()
    /// let input = classifier.preprocessing(photo).tensor
    /// let selection = try classifier.featureMaps(input, layer: "_blocks.5", top: 16)
    /// let grid = try selection.tiles(size: (56, 56)).grid()        // captions: selection.captions
    /// ```
    /// - Throws: the errors of ``Explain/FeatureMaps/top(_:of:image:)``.
    public func featureMaps(_ input: Tensor, layer: String, top count: Int = 16, image: Int = 0) throws -> FeatureMapSelection {
        try FeatureMaps(model: graph, layer: layer).top(count, of: input, image: image)
    }

    /// The kernels of a convolution (default: the model's first), for ``Explain/ConvKernels/rgbTiles()``
    /// and ``Explain/ConvKernels/greyTiles(outputChannels:normalization:)``.
    /// - Throws: the errors of ``Explain/ConvKernels/init(model:layer:inputShape:)``.
    public func convKernels(layer: String? = nil) throws -> ConvKernels {
        try ConvKernels(model: graph, layer: layer)
    }

    /// The deconvnet reconstruction (Zeiler & Fergus 2014) of `channel`'s strongest activation in
    /// `layer`, shaped like `input`.
    /// - Throws: the errors of ``Explain/DeconvnetReconstruction/reconstruct(_:)``.
    public func deconvnet(_ input: Tensor, layer: String, channel: Int,
                          seed: DeconvnetReconstruction.Seed = .activation) throws -> DeconvnetResult {
        try DeconvnetReconstruction(model: graph, layer: layer, channel: channel, seed: seed).reconstruct(input)
    }
}

extension FeatureMapSelection {
    /// The maps as coloured tiles with their channel numbers as captions
    /// (``Imaging/featureMapTiles(_:captions:tileSize:colormap:)``).
    /// - Parameters:
    ///   - size: tile height and width (bilinear enlargement); default the layer's own size.
    ///   - colormap: default ``Imaging/Colormap/viridis``.
    public func tiles(size: (height: Int, width: Int)? = nil, colormap: Colormap = .viridis) throws -> CaptionedTiles {
        try featureMapTiles(maps, captions: captions, tileSize: size, colormap: colormap)
    }
}

extension KernelTiles {
    /// The kernels as images, `scale` pixels per weight: RGB tiles for 3 input channels, else one
    /// grey tile per input channel (``Imaging/kernelTiles(_:captions:rgb:scale:)``).
    public func images(scale: Int = 8) throws -> CaptionedTiles {
        try kernelTiles(tiles, captions: captions, scale: scale)
    }
}

extension DeconvnetResult {
    /// One image's reconstruction as a picture, as Zeiler & Fergus show them: the (3, H, W) values
    /// min–max normalised together (one range for all channels) to 0–255, channel 0 red.
    /// - Parameters:
    ///   - image: the batch item (default 0).
    ///   - layout: the model input's layout (``Imaging/TensorLayout/nchw`` by default).
    /// - Throws: ``Imaging/AttributionRenderingError`` unless the reconstruction has 3 channels.
    public func picture(image: Int = 0, layout: TensorLayout = .nchw) throws -> RGBImage {
        let chw = try channelsFirst(image: image, layout: layout)
        guard chw.shape[0] == 3 else {
            throw AttributionRenderingError.unsupportedShape(chw.shape, expected: "3 channels for a picture; use heatmap()")
        }
        let (h, w) = (chw.shape[1], chw.shape[2])
        let v = chw.scalars
        let lo = v.min() ?? 0, hi = v.max() ?? 0
        var pixels = [UInt8](repeating: 0, count: h * w * 3)
        for c in 0..<3 {
            for i in 0..<(h * w) {
                pixels[3 * i + c] = hi > lo ? Colormap.level((v[c * h * w + i] - lo) / (hi - lo)) : 0
            }
        }
        return RGBImage(width: w, height: h, pixels: pixels)
    }

    /// One image's reconstruction as a Captum-style attribution heat map: channels reduced,
    /// normalised by the cumulative-sum threshold, coloured.
    /// - Parameters:
    ///   - image: the batch item (default 0).
    ///   - layout: the model input's layout.
    ///   - reduction: default ``Imaging/ChannelReduction/sum`` (Captum's).
    ///   - sign: default ``Imaging/AttributionSign/absoluteValue`` (Captum's).
    ///   - outlierPercent: default 1 (the 99th percentile); Captum's `visualize_image_attr` uses 2.
    ///   - colormap: default the sign's Captum colormap.
    public func heatmap(image: Int = 0, layout: TensorLayout = .nchw, reduction: ChannelReduction = .sum,
                        sign: AttributionSign = .absoluteValue, outlierPercent: Double = 1,
                        colormap: Colormap? = nil) throws -> RGBImage {
        let map = try reducedChannels(try channelsFirst(image: image, layout: layout), reduction)
        let normalized = try normalizedAttribution(map, sign: sign, outlierPercent: outlierPercent)
        return try attributionHeatmap(normalized, sign: sign, colormap: colormap)
    }

    /// (C, H, W) of one image.
    private func channelsFirst(image: Int, layout: TensorLayout) throws -> Tensor {
        let s = reconstruction.shape
        guard s.count == 4, image >= 0, image < s[0] else {
            throw ExplainError.invalidOption(name: "image index", value: "\(image)",
                                             reason: "the reconstruction has shape \(s); choose an image in 0..<\(s.first ?? 0)")
        }
        let one = reconstruction.sliced(starts: [image], ends: [image + 1], axes: [0])
        let chw = layout == .nhwc ? one.transposed(permutation: [0, 3, 1, 2]) : one
        return chw.reshaped(to: Array(chw.shape.dropFirst()))
    }
}
