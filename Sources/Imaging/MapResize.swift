// Bilinear resize of float maps, as OpenCV's `cv2.resize(src, (W, H), interpolation=INTER_LINEAR)`
// computes it for CV_32F — the resize pytorch-grad-cam's `scale_cam_image` applies to every CAM.
//
// Source: OpenCV `modules/imgproc/src/resize.cpp` (`resize`, `resizeGeneric_`, `HResizeLinear`,
// `VResizeLinear`). Half-pixel centres (align_corners = false), no antialias when shrinking:
//   scale = 1 / (dst / src)                               (in Double, as OpenCV does)
//   f = (d + 0.5) · scale − 0.5, s = floor(f), f −= s;  s < 0 → (s, f) = (0, 0);
//   s ≥ src − 1 → (s, f) = (src − 1, 0);  weights Float32(1 − f), Float32(f)
//   horizontal: row[d] = S[s]·w0 + S[s + 1]·w1, then vertical the same on rows, in Float32.
//
// Bit-exactness: OpenCV 5.0's x86 build (opencv-python-headless) differs from every plain
// Float32 formulation we tried (fused or not, horizontal or vertical first) by up to 1 ULP on
// ~20–40 % of the samples, presumably from its vectorised/IPP kernels. Computing the fractions
// in Double (as above) gives the closest agreement measured: max |Δ| = 1.2e-7 on [0, 1) maps.
// That is far below anything visible in a heatmap; tests allow 2.5e-7.

import TensorCore

/// One axis of OpenCV's INTER_LINEAR: source index and Float32 weights per output sample.
struct LinearAxis {
    var index: [Int]
    var w0: [Float]
    var w1: [Float]

    init(source: Int, destination: Int) {
        index = [Int](repeating: 0, count: destination)
        w0 = [Float](repeating: 1, count: destination)
        w1 = [Float](repeating: 0, count: destination)
        let scale = 1.0 / (Double(destination) / Double(source))
        for d in 0..<destination {
            var f = (Double(d) + 0.5) * scale - 0.5
            var s = Int(f.rounded(.down))
            f -= Double(s)
            if s < 0 { s = 0; f = 0 }
            if s >= source - 1 { s = source - 1; f = 0 }
            index[d] = s
            w0[d] = Float(1 - f)
            w1[d] = Float(f)
        }
    }
}

/// Resizes the last two dimensions of `map` to `height × width` with OpenCV's INTER_LINEAR
/// (half-pixel centres, no antialias), matching `cv2.resize(m, (width, height))` on Float32 maps
/// to within 1 ULP (tested: 7 → 224, non-integer up- and downscales; see the file header).
///
/// - Parameters:
///   - map: Float32 `[..., H, W]`; leading dimensions are batch dimensions and are kept.
///   - height: output height.
///   - width: output width.
/// - Returns: Float32 `[..., height, width]`.
/// - Precondition: rank ≥ 2, `H, W > 0`, `height, width > 0`.
public func resizedBilinear(_ map: Tensor, height: Int, width: Int) -> Tensor {
    let shape = map.shape
    precondition(shape.count >= 2, "resizedBilinear needs a map of rank ≥ 2, got \(shape)")
    let h = shape[shape.count - 2], w = shape[shape.count - 1]
    precondition(h > 0 && w > 0 && height > 0 && width > 0, "empty size in resize \(shape) → \(height)×\(width)")
    if h == height && w == width { return map }
    let lead = Array(shape.dropLast(2))
    let planes = lead.reduce(1, *)
    let ax = LinearAxis(source: w, destination: width), ay = LinearAxis(source: h, destination: height)
    var out = Tensor(uninitializedShape: lead + [height, width])
    if planes == 0 { return out }
    map.withUnsafeBufferPointer { sp in
        out.withUnsafeMutableBufferPointer { dp in
            ax.index.withUnsafeBufferPointer { xi in
            ax.w0.withUnsafeBufferPointer { xa in
            ax.w1.withUnsafeBufferPointer { xb in
                let s = sp.baseAddress!, d = dp.baseAddress!
                parallelRows(planes * height, work: width * 6) { range in
                    // Horizontally resampled copies of the two source rows in use.
                    var buffer = [Float](repeating: 0, count: 2 * width)
                    buffer.withUnsafeMutableBufferPointer { bp in
                        let r0 = bp.baseAddress!, r1 = r0 + width
                        func hresize(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>) {
                            for x in 0..<width {
                                let i = xi[x]
                                dst[x] = xb[x] == 0 ? src[i] * xa[x] : src[i] * xa[x] + src[i + 1] * xb[x]
                            }
                        }
                        var cached = (-1, -1)   // (plane, source row) currently in r0
                        for r in range {
                            let p = r / height, y = r % height
                            let plane = s + p * h * w
                            let sy = ay.index[y], b0 = ay.w0[y], b1 = ay.w1[y]
                            if cached != (p, sy) { hresize(plane + sy * w, r0); cached = (p, sy) }
                            let o = d + r * width
                            if b1 == 0 {
                                for x in 0..<width { o[x] = r0[x] * b0 }
                            } else {
                                hresize(plane + (sy + 1) * w, r1)
                                for x in 0..<width { o[x] = r0[x] * b0 + r1[x] * b1 }
                            }
                        }
                    }
                }
            }
            }
            }
        }
    }
    return out
}
