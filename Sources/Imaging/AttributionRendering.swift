// Rendering of pixel attributions (saliency, integrated gradients, deconvnet reconstructions, …)
// and of feature-map / kernel tile grids.
//
// The attribution pipeline is Captum's `captum/attr/_utils/visualization.py` (Captum 0.9):
//   visualize_image_attr: an (H, W, C) attribution is reduced by `np.sum(attr, axis=2)`;
//   _normalize_attr(attr, sign, outlier_perc):
//       all → attr, positive → max(attr, 0), negative → min(attr, 0), absolute_value → |attr|;
//       threshold = _cumulative_sum_threshold(|attr|, 100 − outlier_perc)
//                 = the smallest sorted |value| whose cumulative sum reaches
//                   (outlier_perc)% short of the total (np.cumsum in float32, then ≥ total · 0.01 · p);
//       negative: threshold = −threshold;  result = clip(attr / threshold, −1, 1).
//   The colours are matplotlib's: imshow(norm_attr, cmap, vmin, vmax) with vmin, vmax = (−1, 1)
//   for "all" and (0, 1) otherwise; default cmaps RdWhGn / Greens / Reds / Blues by sign.
//   blended_heat_map: imshow(mean(image, axis=2), cmap="gray") under the heat map drawn with
//   alpha = alpha_overlay (0.5).
// CAMKit's default `outlierPercent` is 1 — the 99th percentile that issue 4 asks for: values
// above the threshold at 99 % of the cumulative |attr| saturate. Captum's `visualize_image_attr`
// default is `outlier_perc=2` (the 98th): pass `outlierPercent: 2` to reproduce Captum's pictures
// exactly (the parity tests pass their percentage explicitly). Note that Captum's "percentile" is
// of the cumulative sum of |attr|, not of the values.
//
// Tested against Captum's own `_normalize_attr` and matplotlib's tables and lookups
// (Scripts/fixtures/make_featvis_fixtures.py → Tests/ImagingTests/Fixtures/attribution).
// Deliberate differences: where Captum asserts on a zero threshold (an all-zero map, or "negative"
// of a map without negative values) CAMKit returns zeros; the blend is computed per pixel in
// Float32 (matplotlib composites RGBA through Agg, equal up to one level of rounding).

import TensorCore

/// Which attributions a rendering keeps (Captum's `VisualizeSign`).
public enum AttributionSign: String, Sendable, Hashable, CaseIterable {
    /// Positive and negative values, on a diverging colormap (`vmin = −1`, `vmax = 1`).
    case all
    /// Positive values only (negatives shown as 0).
    case positive
    /// Negative values only, shown by magnitude.
    case negative
    /// |attr| (Captum's default).
    case absoluteValue = "absolute_value"

    /// Captum's default colormap for the sign: RdWhGn, Greens, Reds, Blues.
    public var defaultColormap: Colormap {
        switch self {
        case .all: return .rdWhGn
        case .positive: return .greens
        case .negative: return .reds
        case .absoluteValue: return .blues
        }
    }

    /// The normalised value range the colormap spans: −1...1 for ``all``, else 0...1.
    public var displayRange: (vmin: Float, vmax: Float) { self == .all ? (-1, 1) : (0, 1) }
}

/// How a (C, H, W) attribution becomes one (H, W) map.
public enum ChannelReduction: Sendable, Hashable {
    /// Σ_c attr_c (Captum's `visualize_image_attr`, `np.sum(attr, axis=2)`): keeps the sign.
    case sum
    /// max_c |attr_c| (Simonyan et al. 2014, "Deep Inside Convolutional Networks", §3.1: the
    /// saliency map of a colour image); never negative.
    case maxAbsolute
    /// Σ_c |attr_c|.
    case sumAbsolute
}

