// Preprocessing a photo into a model input tensor, with the geometry needed to map a heatmap
// back onto the full-resolution photo.
//
// Reference: torchvision's `transforms.Resize(256)` (PIL bilinear with antialias, shorter side,
// long side `int(256 * long / short)`), `CenterCrop(224)` (offsets `int(round((H - 224) / 2))`,
// Python's round-half-to-even; zero padding when the crop is larger), `ToTensor` (`/255` in
// Float32) and `Normalize` (`(x - mean) / std` in Float32). CAMKit reproduces these bit for bit on
// the decoded pixels (tested on photos: mean |Δ| ≈ 0 against torchvision).
// Other geometries: `stretch` is torchvision's `Resize((h, w))` (PIL bilinear, antialiased);
// `letterbox` is Pillow's `ImageOps.pad(image, (w, h), method=BILINEAR, color=(114, 114, 114))`.
// Presets: `inception` scales to [−1, 1] as Keras' `preprocess_input(mode="tf")`; `caffe` is Keras'
// `preprocess_input(mode="caffe")` (RGB→BGR, 0–255, minus the ImageNet BGR means, no scaling).

import TensorCore

/// The order of colour channels in the model input.
public enum ChannelOrder: Sendable, Hashable {
    /// Red, green, blue (PyTorch/torchvision models).
    case rgb
    /// Blue, green, red (Caffe and OpenCV-trained models).
    case bgr
}

/// The memory layout of the model input tensor.
public enum TensorLayout: Sendable, Hashable {
    /// `[N, C, H, W]` (PyTorch, most ONNX exports).
    case nchw
    /// `[N, H, W, C]` (TensorFlow/Keras exports).
    case nhwc
}

/// What a pixel byte becomes before normalisation.
public enum PixelRange: Sendable, Hashable {
    /// `byte / 255` in Float32 (torchvision's `ToTensor`).
    case unit
    /// The byte value as Float32, 0–255 (Caffe-style models).
    case byte
}

/// Per-channel normalisation `(pixel − mean) / std` applied after scaling the byte to ``PixelRange``.
///
/// `mean` and `std` are given in the **output** channel order (for ``ChannelOrder/bgr``, blue first).
public struct Normalization: Sendable, Hashable {
    /// Per-channel means, output channel order, in units of ``pixelRange``.
    public var mean: [Float]
    /// Per-channel standard deviations, output channel order.
    public var std: [Float]
    /// Channel order of the model input.
    public var channelOrder: ChannelOrder
    /// Byte scaling before subtracting the mean.
    public var pixelRange: PixelRange

    /// Creates a normalisation.
    /// - Precondition: three means and three non-zero standard deviations.
    public init(mean: [Float], std: [Float], channelOrder: ChannelOrder = .rgb, pixelRange: PixelRange = .unit) {
        precondition(mean.count == 3 && std.count == 3, "mean and std need 3 values each")
        precondition(!std.contains(0), "std must be non-zero")
        self.mean = mean
        self.std = std
        self.channelOrder = channelOrder
        self.pixelRange = pixelRange
    }

    /// ImageNet statistics, RGB, 0–1: mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225).
    public static let imagenet = Normalization(mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225])
    /// Inception/TF style: maps 0–1 to [−1, 1] (mean 0.5, std 0.5).
    public static let inception = Normalization(mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5])
    /// Caffe style (Keras `preprocess_input(mode="caffe")`): BGR, 0–255, mean (103.939, 116.779, 123.68), std 1.
    public static let caffe = Normalization(mean: [103.939, 116.779, 123.68], std: [1, 1, 1],
                                            channelOrder: .bgr, pixelRange: .byte)
    /// No normalisation: RGB, `byte / 255` (the `none` preset; not called `none` to avoid
    /// confusion with `Optional.none`).
    public static let identity = Normalization(mean: [0, 0, 0], std: [1, 1, 1])
}

/// How a photo is brought to the model's input size.
public enum ResizePolicy: Sendable, Hashable {
    /// Keep the photo's size.
    case none
    /// torchvision's `Resize(shorterSide)` then `CenterCrop(cropHeight, cropWidth)`.
    case resizeShorterSideAndCenterCrop(shorterSide: Int, cropWidth: Int, cropHeight: Int)
    /// `CenterCrop` without resizing (zero padding where the crop exceeds the photo).
    case centerCrop(width: Int, height: Int)
    /// Resize to exactly `width × height`, ignoring the aspect ratio.
    case stretch(width: Int, height: Int)
    /// Resize to fit inside `width × height` keeping the aspect ratio, centred, padded with `fill`
    /// (placed as PIL's `ImageOps.pad` places it, see ``letterboxPlacement(width:height:boxWidth:boxHeight:)``).
    case letterbox(width: Int, height: Int, fill: RGBColor)
}

