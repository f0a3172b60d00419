// PIL-compatible bilinear resampling with antialias, the resize that torchvision's `Resize`
// applies to PIL images (`Image.resize(size, Image.BILINEAR)`).
//
// Source: Pillow's `src/libImaging/Resample.c` (`precompute_coeffs`, `normalize_coeffs_8bpc`,
// `ImagingResampleHorizontal_8bpc`, `ImagingResampleVertical_8bpc`, `ImagingResampleInner`).
// Reproduced exactly, including the fixed-point arithmetic: a separable triangle filter whose
// support grows with the downscale factor, weights computed in Double, normalised, rounded to
// 22-bit fixed point; horizontal pass first (into an 8-bit intermediate, only over the rows the
// vertical pass needs), then vertical. The result is byte-identical to PIL's (tested on up- and
// downscales).

/// PIL's fixed-point precision for 8-bit resampling: 32 − 8 − 2 bits.
private let precisionBits = 22

/// Filter taps of one resampling axis in PIL's layout.
struct PILAxisCoefficients {
    /// Taps per output sample (the stride of `weights`).
    var taps: Int
    /// For each output sample: first input index and number of taps used.
    var first: [Int]
    var count: [Int]
    /// Fixed-point weights, `taps` per output sample.
    var weights: [Int32]

    /// PIL's `precompute_coeffs` + `normalize_coeffs_8bpc` for the bilinear (triangle) filter,
    /// resampling the input interval `[in0, in1)` of an axis of `inSize` pixels to `outSize`.
    init(inSize: Int, in0: Double = 0, in1: Double? = nil, outSize: Int) {
        let in1 = in1 ?? Double(inSize)
        let scale = (in1 - in0) / Double(outSize)
        let filterScale = max(scale, 1.0)
        let support = 1.0 * filterScale                 // bilinear support is 1
        taps = Int(support.rounded(.up)) * 2 + 1
        first = [Int](repeating: 0, count: outSize)
        count = [Int](repeating: 0, count: outSize)
        weights = [Int32](repeating: 0, count: outSize * taps)
        var k = [Double](repeating: 0, count: taps)
        let ss = 1.0 / filterScale
        for xx in 0..<outSize {
            let center = in0 + (Double(xx) + 0.5) * scale
            var xmin = Int(center - support + 0.5)      // C cast: truncation toward zero
            if xmin < 0 { xmin = 0 }
            var xmax = Int(center + support + 0.5)
            if xmax > inSize { xmax = inSize }
            xmax -= xmin
            var ww = 0.0
            for x in 0..<taps { k[x] = 0 }
            for x in 0..<max(0, xmax) {
                var t = (Double(x + xmin) - center + 0.5) * ss
                if t < 0 { t = -t }
                let w = t < 1 ? 1 - t : 0
                k[x] = w
                ww += w
            }
            for x in 0..<max(0, xmax) where ww != 0 { k[x] /= ww }
            first[xx] = xmin
            count[xx] = max(0, xmax)
            for x in 0..<taps {
                let v = k[x] * Double(1 << precisionBits)
                weights[xx * taps + x] = Int32(v < 0 ? (-0.5 + v) : (0.5 + v))
            }
        }
    }
}

@inline(__always)
private func clip8(_ v: Int32) -> UInt8 {
    if v >= Int32(1 << (precisionBits + 8)) { return 255 }
    if v <= 0 { return 0 }
    return UInt8(truncatingIfNeeded: v >> Int32(precisionBits))
}

