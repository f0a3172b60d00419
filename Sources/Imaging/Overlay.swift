// Heatmap overlays.
//
// `camOverlay` reproduces pytorch-grad-cam's `show_cam_on_image` (utils/image.py) with
// `use_rgb=True`, byte for byte (tested against the real function):
//     heat = applyColorMap(np.uint8(255 * mask), colormap)            # truncation
//     heat = np.float32(heat) / 255
//     cam  = (1 - image_weight) * heat + image_weight * img            # img = bytes / 255, Float32
//     cam  = cam / np.max(cam)
//     return np.uint8(255 * cam)                                      # truncation
// All arithmetic is Float32, one rounding per NumPy operation, in the same order.
//
// `kerasOverlay` is the Keras Grad-CAM tutorial's `heat * alpha + img` followed by Keras
// `array_to_img`'s min-max scaling to 0–255 (or, optionally, clipping).

import TensorCore

/// How ``kerasOverlay(_:mask:colormap:alpha:scaling:)`` brings `heat·α + img` back to 0–255.
public enum OverlayScaling: Sendable, Hashable {
    /// Keras `array_to_img(scale=True)`: `x − min`, `/ max`, `× 255`, truncated (the tutorial's result).
    case minMax
    /// Clamp to 0–255 and truncate (brightens instead of rescaling).
    case clip
}

/// The CAM overlay of pytorch-grad-cam's `show_cam_on_image(img, mask, use_rgb=True,
/// colormap, image_weight)`, byte-identical.
///
/// - Parameters:
///   - image: the photo at the mask's resolution (the reference's `img` is `image / 255`).
///   - mask: Float32 `[H, W]` in [0, 1] (leading dimensions of size 1 allowed).
///   - colormap: default ``Colormap/jet`` (OpenCV's).
///   - imageWeight: weight of the photo, 0–1; default 0.5.
/// - Returns: the blended image, rescaled so that its brightest channel value is 255.
/// - Precondition: the mask has the image's size; `imageWeight` in 0...1.
public func camOverlay(_ image: RGBImage, mask: Tensor, colormap: Colormap = .jet,
                       imageWeight: Float = 0.5) -> RGBImage {
    let (h, w) = planeSize(mask)
    precondition(h == image.height && w == image.width,
                 "mask \(w)×\(h) does not match the image \(image.width)×\(image.height); resize it first")
    precondition((0...1).contains(imageWeight), "imageWeight must be in 0...1, got \(imageWeight)")
    let table = colormap.table
    // Python computes `1 - image_weight` in Double; NumPy then multiplies a Float32 array by it
    // as a Float32 scalar.
    let heatWeight = Float(1 - Double(imageWeight))
    let count = h * w
    // Two passes over the pixels (maximum, then scaled bytes) instead of storing the Float32 blend:
    // the blend is recomputed identically, and a 12 MP photo needs no 144 MB buffer.
    let blocks = max(1, min(count, 4 * ComputeSettings.threadCount))
    var blockMax = [Float](repeating: 0, count: blocks)
    var out = [UInt8](repeating: 0, count: count * 3)
    // The two products depend on one byte each: tabulate them (same Float32 operations, so the
    // results are unchanged) instead of recomputing two divisions per channel value.
    let heatTerm = table.map { heatWeight * (Float($0) / 255) }
    let imageTerm = (0..<256).map { imageWeight * (Float($0) / 255) }
    mask.withUnsafeBufferPointer { mp in
        image.pixels.withUnsafeBufferPointer { pp in
            heatTerm.withUnsafeBufferPointer { hp in
            imageTerm.withUnsafeBufferPointer { ip in
                let m = mp.baseAddress!, px = pp.baseAddress!, ht = hp.baseAddress!, it = ip.baseAddress!
                @inline(__always) func blend(_ i: Int, _ c: Int, _ k: Int) -> Float {
                    ht[k + c] + it[Int(px[3 * i + c])]
                }
                blockMax.withUnsafeMutableBufferPointer { bm in
                    parallelFor(blocks) { range in
                        for b in range {
                            var top: Float = 0
                            for i in (count * b / blocks)..<(count * (b + 1) / blocks) {
                                let k = Int(Colormap.level(m[i])) * 3
                                top = max(top, blend(i, 0, k), blend(i, 1, k), blend(i, 2, k))
                            }
                            bm[b] = top
                        }
                    }
                }
                let maximum = blockMax.max() ?? 0
                guard maximum > 0 else { return }
                out.withUnsafeMutableBufferPointer { op in
                    let o = op.baseAddress!
                    parallelRows(h, work: w * 12) { rows in
                        for i in (rows.lowerBound * w)..<(rows.upperBound * w) {
                            let k = Int(Colormap.level(m[i])) * 3
                            for c in 0..<3 {
                                let x = 255 * (blend(i, c, k) / maximum)
                                o[3 * i + c] = x >= 255 ? 255 : (x > 0 ? UInt8(x) : 0)
                            }
                        }
                    }
                }
            }
            }
        }
    }
    return RGBImage(width: w, height: h, pixels: out)
}

/// The Keras Grad-CAM tutorial overlay: `colormap[uint8(255·mask)] · alpha + image` in Float32
/// on the 0–255 scale, brought back to bytes by ``OverlayScaling``.
///
/// The tutorial uses matplotlib's jet; pass ``Colormap/jet`` for OpenCV's (differences of a few
/// levels) or any other table.
/// - Parameters:
///   - image: the photo at the mask's resolution.
///   - mask: Float32 `[H, W]` in [0, 1].
///   - colormap: default ``Colormap/jet``.
///   - alpha: heat weight, default 0.4.
///   - scaling: default ``OverlayScaling/minMax`` (what Keras `array_to_img` does).
/// - Precondition: the mask has the image's size.
public func kerasOverlay(_ image: RGBImage, mask: Tensor, colormap: Colormap = .jet, alpha: Float = 0.4,
                         scaling: OverlayScaling = .minMax) -> RGBImage {
    let (h, w) = planeSize(mask)
    precondition(h == image.height && w == image.width,
                 "mask \(w)×\(h) does not match the image \(image.width)×\(image.height); resize it first")
    let n = h * w * 3
    let table = colormap.table
    var sum = [Float](repeating: 0, count: n)
    mask.withUnsafeBufferPointer { m in
        for i in 0..<(h * w) {
            let k = Int(Colormap.level(m[i])) * 3
            for c in 0..<3 { sum[3 * i + c] = Float(table[k + c]) * alpha + Float(image.pixels[3 * i + c]) }
        }
    }
    var out = [UInt8](repeating: 0, count: n)
    switch scaling {
    case .clip:
        for i in 0..<n { out[i] = UInt8(min(255, max(0, sum[i]))) }
    case .minMax:
        guard let lo = sum.min(), let hi = sum.max() else { break }
        let range = hi - lo
        for i in 0..<n {
            var x = sum[i] - lo
            if range != 0 { x /= range }
            x *= 255
            out[i] = x >= 255 ? 255 : (x > 0 ? UInt8(x) : 0)
        }
    }
    return RGBImage(width: w, height: h, pixels: out)
}