/// Where the model input came from in the original photo: an axis-aligned affine map per axis
/// between continuous pixel coordinates (pixel `i` covers `[i, i + 1)`):
///
///     sourceX = scaleX · inputX + offsetX,   sourceY = scaleY · inputY + offsetY
///
/// It is exact for every ``ResizePolicy`` (a resize, a crop, a pad, or a resize then crop).
public struct CropGeometry: Sendable, Hashable {
    /// Width of the original (decoded, oriented) photo.
    public var sourceWidth: Int
    /// Height of the original photo.
    public var sourceHeight: Int
    /// Width of the model input.
    public var inputWidth: Int
    /// Height of the model input.
    public var inputHeight: Int
    /// Source pixels per input pixel, horizontally.
    public var scaleX: Double
    /// Source pixels per input pixel, vertically.
    public var scaleY: Double
    /// Source x coordinate of the input's left edge.
    public var offsetX: Double
    /// Source y coordinate of the input's top edge.
    public var offsetY: Double

    /// Creates a geometry from its parts (see the type's description for the mapping).
    public init(sourceWidth: Int, sourceHeight: Int, inputWidth: Int, inputHeight: Int,
                scaleX: Double, scaleY: Double, offsetX: Double, offsetY: Double) {
        self.sourceWidth = sourceWidth
        self.sourceHeight = sourceHeight
        self.inputWidth = inputWidth
        self.inputHeight = inputHeight
        self.scaleX = scaleX
        self.scaleY = scaleY
        self.offsetX = offsetX
        self.offsetY = offsetY
    }

    /// The identity geometry of an unresized photo.
    public static func identity(width: Int, height: Int) -> CropGeometry {
        CropGeometry(sourceWidth: width, sourceHeight: height, inputWidth: width, inputHeight: height,
                     scaleX: 1, scaleY: 1, offsetX: 0, offsetY: 0)
    }
}

/// What to put where the original photo extends beyond the region the model saw.
public enum OutsideFill: Sendable, Hashable {
    /// Zero (no evidence): the default. A heatmap claims nothing about pixels the model never saw,
    /// and with min-max normalised maps 0 is "cold", so the crop's border stays visible.
    case zero
    /// Extend the map's edge values outwards (a smoother-looking, but invented, continuation).
    case edge
}

