// The pixel containers of the Imaging module.

/// An 8-bit sRGB colour.
public struct RGBColor: Sendable, Hashable {
    /// Red, 0–255.
    public var red: UInt8
    /// Green, 0–255.
    public var green: UInt8
    /// Blue, 0–255.
    public var blue: UInt8

    /// Creates a colour from its three channels.
    public init(red: UInt8, green: UInt8, blue: UInt8) {
        self.red = red
        self.green = green
        self.blue = blue
    }

    /// Black (0, 0, 0).
    public static let black = RGBColor(red: 0, green: 0, blue: 0)
    /// White (255, 255, 255).
    public static let white = RGBColor(red: 255, green: 255, blue: 255)
    /// The mid grey (114, 114, 114) that YOLO-style letterboxing pads with.
    public static let letterboxGray = RGBColor(red: 114, green: 114, blue: 114)
}

/// An 8-bit RGB image.
///
/// - Layout: interleaved `RGBRGB…`, rows top to bottom, no row padding:
///   the pixel at column `x`, row `y` starts at `pixels[(y * width + x) * 3]`.
/// - Colour: sRGB-encoded values as stored in the file (no colour management).
/// - Value semantics (`Array` storage); `==` compares every byte.
public struct RGBImage: Sendable, Equatable {
    /// Width in pixels.
    public let width: Int
    /// Height in pixels.
    public let height: Int
    /// `width * height * 3` interleaved RGB bytes, top row first.
    public var pixels: [UInt8]

    /// Wraps interleaved RGB bytes.
    /// - Precondition: `width, height >= 0` and `pixels.count == width * height * 3`.
    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width >= 0 && height >= 0, "negative image size \(width)×\(height)")
        precondition(pixels.count == width * height * 3,
                     "\(pixels.count) bytes for a \(width)×\(height) RGB image (need \(width * height * 3))")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// An image filled with one colour.
    /// - Precondition: `width, height >= 0`.
    public init(width: Int, height: Int, color: RGBColor) {
        precondition(width >= 0 && height >= 0, "negative image size \(width)×\(height)")
        var p = [UInt8](repeating: 0, count: width * height * 3)
        p.withUnsafeMutableBufferPointer { b in
            var i = 0
            while i < b.count {
                b[i] = color.red; b[i + 1] = color.green; b[i + 2] = color.blue
                i += 3
            }
        }
        self.init(width: width, height: height, pixels: p)
    }

    /// The colour at column `x`, row `y`.
    /// - Precondition: the position is inside the image.
    public subscript(x x: Int, y y: Int) -> RGBColor {
        get {
            precondition(x >= 0 && x < width && y >= 0 && y < height, "pixel (\(x), \(y)) outside \(width)×\(height)")
            let i = (y * width + x) * 3
            return RGBColor(red: pixels[i], green: pixels[i + 1], blue: pixels[i + 2])
        }
        set {
            precondition(x >= 0 && x < width && y >= 0 && y < height, "pixel (\(x), \(y)) outside \(width)×\(height)")
            let i = (y * width + x) * 3
            pixels[i] = newValue.red; pixels[i + 1] = newValue.green; pixels[i + 2] = newValue.blue
        }
    }

    /// The luma image `(19595 R + 38470 G + 7471 B + 32768) >> 16` — ITU-R BT.601 weights in
    /// PIL's fixed point, so it equals PIL's `convert("L")` exactly (tested).
    public var grayscale: GrayImage {
        var out = [UInt8](repeating: 0, count: width * height)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for i in 0..<dst.count {
                    let r = UInt32(src[3 * i]), g = UInt32(src[3 * i + 1]), b = UInt32(src[3 * i + 2])
                    // PIL: L = (R*19595 + G*38470 + B*7471 + 0x8000) >> 16
                    dst[i] = UInt8((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16)
                }
            }
        }
        return GrayImage(width: width, height: height, pixels: out)
    }

    /// The region `x..<x+width`, `y..<y+height`; parts outside the image are filled with `fill`
    /// (torchvision's `CenterCrop` pads with zeros, i.e. black).
    /// - Precondition: `width, height >= 0`.
    public func cropped(x: Int, y: Int, width w: Int, height h: Int, fill: RGBColor = .black) -> RGBImage {
        var out = RGBImage(width: w, height: h, color: fill)
        let x0 = max(0, x), x1 = min(width, x + w)
        guard x1 > x0 else { return out }
        let rowBytes = (x1 - x0) * 3
        out.pixels.withUnsafeMutableBufferPointer { dst in
            pixels.withUnsafeBufferPointer { src in
                for oy in 0..<h {
                    let sy = y + oy
                    guard sy >= 0 && sy < height else { continue }
                    let s = src.baseAddress! + (sy * width + x0) * 3
                    let d = dst.baseAddress! + (oy * w + (x0 - x)) * 3
                    d.update(from: s, count: rowBytes)
                }
            }
        }
        return out
    }
}

/// An 8-bit single-channel image (a mask, a heatmap before colouring, a grey photo).
///
/// - Layout: one byte per pixel, rows top to bottom: pixel `(x, y)` is `pixels[y * width + x]`.
public struct GrayImage: Sendable, Equatable {
    /// Width in pixels.
    public let width: Int
    /// Height in pixels.
    public let height: Int
    /// `width * height` bytes, top row first.
    public var pixels: [UInt8]

    /// Wraps grey bytes.
    /// - Precondition: `width, height >= 0` and `pixels.count == width * height`.
    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width >= 0 && height >= 0, "negative image size \(width)×\(height)")
        precondition(pixels.count == width * height,
                     "\(pixels.count) bytes for a \(width)×\(height) gray image")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// The same image with the grey value copied into R, G and B.
    public var rgb: RGBImage {
        var out = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<(width * height) {
            let v = pixels[i]
            out[3 * i] = v; out[3 * i + 1] = v; out[3 * i + 2] = v
        }
        return RGBImage(width: width, height: height, pixels: out)
    }
}
