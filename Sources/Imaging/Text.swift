// Text rendering for captions and labels, through FreeType 2 (Debian: libfreetype-dev) and a
// TrueType font (default DejaVu Sans, Debian: fonts-dejavu-core).
//
// Semantics follow Pillow's FreeType driver (`src/_imagingft.c`, the "basic" layout, Pillow 10–13)
// so that a fixture drawn by `PIL.ImageDraw.text(..., font=ImageFont.truetype(path, size))` is a
// reference: the face is sized with a nominal request of `size × size` pixels, glyphs are loaded
// with `FT_LOAD_DEFAULT` (hinted, TrueType interpreter v40) and rendered anti-aliased
// (`FT_RENDER_MODE_NORMAL`), advances are the hinted `metrics.horiAdvance`, glyph coverages are
// combined with "over" (`a + b·(255 − a)/255`), and the colour is blended through the combined
// coverage exactly as Pillow's `ImageDraw.draw_bitmap` does. The text origin is Pillow's default
// anchor `"la"`: `x` is the left of the pen line, `y` the top of the font's ascender.
//
// Deliberate difference: Pillow's basic layout adds FreeType's kerning in the wrong unit (pixels
// added to 26.6 fixed point, i.e. 1/64 of it), so it effectively never kerns; CAMKit applies
// FreeType's grid-fitted kerning (`FT_KERNING_DEFAULT`, the font's `kern` table) in pixels. Pass
// `kerning: false` for Pillow's layout. No shaping (HarfBuzz) is done: one glyph per Unicode scalar,
// left to right, one line per `\n`-free string; control characters are skipped.

import CFreeType
import Foundation

/// A font could not be found or loaded.
public enum FontError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The font file does not exist.
    case fileNotFound(path: String)
    /// None of the default font locations holds a font.
    case noDefaultFont(searched: [String])
    /// The requested size is outside `1...Font.maximumPixelHeight`.
    case invalidPixelHeight(Int)
    /// FreeType rejected the file or a request (the FreeType error code is given).
    case freetype(path: String, call: String, code: Int32)

    /// One line for a user: the file, the problem and what to do.
    public var description: String {
        switch self {
        case let .fileNotFound(path):
            return "\(path): font file not found; install DejaVu Sans (Debian: fonts-dejavu-core, "
                + "installed by Scripts/bootstrap.sh) or set CAMKIT_FONT to a .ttf file."
        case let .noDefaultFont(searched):
            return "no caption font found (looked for \(searched.joined(separator: ", "))); install DejaVu Sans "
                + "(Debian: fonts-dejavu-core, installed by Scripts/bootstrap.sh) or set CAMKIT_FONT to a .ttf file."
        case let .invalidPixelHeight(height):
            return "font size \(height) px is outside 1...\(Font.maximumPixelHeight); choose a size in that range."
        case let .freetype(path, call, code):
            let reason: String
            switch code {
            case 0x01: reason = "cannot open the file"
            case 0x02: reason = "unknown file format"
            case 0x03: reason = "broken file"
            case 0x17: reason = "invalid pixel size for this font"
            case 0x40: reason = "out of memory"
            default: reason = "FreeType error 0x\(String(code, radix: 16))"
            }
            return "\(path): cannot use this font (\(call): \(reason)); use a TrueType/OpenType font file such as DejaVuSans.ttf."
        }
    }
}

/// Line metrics and the advance width of a string, in whole pixels.
public struct TextMetrics: Sendable, Equatable {
    /// The advance width: the sum of the glyphs' hinted advances plus kerning (what the pen moves).
    public var width: Int
    /// Pixels from the top of the line box (the font's ascender) to the baseline.
    public var ascent: Int
    /// Pixels from the baseline to the bottom of the line box (the font's descender), positive.
    public var descent: Int
    /// `ascent + descent`: the height of the line box.
    public var height: Int { ascent + descent }

    /// Creates metrics.
    public init(width: Int, ascent: Int, descent: Int) {
        self.width = width
        self.ascent = ascent
        self.descent = descent
    }
}