/// Reduces one attribution (C, H, W) — or (1, C, H, W) — to an (H, W) map.
/// - Parameters:
///   - attribution: Float32 (C, H, W), channels first (CAMKit's NCHW attributions, one image).
///   - reduction: see ``ChannelReduction``; default ``ChannelReduction/sum`` (Captum's).
/// - Returns: (H, W) Float32.
/// - Throws: ``AttributionRenderingError/unsupportedShape(_:expected:)`` for other ranks.
public func reducedChannels(_ attribution: Tensor, _ reduction: ChannelReduction = .sum) throws -> Tensor {
    var s = attribution.shape
    if s.count == 4 && s[0] == 1 { s.removeFirst() }
    guard s.count == 3, attribution.dtype == .float32 else {
        throw AttributionRenderingError.unsupportedShape(attribution.shape, expected: "(C, H, W) or (1, C, H, W) Float32")
    }
    let (c, plane) = (s[0], s[1] * s[2])
    var out = Tensor(zeros: [s[1], s[2]])
    attribution.withUnsafeBufferPointer { a in
        out.withUnsafeMutableBufferPointer { o in
            for i in 0..<plane {
                var acc: Float = 0
                switch reduction {
                case .sum: for k in 0..<c { acc += a[k * plane + i] }
                case .sumAbsolute: for k in 0..<c { acc += abs(a[k * plane + i]) }
                case .maxAbsolute: for k in 0..<c { acc = max(acc, abs(a[k * plane + i])) }
                }
                o[i] = acc
            }
        }
    }
    return out
}

/// Captum's `_cumulative_sum_threshold(values, percentile)`: the smallest value of the sorted
/// non-negative `values` at which the running (Float32) sum reaches `percentile` % of the total.
/// - Precondition: `values` is non-empty and non-negative; `percentile` in 0...100.
public func cumulativeSumThreshold(_ values: [Float], percentile: Double) -> Float {
    precondition(!values.isEmpty && (0...100).contains(percentile), "cumulativeSumThreshold needs values and 0...100")
    let sorted = values.sorted()
    // np.cumsum over float32 accumulates in float32, in order.
    var cumulative = [Float](repeating: 0, count: sorted.count)
    var running: Float = 0
    for (i, v) in sorted.enumerated() {
        running += v
        cumulative[i] = running
    }
    // `cum_sums[-1] * 0.01 * percentile`: a float32 scalar times Python floats stays float32
    // (NumPy 2, NEP 50: the Python floats are cast to float32 first).
    let bound = cumulative[cumulative.count - 1] * Float(0.01) * Float(percentile)
    let index = cumulative.firstIndex { $0 >= bound } ?? sorted.count - 1
    return sorted[index]
}

/// Captum's `_normalize_attr(attr, sign, outlier_perc)`: keeps the values of `sign`, divides by
/// the cumulative-sum threshold of their magnitudes and clips to [−1, 1] (negative: to [0, 1], by
/// magnitude).
///
/// - Parameters:
///   - map: Float32 (H, W) (any shape: it is treated as a flat set of values).
///   - sign: default ``AttributionSign/absoluteValue`` (Captum's).
///   - outlierPercent: the share (in %) of the total |attr| above the threshold that saturates;
///     default 1 (the 99th percentile). Captum's `visualize_image_attr` defaults to
///     `outlier_perc=2` (the 98th): pass 2 to reproduce its output.
/// - Returns: the normalised map, same shape: in [−1, 1] for ``AttributionSign/all``, else [0, 1].
///   A map with nothing of the chosen sign gives zeros (Captum asserts instead).
/// - Throws: ``AttributionRenderingError/invalidOutlierPercent(_:)`` outside 0...100.
public func normalizedAttribution(_ map: Tensor, sign: AttributionSign = .absoluteValue,
                                  outlierPercent: Double = 1) throws -> Tensor {
    guard (0...100).contains(outlierPercent) else { throw AttributionRenderingError.invalidOutlierPercent(outlierPercent) }
    guard map.count > 0 else { return map }
    var kept = map.scalars
    switch sign {
    case .all: break
    case .positive: for i in kept.indices { kept[i] = max(kept[i], 0) }
    case .negative: for i in kept.indices { kept[i] = min(kept[i], 0) }
    case .absoluteValue: for i in kept.indices { kept[i] = abs(kept[i]) }
    }
    var threshold = cumulativeSumThreshold(kept.map(abs), percentile: 100 - outlierPercent)
    guard threshold != 0 else { return Tensor(zeros: map.shape) }
    if sign == .negative { threshold = -threshold }
    return Tensor(shape: map.shape, scalars: kept.map { min(1, max(-1, $0 / threshold)) })
}