extension CropGeometry {
    /// Resamples maps in model-input coordinates onto the full original photo.
    ///
    /// Bilinear with half-pixel centres inside the region the model saw (values at the region's
    /// border clamp to the nearest map sample); outside it, ``OutsideFill``.
    ///
    /// - Parameters:
    ///   - map: Float32 tensor `[..., inputHeight, inputWidth]`; leading dimensions are kept.
    ///   - outside: fill for photo pixels outside the model's view. Default ``OutsideFill/zero``.
    /// - Returns: `[..., sourceHeight, sourceWidth]`.
    /// - Precondition: the last two dimensions equal the input size.
    public func mapToSource(_ map: Tensor, outside: OutsideFill = .zero) -> Tensor {
        let shape = map.shape
        precondition(shape.count >= 2 && shape[shape.count - 2] == inputHeight && shape[shape.count - 1] == inputWidth,
                     "map shape \(shape) does not end in the input size [\(inputHeight), \(inputWidth)]")
        let lead = Array(shape.dropLast(2))
        let planes = lead.reduce(1, *)
        let (x0, x1, wx, insideX) = Self.axis(source: sourceWidth, input: inputWidth, scale: scaleX, offset: offsetX, outside: outside)
        let (y0, y1, wy, insideY) = Self.axis(source: sourceHeight, input: inputHeight, scale: scaleY, offset: offsetY, outside: outside)
        let sw = sourceWidth, sh = sourceHeight, iw = inputWidth, ih = inputHeight
        var out = Tensor(zeros: lead + [sh, sw])
        if sw == 0 || sh == 0 || iw == 0 || ih == 0 { return out }
        map.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                let s = src.baseAddress!, d = dst.baseAddress!
                parallelRows(planes * sh, work: sw * 4) { range in
                    for r in range {
                        let p = r / sh, y = r % sh
                        guard insideY[y] else { continue }
                        let plane = s + p * ih * iw
                        let row0 = plane + y0[y] * iw, row1 = plane + y1[y] * iw
                        let b = wy[y], a = 1 - b
                        let o = d + r * sw
                        for x in 0..<sw where insideX[x] {
                            let top = row0[x0[x]] * (1 - wx[x]) + row0[x1[x]] * wx[x]
                            let bottom = row1[x0[x]] * (1 - wx[x]) + row1[x1[x]] * wx[x]
                            o[x] = top * a + bottom * b
                        }
                    }
                }
            }
        }
        return out
    }

    /// Per source pixel along one axis: the two input samples, the weight of the second, and
    /// whether the pixel lies inside the input's view.
    private static func axis(source: Int, input: Int, scale: Double, offset: Double,
                             outside: OutsideFill) -> ([Int], [Int], [Float], [Bool]) {
        var i0 = [Int](repeating: 0, count: source), i1 = i0
        var w = [Float](repeating: 0, count: source)
        var inside = [Bool](repeating: false, count: source)
        guard input > 0 else { return (i0, i1, w, inside) }
        let eps = 1e-9
        for j in 0..<source {
            var u = (Double(j) + 0.5 - offset) / scale      // input coordinate of the pixel centre
            if u < -eps || u > Double(input) + eps {
                guard outside == .edge else { continue }
                u = min(max(u, 0), Double(input))
            }
            inside[j] = true
            let c = min(max(u - 0.5, 0), Double(input - 1))  // half-pixel centres, clamped
            let f = c.rounded(.down)
            i0[j] = Int(f)
            i1[j] = min(Int(f) + 1, input - 1)
            w[j] = Float(c - f)
        }
        return (i0, i1, w, inside)
    }
}

/// A photo prepared for a model: the input tensor, the input-resolution picture, and the geometry.
public struct PreprocessedImage: Sendable {
    /// Float32 `[1, 3, H, W]` (or `[1, H, W, 3]` for ``TensorLayout/nhwc``), normalised.
    public var tensor: Tensor
    /// The resized/cropped RGB picture the tensor was made from (the background for overlays at
    /// model-input resolution, as pytorch-grad-cam's examples draw).
    public var inputImage: RGBImage
    /// Where ``inputImage`` lies in the original photo.
    public var geometry: CropGeometry
}

/// A complete preprocessing recipe: resize policy, normalisation and tensor layout.
public struct Preprocessing: Sendable, Hashable {
    /// How the photo is brought to the input size.
    public var resize: ResizePolicy
    /// How pixel bytes become input values.
    public var normalization: Normalization
    /// The tensor layout.
    public var layout: TensorLayout

    /// Creates a recipe.
    public init(resize: ResizePolicy, normalization: Normalization, layout: TensorLayout = .nchw) {
        self.resize = resize
        self.normalization = normalization
        self.layout = layout
    }

    /// torchvision's ImageNet evaluation transform: shorter side 256, centre crop 224, ImageNet
    /// mean/std, RGB, NCHW.
    public static let imagenet = Preprocessing(
        resize: .resizeShorterSideAndCenterCrop(shorterSide: 256, cropWidth: 224, cropHeight: 224),
        normalization: .imagenet)
    /// Inception style: shorter side 342, centre crop 299 (torchvision's Inception-v3 recipe),
    /// values in [−1, 1].
    public static let inception = Preprocessing(
        resize: .resizeShorterSideAndCenterCrop(shorterSide: 342, cropWidth: 299, cropHeight: 299),
        normalization: .inception)
    /// Caffe style: shorter side 256, centre crop 224, BGR, 0–255 minus the ImageNet BGR means.
    public static let caffe = Preprocessing(
        resize: .resizeShorterSideAndCenterCrop(shorterSide: 256, cropWidth: 224, cropHeight: 224),
        normalization: .caffe)
    /// The `none` preset: no resize, RGB `byte / 255` (named `raw` to avoid confusion with
    /// `Optional.none`).
    public static let raw = Preprocessing(resize: .none, normalization: .identity)