/// A TrueType/OpenType face at one pixel size, able to measure and draw single lines of text.
///
/// ```swift
/// let font = try Font.default(pixelHeight: 16)
/// var image = RGBImage(width: 200, height: 24, color: .white)
/// image.draw(text: "tabby cat 0.91", at: (x: 4, y: 2), font: font, color: .black)
/// ```
///
/// - Thread safety: each `Font` owns its own `FT_Library` and `FT_Face` (FreeType objects are not
///   thread-safe) and serialises every FreeType call and its glyph cache behind a lock, so one
///   `Font` may be shared between threads (`Sendable`); threads drawing at the same time with one
///   font take turns while rasterising glyphs (blending into images runs unlocked).
public final class Font: @unchecked Sendable {
    /// The largest accepted pixel height.
    public static let maximumPixelHeight = 2048

    /// Where ``default(pixelHeight:)`` looks for DejaVu Sans, in order: `$CAMKIT_FONT` when set,
    /// then the locations of Debian/Ubuntu (`fonts-dejavu-core`), Fedora, Arch and Homebrew.
    public static var defaultFontPaths: [String] {
        var paths: [String] = []
        if let custom = ProcessInfo.processInfo.environment["CAMKIT_FONT"], !custom.isEmpty { paths.append(custom) }
        paths += [
            "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
            "/usr/share/fonts/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/TTF/DejaVuSans.ttf",
            "/usr/local/share/fonts/DejaVuSans.ttf",
            "/opt/homebrew/share/fonts/DejaVuSans.ttf",
            "/Library/Fonts/DejaVuSans.ttf",
        ]
        return paths
    }