extension RGBImage {
    /// The image resized to `width × height` exactly as PIL's
    /// `Image.resize((width, height), Image.BILINEAR)` does (antialiased when shrinking: the
    /// triangle filter's support is scaled by the downscale factor). Byte-identical to Pillow.
    /// - Precondition: `width, height > 0`.
    public func resized(width outW: Int, height outH: Int) -> RGBImage {
        precondition(outW > 0 && outH > 0, "resize to an empty size \(outW)×\(outH)")
        if outW == width && outH == height { return self }
        guard width > 0, height > 0 else { return RGBImage(width: outW, height: outH, color: .black) }
        let needH = outW != width, needV = outH != height
        let vert = PILAxisCoefficients(inSize: height, outSize: outH)
        var current = self
        var vFirst = vert.first
        if needH {
            let horiz = PILAxisCoefficients(inSize: width, outSize: outW)
            let rowFirst = vert.first[0]
            let rowLast = vert.first[outH - 1] + vert.count[outH - 1]
            if needV { vFirst = vFirst.map { $0 - rowFirst } }
            let rows = needV ? rowLast - rowFirst : height
            let rowOffset = needV ? rowFirst : 0
            current = resampleHorizontal(self, outWidth: outW, rows: rows, rowOffset: rowOffset, coefficients: horiz)
        }
        if needV {
            var shifted = vert
            shifted.first = vFirst
            current = resampleVertical(current, outHeight: outH, coefficients: shifted)
        }
        return current
    }
}

private func resampleHorizontal(_ src: RGBImage, outWidth: Int, rows: Int, rowOffset: Int,
                                coefficients c: PILAxisCoefficients) -> RGBImage {
    var out = [UInt8](repeating: 0, count: outWidth * rows * 3)
    let inW = src.width, taps = c.taps
    src.pixels.withUnsafeBufferPointer { sp in
        out.withUnsafeMutableBufferPointer { dp in
            c.weights.withUnsafeBufferPointer { kp in
                c.first.withUnsafeBufferPointer { fp in
                    c.count.withUnsafeBufferPointer { np in
                        let s = sp.baseAddress!, d = dp.baseAddress!, k = kp.baseAddress!
                        let f = fp.baseAddress!, n = np.baseAddress!
                        parallelRows(rows, work: outWidth * taps * 3) { range in
                            for y in range {
                                let row = s + (y + rowOffset) * inW * 3
                                let orow = d + y * outWidth * 3
                                for xx in 0..<outWidth {
                                    let kk = k + xx * taps
                                    var p = row + f[xx] * 3
                                    var s0: Int32 = 1 << (precisionBits - 1), s1 = s0, s2 = s0
                                    for x in 0..<n[xx] {
                                        let w = kk[x]
                                        s0 &+= Int32(p[0]) &* w
                                        s1 &+= Int32(p[1]) &* w
                                        s2 &+= Int32(p[2]) &* w
                                        p += 3
                                    }
                                    orow[xx * 3] = clip8(s0)
                                    orow[xx * 3 + 1] = clip8(s1)
                                    orow[xx * 3 + 2] = clip8(s2)
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    return RGBImage(width: outWidth, height: rows, pixels: out)
}

private func resampleVertical(_ src: RGBImage, outHeight: Int, coefficients c: PILAxisCoefficients) -> RGBImage {
    let w = src.width, rowBytes = w * 3, taps = c.taps
    var out = [UInt8](repeating: 0, count: rowBytes * outHeight)
    src.pixels.withUnsafeBufferPointer { sp in
        out.withUnsafeMutableBufferPointer { dp in
            c.weights.withUnsafeBufferPointer { kp in
                let s = sp.baseAddress!, d = dp.baseAddress!, k = kp.baseAddress!
                let first = c.first, count = c.count
                parallelRows(outHeight, work: rowBytes * taps) { range in
                    var acc = [Int32](repeating: 0, count: rowBytes)
                    acc.withUnsafeMutableBufferPointer { ap in
                        let a = ap.baseAddress!
                        for yy in range {
                            let kk = k + yy * taps
                            for i in 0..<rowBytes { a[i] = 1 << (precisionBits - 1) }
                            for y in 0..<count[yy] {
                                let wgt = kk[y]
                                let row = s + (first[yy] + y) * rowBytes
                                for i in 0..<rowBytes { a[i] &+= Int32(row[i]) &* wgt }
                            }
                            let orow = d + yy * rowBytes
                            for i in 0..<rowBytes { orow[i] = clip8(a[i]) }
                        }
                    }
                }
            }
        }
    }
    return RGBImage(width: w, height: outHeight, pixels: out)
}