    /// The preset with a given name: `imagenet`, `inception`, `caffe` or `none` (case-insensitive; `none` is ``raw``).
    public static func preset(named name: String) -> Preprocessing? {
        switch name.lowercased() {
        case "imagenet": return .imagenet
        case "inception": return .inception
        case "caffe": return .caffe
        case "none", "raw": return Preprocessing.raw
        default: return nil
        }
    }

    /// The same recipe retargeted to a model whose input is `width × height`: a resize-and-crop
    /// keeps its ratio of resize to crop (256/224 becomes `round(side · 256/224)`), other policies
    /// take the new size; ``ResizePolicy/none`` becomes a stretch to the input size.
    public func adapted(toInputWidth width: Int, height: Int) -> Preprocessing {
        var p = self
        switch resize {
        case let .resizeShorterSideAndCenterCrop(shorter, cw, ch):
            if cw == width && ch == height { return p }
            let ratio = Double(shorter) / Double(min(cw, ch))
            p.resize = .resizeShorterSideAndCenterCrop(
                shorterSide: Int((Double(min(width, height)) * ratio).rounded()), cropWidth: width, cropHeight: height)
        case .centerCrop: p.resize = .centerCrop(width: width, height: height)
        case .stretch, .none: p.resize = .stretch(width: width, height: height)
        case let .letterbox(_, _, fill): p.resize = .letterbox(width: width, height: height, fill: fill)
        }
        return p
    }

    /// Resizes/crops `image` per ``resize`` and returns the picture and its geometry.
    public func geometricallyTransformed(_ image: RGBImage) -> (RGBImage, CropGeometry) {
        let w = image.width, h = image.height
        switch resize {
        case .none:
            return (image, .identity(width: w, height: h))
        case let .stretch(tw, th):
            return (image.resized(width: tw, height: th),
                    CropGeometry(sourceWidth: w, sourceHeight: h, inputWidth: tw, inputHeight: th,
                                 scaleX: Double(w) / Double(tw), scaleY: Double(h) / Double(th), offsetX: 0, offsetY: 0))
        case let .centerCrop(cw, ch):
            let (left, top) = centerCropOrigin(width: w, height: h, cropWidth: cw, cropHeight: ch)
            return (image.cropped(x: left, y: top, width: cw, height: ch),
                    CropGeometry(sourceWidth: w, sourceHeight: h, inputWidth: cw, inputHeight: ch,
                                 scaleX: 1, scaleY: 1, offsetX: Double(left), offsetY: Double(top)))
        case let .resizeShorterSideAndCenterCrop(side, cw, ch):
            let (rw, rh) = shorterSideSize(width: w, height: h, shorterSide: side)
            let resized = image.resized(width: rw, height: rh)
            let (left, top) = centerCropOrigin(width: rw, height: rh, cropWidth: cw, cropHeight: ch)
            let sx = Double(w) / Double(rw), sy = Double(h) / Double(rh)
            return (resized.cropped(x: left, y: top, width: cw, height: ch),
                    CropGeometry(sourceWidth: w, sourceHeight: h, inputWidth: cw, inputHeight: ch,
                                 scaleX: sx, scaleY: sy, offsetX: Double(left) * sx, offsetY: Double(top) * sy))
        case let .letterbox(tw, th, fill):
            let (nw, nh, padX, padY) = letterboxPlacement(width: w, height: h, boxWidth: tw, boxHeight: th)
            let resized = image.resized(width: nw, height: nh)
            var canvas = RGBImage(width: tw, height: th, color: fill)
            canvas.paste(resized, x: padX, y: padY)
            let sx = Double(w) / Double(nw), sy = Double(h) / Double(nh)
            return (canvas, CropGeometry(sourceWidth: w, sourceHeight: h, inputWidth: tw, inputHeight: th,
                                         scaleX: sx, scaleY: sy, offsetX: -Double(padX) * sx, offsetY: -Double(padY) * sy))
        }
    }

    /// Preprocesses one photo: resize/crop, then normalise into a `[1, 3, H, W]` (or NHWC) tensor.
    /// - Precondition: the image is not empty.
    public func callAsFunction(_ image: RGBImage) -> PreprocessedImage {
        let (picture, geometry) = geometricallyTransformed(image)
        return PreprocessedImage(tensor: picture.tensor(normalization: normalization, layout: layout),
                                 inputImage: picture, geometry: geometry)
    }
}

