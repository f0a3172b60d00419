// EXIF orientation: reading the tag from JPEG (APP1 "Exif") and PNG (eXIf) and applying it.
//
// Semantics follow the EXIF 2.32 specification, tag 0x0112, and match PIL's
// `ImageOps.exif_transpose` (tested on all eight values, both TIFF byte orders).

/// How the stored pixels must be transformed for display (EXIF tag 0x0112).
public enum ImageOrientation: Int, Sendable, Hashable, CaseIterable {
    /// 1: stored upright.
    case up = 1
    /// 2: mirrored left–right.
    case upMirrored = 2
    /// 3: rotated 180°.
    case down = 3
    /// 4: mirrored top–bottom.
    case downMirrored = 4
    /// 5: transposed (mirror about the main diagonal).
    case leftMirrored = 5
    /// 6: must be rotated 90° clockwise for display (a phone held upright).
    case right = 6
    /// 7: transversed (mirror about the anti-diagonal).
    case rightMirrored = 7
    /// 8: must be rotated 90° counter-clockwise for display.
    case left = 8

    /// Whether displaying the image swaps its width and height.
    public var swapsDimensions: Bool { rawValue >= 5 }
}

enum EXIFReader {
    /// The orientation stored in a JPEG's first APP1 Exif segment, if any and valid.
    static func jpegOrientation(_ b: UnsafeRawBufferPointer) -> ImageOrientation? {
        guard b.count >= 4, b[0] == 0xFF, b[1] == 0xD8 else { return nil }
        var i = 2
        while i + 4 <= b.count {
            guard b[i] == 0xFF else { return nil }
            let marker = b[i + 1]
            if marker == 0xFF { i += 1; continue }                      // fill byte
            if marker == 0x01 || (0xD0...0xD8).contains(marker) { i += 2; continue }  // no length
            if marker == 0xDA || marker == 0xD9 { return nil }          // image data: no more metadata
            let length = Int(b[i + 2]) << 8 | Int(b[i + 3])
            guard length >= 2, i + 2 + length <= b.count else { return nil }
            let start = i + 4, end = i + 2 + length
            if marker == 0xE1, end - start >= 6,
               b[start] == 0x45, b[start + 1] == 0x78, b[start + 2] == 0x69, b[start + 3] == 0x66,
               b[start + 4] == 0, b[start + 5] == 0 {
                return tiffOrientation(b, start: start + 6, end: end)
            }
            i = end
        }
        return nil
    }

    /// The orientation stored in a PNG's eXIf chunk (before the image data), if any and valid.
    static func pngOrientation(_ b: UnsafeRawBufferPointer) -> ImageOrientation? {
        var i = 8
        while i + 12 <= b.count {
            let length = Int(b[i]) << 24 | Int(b[i + 1]) << 16 | Int(b[i + 2]) << 8 | Int(b[i + 3])
            let type = (b[i + 4], b[i + 5], b[i + 6], b[i + 7])
            let start = i + 8, end = start + length
            guard length >= 0, end + 4 <= b.count else { return nil }
            if type == (0x49, 0x44, 0x41, 0x54) || type == (0x49, 0x45, 0x4E, 0x44) { return nil } // IDAT, IEND
            if type == (0x65, 0x58, 0x49, 0x66) {                     // eXIf
                var s = start
                // Some writers keep the JPEG-style "Exif\0\0" prefix.
                if end - s >= 6, b[s] == 0x45, b[s + 1] == 0x78, b[s + 2] == 0x69, b[s + 3] == 0x66 { s += 6 }
                return tiffOrientation(b, start: s, end: end)
            }
            i = end + 4
        }
        return nil
    }