    /// DejaVu Sans at `pixelHeight` pixels, from the first of ``defaultFontPaths`` that exists.
    /// - Throws: ``FontError/noDefaultFont(searched:)`` (suggesting `Scripts/bootstrap.sh`), or the
    ///   errors of ``init(contentsOf:pixelHeight:kerning:)``.
    public static func `default`(pixelHeight: Int = 16, kerning: Bool = true) throws -> Font {
        let paths = defaultFontPaths
        guard let path = paths.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            throw FontError.noDefaultFont(searched: paths)
        }
        return try Font(contentsOf: URL(fileURLWithPath: path), pixelHeight: pixelHeight, kerning: kerning)
    }

    /// The font file.
    public let url: URL
    /// The nominal size in pixels (Pillow's `size` of `ImageFont.truetype`).
    public let pixelHeight: Int
    /// Whether FreeType's kerning is applied between glyph pairs.
    public let usesKerning: Bool
    /// Pixels from the top of the line box to the baseline (FreeType's scaled ascender, rounded).
    public let ascent: Int
    /// Pixels from the baseline to the bottom of the line box (minus FreeType's scaled descender).
    public let descent: Int
    /// The height of the line box, `ascent + descent`.
    public var lineHeight: Int { ascent + descent }

    private let library: FT_Library
    private let face: FT_Face
    private let hasKerning: Bool
    private let lock = NSLock()
    private var glyphs: [UInt32: Glyph] = [:]
    private var glyphIndices: [UInt32: UInt32] = [:]

    /// One rasterised glyph: its coverage and where it sits relative to the pen on the baseline.
    private struct Glyph {
        var coverage: [UInt8]
        var width: Int
        var rows: Int
        /// Pixels from the pen to the bitmap's left column.
        var left: Int
        /// Pixels from the baseline up to the bitmap's top row.
        var top: Int
        /// The hinted advance in 26.6 fixed point.
        var advance: Int
    }

    /// A placed glyph of a laid-out line.
    private struct Placed {
        var glyph: Glyph
        /// Pen position in pixels.
        var penX: Int
    }

    /// Loads a font file at a pixel size.
    /// - Parameters:
    ///   - url: a TrueType/OpenType file (`.ttf`, `.otf`, `.ttc` face 0).
    ///   - pixelHeight: the nominal size in pixels, `1...maximumPixelHeight`.
    ///   - kerning: apply the font's kerning pairs (default `true`; `false` gives Pillow's layout).
    /// - Throws: ``FontError/fileNotFound(path:)``, ``FontError/invalidPixelHeight(_:)`` or
    ///   ``FontError/freetype(path:call:code:)`` when FreeType cannot read the file.
    public init(contentsOf url: URL, pixelHeight: Int, kerning: Bool = true) throws {
        let path = url.path
        guard (1...Font.maximumPixelHeight).contains(pixelHeight) else { throw FontError.invalidPixelHeight(pixelHeight) }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw FontError.fileNotFound(path: path)
        }
        var lib: FT_Library?
        var error = FT_Init_FreeType(&lib)
        guard error == 0, let lib else { throw FontError.freetype(path: path, call: "FT_Init_FreeType", code: error) }
        var face: FT_Face?
        error = FT_New_Face(lib, path, 0, &face)
        guard error == 0, let face else {
            FT_Done_FreeType(lib)
            throw FontError.freetype(path: path, call: "FT_New_Face", code: error)
        }
        error = FT_Set_Pixel_Sizes(face, FT_UInt(pixelHeight), FT_UInt(pixelHeight))
        if error != 0 {
            FT_Done_Face(face)
            FT_Done_FreeType(lib)
            throw FontError.freetype(path: path, call: "FT_Set_Pixel_Sizes", code: error)
        }
        self.url = url
        self.pixelHeight = pixelHeight
        self.library = lib
        self.face = face
        self.hasKerning = camkit_ft_has_kerning(face) != 0
        self.usesKerning = kerning
        let metrics = face.pointee.size.pointee.metrics
        self.ascent = Font.pixels(Int(metrics.ascender))
        self.descent = -Font.pixels(Int(metrics.descender))
    }

    deinit {
        FT_Done_Face(face)
        FT_Done_FreeType(library)
    }

    /// The same face at another size (a new FreeType instance).
    /// - Throws: as ``init(contentsOf:pixelHeight:kerning:)``.
    public func withPixelHeight(_ pixelHeight: Int) throws -> Font {
        try Font(contentsOf: url, pixelHeight: pixelHeight, kerning: usesKerning)
    }

    /// The advance width of `text` and the line metrics.
    ///
    /// The width is the sum of the hinted advances plus, with kerning, FreeType's grid-fitted
    /// kerning of each adjacent pair (26.6 fixed point, rounded to pixels at the end as Pillow does).
    public func measure(_ text: String) -> TextMetrics {
        let (_, advance) = layout(text)
        return TextMetrics(width: advance, ascent: ascent, descent: descent)
    }

    /// The advance width of `text` in pixels (``measure(_:)``'s `width`).
    public func width(of text: String) -> Int { measure(text).width }

    /// `text` shortened with a trailing "…" so that its advance width is at most `maxWidth`.
    ///
    /// Returns `text` unchanged when it fits, and `""` when not even "…" fits.
    public func truncated(_ text: String, toWidth maxWidth: Int) -> String {
        if width(of: text) <= maxWidth { return text }
        let ellipsis = "…"
        if width(of: ellipsis) > maxWidth { return "" }
        // Binary search on the number of leading characters kept.
        let characters = Array(text)
        var low = 0, high = characters.count
        while low < high {
            let mid = (low + high + 1) / 2
            let candidate = String(characters[0..<mid]).trimmingTrailingSpaces + ellipsis
            if width(of: candidate) <= maxWidth { low = mid } else { high = mid - 1 }
        }
        return String(characters[0..<low]).trimmingTrailingSpaces + ellipsis
    }

    /// The coverage (0 = none, 255 = full) of `text` drawn with its origin (Pillow's `"la"` anchor)
    /// at `(x, y)`, clipped to a `width × height` canvas, as a sparse box: the bytes cover
    /// `box.x ..< box.x + box.width`, `box.y ..< box.y + box.height`, row-major.
    fileprivate func coverage(of text: String, x: Int, y: Int, canvasWidth: Int, canvasHeight: Int)
        -> (x: Int, y: Int, width: Int, height: Int, alpha: [UInt8])? {
        let (placed, _) = layout(text)
        guard !placed.isEmpty else { return nil }
        let baseline = y + ascent
        var minX = Int.max, minY = Int.max, maxX = Int.min, maxY = Int.min
        for p in placed where p.glyph.width > 0 && p.glyph.rows > 0 {
            let gx = x + p.penX + p.glyph.left, gy = baseline - p.glyph.top
            minX = min(minX, gx); minY = min(minY, gy)
            maxX = max(maxX, gx + p.glyph.width); maxY = max(maxY, gy + p.glyph.rows)
        }
        minX = max(minX, 0); minY = max(minY, 0)
        maxX = min(maxX, canvasWidth); maxY = min(maxY, canvasHeight)
        guard maxX > minX, maxY > minY else { return nil }
        let w = maxX - minX, h = maxY - minY
        var alpha = [UInt8](repeating: 0, count: w * h)
        alpha.withUnsafeMutableBufferPointer { dst in
            for p in placed where p.glyph.width > 0 && p.glyph.rows > 0 {
                let gx = x + p.penX + p.glyph.left, gy = baseline - p.glyph.top
                let x0 = max(gx, minX), x1 = min(gx + p.glyph.width, maxX)
                let y0 = max(gy, minY), y1 = min(gy + p.glyph.rows, maxY)
                guard x1 > x0, y1 > y0 else { continue }
                p.glyph.coverage.withUnsafeBufferPointer { src in
                    for row in y0..<y1 {
                        let s = (row - gy) * p.glyph.width - gx, d = (row - minY) * w - minX
                        for col in x0..<x1 {
                            let a = UInt32(src[s + col])
                            guard a > 0 else { continue }
                            let t = UInt32(dst[d + col])
                            // Pillow: target = a + MULDIV255(target, 255 - a) ("over").
                            dst[d + col] = t > 0 ? UInt8(min(255, a + mulDiv255(t, 255 - a))) : UInt8(a)
                        }
                    }
                }
            }
        }
        return (minX, minY, w, h, alpha)
    }

    /// Glyphs of `text` with pen positions, and the total advance in pixels.
    private func layout(_ text: String) -> ([Placed], Int) {
        lock.lock()
        defer { lock.unlock() }
        var placed: [Placed] = []
        var pen = 0  // 26.6
        var previous: UInt32 = 0
        for scalar in text.unicodeScalars where scalar.properties.generalCategory != .control {
            let index = glyphIndex(of: scalar)
            if usesKerning && hasKerning && previous != 0 && index != 0 {
                var delta = FT_Vector()
                if FT_Get_Kerning(face, previous, index, FT_KERNING_DEFAULT.rawValue, &delta) == 0 {
                    pen += Int(delta.x)
                }
            }
            guard let glyph = glyph(at: index) else { previous = 0; continue }
            placed.append(Placed(glyph: glyph, penX: Font.pixels(pen)))
            pen += glyph.advance
            previous = index
        }
        return (placed, Font.pixels(pen))
    }

    /// The glyph index of a scalar (0, FreeType's "missing glyph" box, when the font lacks it).
    /// Called with the lock held.
    private func glyphIndex(of scalar: Unicode.Scalar) -> UInt32 {
        if let cached = glyphIndices[scalar.value] { return cached }
        let index = UInt32(FT_Get_Char_Index(face, FT_ULong(scalar.value)))
        glyphIndices[scalar.value] = index
        return index
    }

    /// The rasterised glyph (cached); `nil` if FreeType cannot load it. Called with the lock held.
    private func glyph(at index: UInt32) -> Glyph? {
        if let cached = glyphs[index] { return cached }
        guard FT_Load_Glyph(face, index, camkit_ft_load_default | camkit_ft_load_render) == 0,
              let slot = face.pointee.glyph else { return nil }
        let bitmap = slot.pointee.bitmap
        let width = Int(bitmap.width), rows = Int(bitmap.rows), pitch = Int(bitmap.pitch)
        var coverage = [UInt8](repeating: 0, count: width * rows)
        if let buffer = bitmap.buffer, width > 0, rows > 0 {
            let mode = bitmap.pixel_mode
            for r in 0..<rows {
                // A negative pitch means the rows are stored bottom-up.
                let row = buffer + (pitch >= 0 ? r * pitch : (rows - 1 - r) * (-pitch))
                for c in 0..<width {
                    if mode == UInt8(FT_PIXEL_MODE_GRAY.rawValue) {
                        coverage[r * width + c] = row[c]
                    } else if mode == UInt8(FT_PIXEL_MODE_MONO.rawValue) {
                        coverage[r * width + c] = (row[c >> 3] & (0x80 >> UInt8(c & 7))) != 0 ? 255 : 0
                    }
                }
            }
        }
        let glyph = Glyph(coverage: coverage, width: width, rows: rows, left: Int(slot.pointee.bitmap_left),
                          top: Int(slot.pointee.bitmap_top), advance: Int(slot.pointee.metrics.horiAdvance))
        glyphs[index] = glyph
        return glyph
    }

    /// 26.6 fixed point to whole pixels, rounding half up (Pillow's and FreeType's `PIXEL`).
    private static func pixels(_ value: Int) -> Int { (value + 32) >> 6 }
}