/// How a photo is brought to the model's input size, by the names the CLI and sidecars use.
public enum ResizeStrategy: String, Sendable, Hashable, CaseIterable {
    /// Resize the shorter side, then centre-crop (torchvision's `Resize` + `CenterCrop`).
    case shorterSideCrop = "shorter-crop"
    /// Resize to exactly the input size, ignoring the aspect ratio (torchvision's `Resize((h, w))`,
    /// Keras' `load_img(target_size=...)`).
    case stretch
    /// Fit inside the input size keeping the aspect ratio, centred on gray (114, 114, 114) padding
    /// (PIL's `ImageOps.pad`, YOLO-style letterboxing).
    case letterbox
}

extension Preprocessing {
    /// The names of the presets ``preset(named:)`` accepts, in `--help` order.
    public static let presetNames = ["imagenet", "inception", "caffe", "none"]

    /// The input size this recipe produces, or `nil` for ``ResizePolicy/none`` (the photo's own size).
    public var inputSize: (width: Int, height: Int)? {
        switch resize {
        case .none: return nil
        case let .resizeShorterSideAndCenterCrop(_, w, h), let .centerCrop(w, h), let .stretch(w, h),
             let .letterbox(w, h, _):
            return (w, h)
        }
    }

    /// The same recipe with another way of reaching the same input size. A shorter-side crop keeps
    /// this recipe's ratio of resize to crop when it has one, else torchvision's 256/224; a
    /// letterbox pads with ``RGBColor/letterboxGray``. Without an input size (``ResizePolicy/none``)
    /// the recipe is returned unchanged.
    public func resizing(_ mode: ResizeStrategy) -> Preprocessing {
        guard let (w, h) = inputSize else { return self }
        var p = self
        switch mode {
        case .shorterSideCrop:
            if case .resizeShorterSideAndCenterCrop = resize { return self }
            p.resize = .resizeShorterSideAndCenterCrop(
                shorterSide: Int((Double(min(w, h)) * 256 / 224).rounded()), cropWidth: w, cropHeight: h)
        case .stretch: p.resize = .stretch(width: w, height: h)
        case .letterbox: p.resize = .letterbox(width: w, height: h, fill: .letterboxGray)
        }
        return p
    }
}

/// Where a `width × height` photo goes inside a `boxWidth × boxHeight` letterbox, as PIL's
/// `ImageOps.contain` and `ImageOps.pad` (Pillow 13) place it: the long side fills the box, the
/// other is `round(short / long · box)` (Python's round-half-to-even), and the pad before it is
/// `round((box − size) · 0.5)`.
/// - Returns: the resized size and the left/top padding.
public func letterboxPlacement(width: Int, height: Int, boxWidth: Int, boxHeight: Int)
    -> (width: Int, height: Int, padX: Int, padY: Int) {
    var (nw, nh) = (boxWidth, boxHeight)
    let imageRatio = Double(width) / Double(height), boxRatio = Double(boxWidth) / Double(boxHeight)
    if imageRatio > boxRatio {
        nh = Int((Double(height) / Double(width) * Double(boxWidth)).rounded(.toNearestOrEven))
    } else if imageRatio < boxRatio {
        nw = Int((Double(width) / Double(height) * Double(boxHeight)).rounded(.toNearestOrEven))
    }
    nw = max(1, min(boxWidth, nw))
    nh = max(1, min(boxHeight, nh))
    let padX = Int((Double(boxWidth - nw) * 0.5).rounded(.toNearestOrEven))
    let padY = Int((Double(boxHeight - nh) * 0.5).rounded(.toNearestOrEven))
    return (nw, nh, padX, padY)
}

/// torchvision's `Resize(shorterSide)` output size: the shorter side becomes `shorterSide`, the
/// longer `int(shorterSide * long / short)` (truncated).
public func shorterSideSize(width: Int, height: Int, shorterSide: Int) -> (width: Int, height: Int) {
    if width <= height {
        return (shorterSide, Int(Double(shorterSide * height) / Double(width)))
    } else {
        return (Int(Double(shorterSide * width) / Double(height)), shorterSide)
    }
}

/// torchvision's `CenterCrop` origin in the image: `int(round((size − crop) / 2))` with Python's
/// round-half-to-even, or, where the crop is larger, minus the left/top zero padding `(crop − size) // 2`.
public func centerCropOrigin(width: Int, height: Int, cropWidth: Int, cropHeight: Int) -> (x: Int, y: Int) {
    func origin(_ size: Int, _ crop: Int) -> Int {
        crop > size ? -((crop - size) / 2) : Int((Double(size - crop) / 2).rounded(.toNearestOrEven))
    }
    return (origin(width, cropWidth), origin(height, cropHeight))
}