    /// Reads tag 0x0112 from IFD0 of the TIFF structure in `b[start..<end]` (either byte order).
    static func tiffOrientation(_ b: UnsafeRawBufferPointer, start: Int, end: Int) -> ImageOrientation? {
        let n = end - start
        guard n >= 8 else { return nil }
        let little: Bool
        if b[start] == 0x49 && b[start + 1] == 0x49 { little = true }
        else if b[start] == 0x4D && b[start + 1] == 0x4D { little = false }
        else { return nil }
        func u16(_ o: Int) -> Int? {
            guard o >= 0, o + 2 <= n else { return nil }
            let a = Int(b[start + o]), c = Int(b[start + o + 1])
            return little ? a | c << 8 : a << 8 | c
        }
        func u32(_ o: Int) -> Int? {
            guard let lo = u16(little ? o : o + 2), let hi = u16(little ? o + 2 : o) else { return nil }
            return hi << 16 | lo
        }
        guard u16(2) == 42, let ifd = u32(4), let count = u16(ifd) else { return nil }
        for k in 0..<count {
            let entry = ifd + 2 + 12 * k
            guard let tag = u16(entry) else { return nil }
            guard tag == 0x0112 else { continue }
            guard let type = u16(entry + 2) else { return nil }
            let value: Int?
            switch type {
            case 3: value = u16(entry + 8)      // SHORT, as the specification says
            case 4: value = u32(entry + 8)      // LONG, written by a few tools
            default: value = nil
            }
            return value.flatMap { ImageOrientation(rawValue: $0) }
        }
        return nil
    }
}

extension RGBImage {
    /// The image as it should be displayed given the stored `orientation` (the transform that
    /// PIL's `ImageOps.exif_transpose` applies). Orientations 5–8 swap width and height.
    public func oriented(_ orientation: ImageOrientation) -> RGBImage {
        if orientation == .up { return self }
        let w = width, h = height
        let ow = orientation.swapsDimensions ? h : w, oh = orientation.swapsDimensions ? w : h
        // Source position for output (x, y): sx = ax*x + bx*y + cx, sy = ay*x + by*y + cy.
        let (ax, bx, cx, ay, by, cy): (Int, Int, Int, Int, Int, Int)
        switch orientation {
        case .up: (ax, bx, cx, ay, by, cy) = (1, 0, 0, 0, 1, 0)
        case .upMirrored: (ax, bx, cx, ay, by, cy) = (-1, 0, w - 1, 0, 1, 0)
        case .down: (ax, bx, cx, ay, by, cy) = (-1, 0, w - 1, 0, -1, h - 1)
        case .downMirrored: (ax, bx, cx, ay, by, cy) = (1, 0, 0, 0, -1, h - 1)
        case .leftMirrored: (ax, bx, cx, ay, by, cy) = (0, 1, 0, 1, 0, 0)
        case .right: (ax, bx, cx, ay, by, cy) = (0, 1, 0, -1, 0, h - 1)
        case .rightMirrored: (ax, bx, cx, ay, by, cy) = (0, -1, w - 1, -1, 0, h - 1)
        case .left: (ax, bx, cx, ay, by, cy) = (0, -1, w - 1, 1, 0, 0)
        }
        var out = [UInt8](repeating: 0, count: pixels.count)
        if out.isEmpty { return RGBImage(width: ow, height: oh, pixels: out) }
        // Tiles of 64×64 output pixels keep both the reads and the writes cache-friendly when the
        // transform walks the source by columns (orientations 5–8).
        let tile = 64
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                let s = src.baseAddress!, d = dst.baseAddress!
                let tileRows = (oh + tile - 1) / tile
                parallelRows(tileRows, work: ow * tile * 3) { range in
                    for ty in range {
                        let y0 = ty * tile, y1 = min(oh, y0 + tile)
                        for x0 in stride(from: 0, to: ow, by: tile) {
                            let x1 = min(ow, x0 + tile)
                            for y in y0..<y1 {
                                var sx = ax * x0 + bx * y + cx, sy = ay * x0 + by * y + cy
                                var o = (y * ow + x0) * 3
                                for _ in x0..<x1 {
                                    let i = (sy * w + sx) * 3
                                    d[o] = s[i]; d[o + 1] = s[i + 1]; d[o + 2] = s[i + 2]
                                    o += 3
                                    sx += ax; sy += ay
                                }
                            }
                        }
                    }
                }
            }
        }
        return RGBImage(width: ow, height: oh, pixels: out)
    }
}