/// `round(a · b / 255)` for bytes, as Pillow's `MULDIV255`.
@inline(__always)
private func mulDiv255(_ a: UInt32, _ b: UInt32) -> UInt32 {
    let t = a * b + 128
    return ((t >> 8) + t) >> 8
}

/// `round((ink · a + background · (255 − a)) / 255)`, Pillow's `BLEND`.
@inline(__always)
private func blend(_ background: UInt8, _ ink: UInt8, _ a: UInt32) -> UInt8 {
    let t = UInt32(ink) * a + UInt32(background) * (255 - a) + 128
    return UInt8(((t >> 8) + t) >> 8)
}

/// Blends `ink` (one value per channel, interleaved pixels) over `dst` through a coverage box.
private func blendCoverage(_ box: (x: Int, y: Int, width: Int, height: Int, alpha: [UInt8]), ink: [UInt8],
                           into dst: UnsafeMutableBufferPointer<UInt8>, imageWidth: Int) {
    let channels = ink.count
    box.alpha.withUnsafeBufferPointer { alpha in
        for row in 0..<box.height {
            for col in 0..<box.width {
                let a = UInt32(alpha[row * box.width + col])
                guard a > 0 else { continue }
                let i = ((box.y + row) * imageWidth + box.x + col) * channels
                for c in 0..<channels { dst[i + c] = blend(dst[i + c], ink[c], a) }
            }
        }
    }
}