/// Colours a normalised attribution map as matplotlib's `imshow(norm_attr, cmap, vmin, vmax)`
/// does pixel for pixel (``Colormap/matplotlibLevel(_:vmin:vmax:)``), with the sign's display range.
/// - Parameters:
///   - normalized: (H, W) from ``normalizedAttribution(_:sign:outlierPercent:)``.
///   - sign: the sign it was normalised for (sets vmin/vmax and the default colormap).
///   - colormap: default ``AttributionSign/defaultColormap`` (Captum's); e.g. ``Colormap/bwr``.
/// - Throws: ``AttributionRenderingError/unsupportedShape(_:expected:)`` unless (H, W).
public func attributionHeatmap(_ normalized: Tensor, sign: AttributionSign = .absoluteValue,
                               colormap: Colormap? = nil) throws -> RGBImage {
    let (h, w) = try mapSize(normalized)
    let table = (colormap ?? sign.defaultColormap).table
    let (vmin, vmax) = sign.displayRange
    var out = [UInt8](repeating: 0, count: h * w * 3)
    normalized.withUnsafeBufferPointer { m in
        for i in 0..<(h * w) {
            let k = Int(Colormap.matplotlibLevel(m[i], vmin: vmin, vmax: vmax)) * 3
            out[3 * i] = table[k]; out[3 * i + 1] = table[k + 1]; out[3 * i + 2] = table[k + 2]
        }
    }
    return RGBImage(width: w, height: h, pixels: out)
}

/// Captum's `blended_heat_map`: the photo as grey (the mean of R, G, B, stretched min–max to
/// black…white as `imshow(…, cmap="gray")` autoscales), with the heat map laid over it at
/// opacity `alpha`: `out = α · heat + (1 − α) · grey`, rounded to bytes.
/// - Parameters:
///   - image: the photo at the map's size.
///   - normalized: (H, W) from ``normalizedAttribution(_:sign:outlierPercent:)``.
///   - sign, colormap: as for ``attributionHeatmap(_:sign:colormap:)``.
///   - alpha: heat opacity, 0...1; default 0.5 (Captum's `alpha_overlay`).
/// - Throws: ``AttributionRenderingError`` for a map of another size or an alpha outside 0...1.
public func blendedAttributionOverlay(_ image: RGBImage, normalized: Tensor, sign: AttributionSign = .absoluteValue,
                                      colormap: Colormap? = nil, alpha: Float = 0.5) throws -> RGBImage {
    let (h, w) = try mapSize(normalized)
    guard h == image.height && w == image.width else {
        throw AttributionRenderingError.sizeMismatch(map: [h, w], image: [image.height, image.width])
    }
    guard (0...1).contains(alpha) else { throw AttributionRenderingError.invalidAlpha(alpha) }
    let heat = try attributionHeatmap(normalized, sign: sign, colormap: colormap)
    let n = h * w
    var grey = [Float](repeating: 0, count: n)
    for i in 0..<n {
        grey[i] = (Float(image.pixels[3 * i]) + Float(image.pixels[3 * i + 1]) + Float(image.pixels[3 * i + 2])) / 3
    }
    let lo = grey.min() ?? 0, hi = grey.max() ?? 0
    var out = [UInt8](repeating: 0, count: n * 3)
    for i in 0..<n {
        let g: Float = hi > lo ? Float(Colormap.matplotlibLevel(grey[i], vmin: lo, vmax: hi)) : 0
        for c in 0..<3 {
            let v = alpha * Float(heat.pixels[3 * i + c]) + (1 - alpha) * g
            out[3 * i + c] = UInt8(min(255, max(0, v.rounded())))
        }
    }
    return RGBImage(width: w, height: h, pixels: out)
}

/// Tiles with one caption each, ready for a grid (feature maps, kernels).
///
/// The captions (e.g. channel numbers) are kept as strings beside the tiles: lay the tiles out
/// with ``grid(columns:padding:background:)`` (no text), or draw each caption under its tile with
/// ``grid(captionFont:position:columns:padding:background:)``.
public struct CaptionedTiles: Sendable {
    /// The tiles, in reading order.
    public var tiles: [RGBImage]
    /// One caption per tile.
    public var captions: [String]