extension RGBImage {
    /// Copies `other` into this image with its top-left corner at `(x, y)`; parts falling outside
    /// are clipped.
    public mutating func paste(_ other: RGBImage, x: Int, y: Int) {
        let x0 = max(0, x), x1 = min(width, x + other.width)
        guard x1 > x0 else { return }
        let w = width, ow = other.width, bytes = (x1 - x0) * 3
        other.pixels.withUnsafeBufferPointer { sp in
            pixels.withUnsafeMutableBufferPointer { dp in
                for oy in 0..<other.height {
                    let ty = y + oy
                    guard ty >= 0 && ty < height else { continue }
                    (dp.baseAddress! + (ty * w + x0) * 3).update(from: sp.baseAddress! + (oy * ow + (x0 - x)) * 3, count: bytes)
                }
            }
        }
    }

    /// The image as a normalised Float32 tensor.
    ///
    /// Each byte `v` becomes `(s(v) − mean[c]) / std[c]` with `s(v) = Float(v) / 255` for
    /// ``PixelRange/unit`` (torchvision's `ToTensor` + `Normalize`, bit-identical) or `Float(v)`
    /// for ``PixelRange/byte``; channels in ``Normalization/channelOrder``.
    /// - Returns: `[1, 3, height, width]` for ``TensorLayout/nchw``, `[1, height, width, 3]` for NHWC.
    public func tensor(normalization: Normalization = .imagenet, layout: TensorLayout = .nchw) -> Tensor {
        let n = width * height
        let shape = layout == .nchw ? [1, 3, height, width] : [1, height, width, 3]
        var t = Tensor(uninitializedShape: shape)
        if n == 0 { return t }
        // Lookup tables: 256 values per output channel, computed exactly as the reference does.
        var lut = [Float](repeating: 0, count: 3 * 256)
        for c in 0..<3 {
            let m = normalization.mean[c], s = normalization.std[c]
            for v in 0..<256 {
                let x: Float = normalization.pixelRange == .unit ? Float(v) / 255 : Float(v)
                lut[c * 256 + v] = (x - m) / s
            }
        }
        let order = normalization.channelOrder == .rgb ? [0, 1, 2] : [2, 1, 0]  // output c ← source channel
        let nchw = layout == .nchw
        pixels.withUnsafeBufferPointer { sp in
            lut.withUnsafeBufferPointer { lp in
                t.withUnsafeMutableBufferPointer { dp in
                    let s = sp.baseAddress!, l = lp.baseAddress!, d = dp.baseAddress!
                    let (o0, o1, o2) = (order[0], order[1], order[2])
                    parallelRows(height, work: width * 3) { rows in
                        for y in rows {
                            let start = y * width
                            for i in start..<(start + width) {
                                let p = s + 3 * i
                                let v0 = l[Int(p[o0])], v1 = l[256 + Int(p[o1])], v2 = l[512 + Int(p[o2])]
                                if nchw {
                                    d[i] = v0; d[n + i] = v1; d[2 * n + i] = v2
                                } else {
                                    d[3 * i] = v0; d[3 * i + 1] = v1; d[3 * i + 2] = v2
                                }
                            }
                        }
                    }
                }
            }
        }
        return t
    }
}

/// Stacks preprocessed images into one batch `[N, 3, H, W]` (or `[N, H, W, 3]`).
/// - Precondition: all tensors have the same shape with batch 1; `images` is not empty.
public func batched(_ images: [PreprocessedImage]) -> Tensor {
    precondition(!images.isEmpty, "batch of zero images")
    let one = images[0].tensor.shape
    precondition(one.first == 1 && images.allSatisfy { $0.tensor.shape == one },
                 "images of different input shapes cannot be batched: \(images.map { $0.tensor.shape })")
    let per = images[0].tensor.count
    var out = Tensor(uninitializedShape: [images.count] + one.dropFirst())
    out.withUnsafeMutableBufferPointer { d in
        for (k, im) in images.enumerated() {
            im.tensor.withUnsafeBufferPointer { s in
                (d.baseAddress! + k * per).update(from: s.baseAddress!, count: per)
            }
        }
    }
    return out
}