extension String {
    fileprivate var trimmingTrailingSpaces: String {
        var s = Substring(self)
        while s.last == " " { s.removeLast() }
        return String(s)
    }
}

extension RGBImage {
    /// Draws one line of text, anti-aliased: `color` is blended over the pixels through the glyph
    /// coverage (Pillow's `ImageDraw.text` on an RGB image). Pixels outside the image are clipped.
    ///
    /// - Parameters:
    ///   - text: the text; one line (control characters such as `\n` are skipped).
    ///   - point: the left of the pen line and the top of the ascender (Pillow's `"la"` anchor);
    ///     the baseline is at `point.y + font.ascent`.
    ///   - font: the face and size.
    ///   - color: the ink colour.
    public mutating func draw(text: String, at point: (x: Int, y: Int), font: Font, color: RGBColor) {
        guard let box = font.coverage(of: text, x: point.x, y: point.y, canvasWidth: width, canvasHeight: height)
        else { return }
        let ink = [color.red, color.green, color.blue]
        pixels.withUnsafeMutableBufferPointer { blendCoverage(box, ink: ink, into: $0, imageWidth: width) }
    }
}

extension GrayImage {
    /// Draws one line of text, anti-aliased, with grey level `value` blended through the coverage
    /// (Pillow's `ImageDraw.text` on an `"L"` image: on black with `value` 255 this is the coverage).
    /// - Parameters: as ``RGBImage/draw(text:at:font:color:)``.
    public mutating func draw(text: String, at point: (x: Int, y: Int), font: Font, value: UInt8 = 255) {
        guard let box = font.coverage(of: text, x: point.x, y: point.y, canvasWidth: width, canvasHeight: height)
        else { return }
        pixels.withUnsafeMutableBufferPointer { blendCoverage(box, ink: [value], into: $0, imageWidth: width) }
    }
}