    /// Creates captioned tiles.
    /// - Precondition: as many captions as tiles.
    public init(tiles: [RGBImage], captions: [String]) {
        precondition(tiles.count == captions.count, "\(tiles.count) tiles but \(captions.count) captions")
        self.tiles = tiles
        self.captions = captions
    }

    /// The tiles in a grid (``gridImage(_:columns:padding:background:)``); default columns: the
    /// smallest count whose square holds every tile.
    public func grid(columns: Int? = nil, padding: Int = 4, background: RGBColor = .white) -> RGBImage {
        let cols = columns ?? max(1, Int(Double(tiles.count).squareRoot().rounded(.up)))
        return gridImage(tiles, columns: max(1, cols), padding: padding, background: background)
    }

    /// The tiles in a grid with each caption drawn in a band below (or above) its tile
    /// (``captioned(_:caption:font:position:color:background:padding:)``).
    /// - Parameters:
    ///   - font: the caption font, e.g. `try Font.default(pixelHeight: 12)`.
    ///   - position: where the caption band goes; default below.
    ///   - columns, padding, background: as ``grid(columns:padding:background:)``.
    public func grid(captionFont font: Font, position: CaptionPosition = .below, columns: Int? = nil,
                     padding: Int = 4, background: RGBColor = .white) -> RGBImage {
        let labelled = zip(tiles, captions).map { tile, caption in
            captioned(tile, caption: caption, font: font, position: position, background: background, padding: 2)
        }
        return CaptionedTiles(tiles: labelled, captions: captions).grid(columns: columns, padding: padding, background: background)
    }
}

/// Feature maps (N, H, W) in [0, 1] as coloured tiles, each enlarged to `tileSize` (bilinear,
/// as OpenCV's `cv2.resize`, ``resizedBilinear(_:height:width:)``) and coloured with `colormap`.
/// - Parameters:
///   - maps: Float32 (N, H, W), values in [0, 1] (e.g. Explain's `FeatureMapSelection.maps`).
///   - captions: one per map (e.g. `FeatureMapSelection.captions`); empty strings if omitted.
///   - tileSize: (height, width) of each tile; default: the maps' own size.
///   - colormap: default ``Colormap/viridis``.
/// - Throws: ``AttributionRenderingError`` for another rank or a caption count that differs.
public func featureMapTiles(_ maps: Tensor, captions: [String]? = nil, tileSize: (height: Int, width: Int)? = nil,
                            colormap: Colormap = .viridis) throws -> CaptionedTiles {
    guard maps.rank == 3, maps.dtype == .float32 else {
        throw AttributionRenderingError.unsupportedShape(maps.shape, expected: "(N, H, W) Float32")
    }
    let (n, h, w) = (maps.shape[0], maps.shape[1], maps.shape[2])
    let captions = captions ?? Array(repeating: "", count: n)
    guard captions.count == n else { throw AttributionRenderingError.captionCount(captions.count, tiles: n) }
    let size = tileSize ?? (h, w)
    guard size.height > 0 && size.width > 0 && h > 0 && w > 0 else {
        throw AttributionRenderingError.unsupportedShape(maps.shape, expected: "non-empty maps and tiles")
    }
    let resized = resizedBilinear(maps, height: size.height, width: size.width)
    let tiles = (0..<n).map { i in
        colormap.colorized(resized.sliced(starts: [i], ends: [i + 1], axes: [0]))
    }
    return CaptionedTiles(tiles: tiles, captions: captions)
}

/// Kernel tiles (n, C, kH, kW) in [0, 1] as images, enlarged by `scale` (nearest neighbour, so
/// every weight stays a visible square): RGB tiles when C = 3 (`rgb: true`), else one grey tile
/// per (kernel, input channel), kernels in reading order and input channels within each kernel.
/// - Parameters:
///   - tiles: Float32 (n, C, kH, kW), e.g. Explain's `KernelTiles.tiles`.
///   - captions: one per kernel (e.g. `KernelTiles.captions`); grey tiles of one kernel all get
///     its caption with the input channel appended (`"#5/2"`).
///   - rgb: draw each kernel as one RGB tile (needs C = 3). Default: `C == 3`.
///   - scale: pixels per weight (≥ 1); default 8.
/// - Throws: ``AttributionRenderingError`` for another rank, RGB without 3 channels, a bad scale
///   or caption count.
public func kernelTiles(_ tiles: Tensor, captions: [String]? = nil, rgb: Bool? = nil,
                        scale: Int = 8) throws -> CaptionedTiles {
    guard tiles.rank == 4, tiles.dtype == .float32 else {
        throw AttributionRenderingError.unsupportedShape(tiles.shape, expected: "(n, C, kH, kW) Float32")
    }
    let (n, c, kh, kw) = (tiles.shape[0], tiles.shape[1], tiles.shape[2], tiles.shape[3])
    let asRGB = rgb ?? (c == 3)
    guard !asRGB || c == 3 else {
        throw AttributionRenderingError.unsupportedShape(tiles.shape, expected: "3 input channels for RGB kernel tiles")
    }
    guard scale >= 1 else { throw AttributionRenderingError.invalidScale(scale) }
    let captions = captions ?? Array(repeating: "", count: n)
    guard captions.count == n else { throw AttributionRenderingError.captionCount(captions.count, tiles: n) }
    let v = tiles.scalars
    let plane = kh * kw
    func byte(_ x: Float) -> UInt8 { Colormap.level(x) }
    var images: [RGBImage] = []
    var labels: [String] = []
    for o in 0..<n {
        let planes = asRGB ? [Array(0..<3)] : (0..<c).map { [$0, $0, $0] }
        for (p, channels) in planes.enumerated() {
            var pixels = [UInt8](repeating: 0, count: kh * kw * scale * scale * 3)
            for y in 0..<(kh * scale) {
                for x in 0..<(kw * scale) {
                    let src = (y / scale) * kw + x / scale
                    for ch in 0..<3 {
                        pixels[(y * kw * scale + x) * 3 + ch] = byte(v[(o * c + channels[ch]) * plane + src])
                    }
                }
            }
            images.append(RGBImage(width: kw * scale, height: kh * scale, pixels: pixels))
            labels.append(asRGB ? captions[o] : (captions[o].isEmpty ? "" : "\(captions[o])/\(p)"))
        }
    }
    return CaptionedTiles(tiles: images, captions: labels)
}

/// (H, W) of a rank-2 map (leading dimensions of size 1 allowed).
private func mapSize(_ map: Tensor) throws -> (Int, Int) {
    let s = map.shape
    guard s.count >= 2, s.dropLast(2).allSatisfy({ $0 == 1 }), map.dtype == .float32 else {
        throw AttributionRenderingError.unsupportedShape(s, expected: "one (H, W) Float32 map")
    }
    return (s[s.count - 2], s[s.count - 1])
}

/// A rendering request that cannot be drawn.
public enum AttributionRenderingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The tensor's shape is not the one the function draws.
    case unsupportedShape(_ shape: [Int], expected: String)
    /// `outlierPercent` outside 0...100.
    case invalidOutlierPercent(Double)
    /// An overlay opacity outside 0...1.
    case invalidAlpha(Float)
    /// The map and the photo differ in size.
    case sizeMismatch(map: [Int], image: [Int])
    /// A caption count that differs from the tile count.
    case captionCount(Int, tiles: Int)
    /// A tile scale below 1.
    case invalidScale(Int)

    /// One line: what is wrong and what to do.
    public var description: String {
        switch self {
        case let .unsupportedShape(shape, expected):
            return "cannot render a tensor of shape \(shape): expected \(expected)"
        case let .invalidOutlierPercent(p):
            return "outlier percentage \(p) is outside 0...100 (CAMKit's default is 1, the 99th percentile; Captum's is 2)"
        case let .invalidAlpha(a):
            return "overlay opacity \(a) is outside 0...1 (Captum's default is 0.5)"
        case let .sizeMismatch(map, image):
            return "the map is \(map[0])×\(map[1]) (H×W) but the photo is \(image[0])×\(image[1]): resize the map first (resizedBilinear)"
        case let .captionCount(c, tiles):
            return "\(c) captions for \(tiles) tiles: give one caption per tile"
        case let .invalidScale(s):
            return "tile scale \(s) must be at least 1"
        }
    }
}