// MARK: - Text tiles and captions

/// Where a caption band goes relative to its image.
public enum CaptionPosition: String, Sendable, CaseIterable {
    /// A band above the image.
    case above
    /// A band below the image.
    case below
}

/// Text lines drawn centred on a tile of their own (a grid header, a caption band).
///
/// - Parameters:
///   - text: one or more lines separated by `\n`; each line is centred horizontally and shortened
///     with "…" when it is wider than `maxWidth − 2·padding`.
///   - font: the face and size; lines are `font.lineHeight` apart.
///   - color: the ink. Default black.
///   - background: the tile colour. Default white.
///   - padding: pixels of background around the text (≥ 0). Default 4.
///   - width: the tile width; `nil` for the widest line plus padding (capped at `maxWidth`).
///   - height: the tile height; `nil` for the lines plus padding. The text block is centred
///     vertically when the tile is taller.
///   - maxWidth: the widest the tile may be when `width` is `nil` (default: unlimited).
/// - Returns: the tile (at least 1×1).
public func textTile(_ text: String, font: Font, color: RGBColor = .black, background: RGBColor = .white,
                     padding: Int = 4, width: Int? = nil, height: Int? = nil, maxWidth: Int? = nil) -> RGBImage {
    let pad = max(0, padding)
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    let natural = (lines.map { font.width(of: $0) }.max() ?? 0) + 2 * pad
    let tileWidth = max(1, width ?? min(natural, maxWidth ?? Int.max))
    let blockHeight = lines.count * font.lineHeight
    let tileHeight = max(1, height ?? blockHeight + 2 * pad)
    var tile = RGBImage(width: tileWidth, height: tileHeight, color: background)
    let available = max(0, tileWidth - 2 * pad)
    var y = (tileHeight - blockHeight) / 2
    for line in lines {
        let shown = font.truncated(line, toWidth: available)
        let x = (tileWidth - font.width(of: shown)) / 2
        tile.draw(text: shown, at: (x: x, y: y), font: font, color: color)
        y += font.lineHeight
    }
    return tile
}

/// `image` with a caption band above or below it: the caption's lines centred, each shortened
/// with "…" when wider than the image (minus padding).
///
/// - Parameters:
///   - image: the tile to caption.
///   - caption: one or more lines separated by `\n`.
///   - font: the face and size.
///   - position: ``CaptionPosition/below`` (default) or ``CaptionPosition/above``.
///   - color: the text colour (default black); `background`: the band colour (default white).
///   - padding: pixels between the text and the band's edges (default 4).
/// - Returns: an image as wide as `image` and taller by the band.
public func captioned(_ image: RGBImage, caption: String, font: Font, position: CaptionPosition = .below,
                      color: RGBColor = .black, background: RGBColor = .white, padding: Int = 4) -> RGBImage {
    let band = textTile(caption, font: font, color: color, background: background, padding: padding,
                        width: max(1, image.width))
    var out = RGBImage(width: max(1, image.width), height: image.height + band.height, color: background)
    switch position {
    case .above:
        out.paste(band, x: 0, y: 0)
        out.paste(image, x: 0, y: band.height)
    case .below:
        out.paste(image, x: 0, y: 0)
        out.paste(band, x: 0, y: image.height)
    }
    return out
}
