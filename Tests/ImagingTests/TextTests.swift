// Text rendering against Pillow's FreeType driver: fixtures written by
// Scripts/fixtures/make_text_fixtures.py (PIL.ImageFont.truetype(DejaVuSans, size), basic layout).

import Foundation
import Testing
@testable import Imaging

private enum TextFixtures {
    struct Case: Decodable {
        let name, text: String
        let size, x, y, width, height: Int
        let kerned: Bool
        let ink, background: [UInt8]
    }
    struct Width: Decodable {
        let text: String
        let size, ascent, descent: Int
        let advance_sum, kerned_width: Int
    }
    struct Manifest: Decodable {
        let pillow, pillow_freetype, font: String
        let cases: [Case]
        let widths: [Width]
    }

    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/text")

    static func manifest() throws -> Manifest {
        try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: directory.appendingPathComponent("manifest.json")))
    }

    static func image(_ name: String) throws -> RGBImage {
        try RGBImage(contentsOf: directory.appendingPathComponent(name))
    }
}

/// The default font, or a test failure that says how to install it.
private func font(_ size: Int, kerning: Bool = true) throws -> Font {
    try Font.default(pixelHeight: size, kerning: kerning)
}

/// Per-byte differences between two equally sized byte arrays: the largest and how many differ.
private func differences(_ a: [UInt8], _ b: [UInt8]) -> (max: Int, count: Int) {
    var m = 0, n = 0
    for (x, y) in zip(a, b) where x != y {
        m = max(m, abs(Int(x) - Int(y)))
        n += 1
    }
    return (m, n)
}

@Suite struct TextTests {
    // Widths: Pillow's basic layout sums FreeType's hinted advances (`metrics.horiAdvance`); the
    // kerned widths add FreeType's grid-fitted kerning (read through Pillow, see the script).
    @Test func advanceWidthsAndLineMetricsMatchFreeTypeThroughPillow() throws {
        let manifest = try TextFixtures.manifest()
        #expect(manifest.widths.count >= 30)
        for w in manifest.widths {
            let plain = try font(w.size, kerning: false), kerned = try font(w.size)
            let m = plain.measure(w.text)
            #expect(m.width == w.advance_sum, "\(w.text) @ \(w.size) px")
            #expect(m.ascent == w.ascent && m.descent == w.descent, "\(w.text) @ \(w.size) px")
            #expect(kerned.measure(w.text).width == w.kerned_width, "\(w.text) @ \(w.size) px, kerned")
            #expect(kerned.width(of: w.text) == kerned.measure(w.text).width)
        }
        // The fixture set must exercise kerning somewhere, or the kerned check proves nothing.
        #expect(manifest.widths.contains { $0.kerned_width != $0.advance_sum })
    }

    // Coverage: the text drawn with ink 255 on a black grey canvas is its combined glyph coverage.
    @Test func coverageMatchesPillowRendering() throws {
        for c in try TextFixtures.manifest().cases {
            let f = try font(c.size, kerning: c.kerned)
            var canvas = GrayImage(width: c.width, height: c.height, pixels: [UInt8](repeating: 0, count: c.width * c.height))
            canvas.draw(text: c.text, at: (x: c.x, y: c.y), font: f)
            let expected = try TextFixtures.image("\(c.name).png").grayscale
            #expect(expected.width == c.width && expected.height == c.height)
            let d = differences(canvas.pixels, expected.pixels)
            #expect(d.max == 0, "\(c.name): \(d.count) pixels differ, by up to \(d.max)")
            #expect(expected.pixels.contains { $0 > 200 }, "\(c.name): fixture has no ink")
        }
    }

    // Colour: the ink is blended through the coverage as Pillow's ImageDraw.draw_bitmap does.
    @Test func colouredTextMatchesPillowBlend() throws {
        for c in try TextFixtures.manifest().cases {
            let f = try font(c.size, kerning: c.kerned)
            let background = RGBColor(red: c.background[0], green: c.background[1], blue: c.background[2])
            let ink = RGBColor(red: c.ink[0], green: c.ink[1], blue: c.ink[2])
            var canvas = RGBImage(width: c.width, height: c.height, color: background)
            canvas.draw(text: c.text, at: (x: c.x, y: c.y), font: f, color: ink)
            let expected = try TextFixtures.image("\(c.name)-rgb.png")
            let d = differences(canvas.pixels, expected.pixels)
            #expect(d.max == 0, "\(c.name): \(d.count) bytes differ, by up to \(d.max)")
        }
    }

    @Test func missingFontFileIsAClearError() throws {
        let url = URL(fileURLWithPath: "/nonexistent/NoSuchFont.ttf")
        #expect(throws: FontError.fileNotFound(path: url.path)) {
            try Font(contentsOf: url, pixelHeight: 12)
        }
        let message = FontError.fileNotFound(path: url.path).description
        #expect(message.contains("/nonexistent/NoSuchFont.ttf") && message.contains("Scripts/bootstrap.sh"))
        #expect(FontError.noDefaultFont(searched: ["/a.ttf"]).description.contains("fonts-dejavu-core"))
    }

    @Test func nonFontFileAndBadSizeAreClearErrors() throws {
        // A JSON file is not a font: FreeType's FT_New_Face reports "unknown file format" (0x02).
        let notAFont = TextFixtures.directory.appendingPathComponent("manifest.json")
        #expect(throws: FontError.freetype(path: notAFont.path, call: "FT_New_Face", code: 2)) {
            try Font(contentsOf: notAFont, pixelHeight: 12)
        }
        #expect(FontError.freetype(path: "x", call: "FT_New_Face", code: 2).description.contains("unknown file format"))
        let dejavu = try font(12).url
        #expect(throws: FontError.invalidPixelHeight(0)) { try Font(contentsOf: dejavu, pixelHeight: 0) }
        #expect(throws: FontError.invalidPixelHeight(5000)) { try Font(contentsOf: dejavu, pixelHeight: 5000) }
    }

    @Test func truncationFitsTheWidthWithAnEllipsis() throws {
        let f = try font(14)
        let text = "a rather long caption for a small tile"
        #expect(f.truncated(text, toWidth: 10_000) == text)
        for maxWidth in [20, 41, 60, 97, 150] {
            let t = f.truncated(text, toWidth: maxWidth)
            #expect(t.hasSuffix("…") && f.width(of: t) <= maxWidth, "\(maxWidth): '\(t)'")
            // One more character would not fit (the search keeps as much as possible).
            let kept = t.dropLast().count
            let longer = String(text.prefix(kept + 1)) + "…"
            #expect(f.width(of: longer) > maxWidth || text.prefix(kept + 1).last == " ", "\(maxWidth): '\(t)'")
        }
        #expect(f.truncated(text, toWidth: 2) == "")
    }

    @Test func captionBandSizeAndCentring() throws {
        let f = try font(12)
        let tile = RGBImage(width: 120, height: 50, color: RGBColor(red: 10, green: 200, blue: 30))
        let below = captioned(tile, caption: "tabby 0.42", font: f, position: .below, padding: 4)
        #expect(below.width == 120 && below.height == 50 + f.lineHeight + 8)
        #expect(below.cropped(x: 0, y: 0, width: 120, height: 50) == tile)
        // The ink lies inside the centred advance box [(W − w) / 2, (W + w) / 2] (plus a pixel of
        // side bearing slack) and on the band's text line.
        let w = f.width(of: "tabby 0.42"), x0 = (120 - w) / 2
        var inkColumns: [Int] = []
        for y in 50..<below.height { for x in 0..<120 where below[x: x, y: y] != .white { inkColumns.append(x) } }
        #expect(!inkColumns.isEmpty)
        #expect((inkColumns.min() ?? 0) >= x0 - 1 && (inkColumns.max() ?? 0) <= x0 + w + 1)
        let above = captioned(tile, caption: "two\nlines", font: f, position: .above, padding: 2)
        #expect(above.height == 50 + 2 * f.lineHeight + 4)
        #expect(above.cropped(x: 0, y: above.height - 50, width: 120, height: 50) == tile)
        // Too wide: shortened, never drawn past the tile.
        let narrow = captioned(RGBImage(width: 40, height: 10, color: .black), caption: "a very long class name", font: f)
        #expect(narrow.width == 40)
    }

    @Test func captionedGridLayout() throws {
        let f = try font(12)
        let a = RGBImage(width: 30, height: 20, color: .black)
        let grid = captionedGrid([[a, a, a], [a, a]], rowHeaders: ["cat", "cup"],
                                 columnHeaders: ["photo", "GradCAM", "EigenCAM"], font: f, padding: 5)
        // Header column: the widest row header plus 8; header row: one line plus 2 × 4 padding.
        let headerWidth = max(f.width(of: "cat"), f.width(of: "cup")) + 8
        let headerHeight = f.lineHeight + 8
        #expect(grid.width == 5 + headerWidth + 3 * (5 + 30) + 5)
        #expect(grid.height == 5 + headerHeight + 2 * (5 + 20) + 5)
        #expect(grid[x: 5 + headerWidth + 5, y: 5 + headerHeight + 5] == .black)   // first tile
        #expect(grid[x: grid.width - 6, y: grid.height - 6] == .white)            // the missing cell
    }

    // One Font shared by concurrent tasks draws exactly what it draws alone.
    @Test func concurrentDrawingWithOneFontIsDeterministic() async throws {
        let f = try font(15)
        func render(_ i: Int) -> RGBImage {
            var image = RGBImage(width: 80, height: 20, color: .white)
            image.draw(text: "channel \(i)", at: (x: 1, y: 1), font: f, color: .black)
            return image
        }
        let serial = (0..<32).map(render)
        let parallel = await withTaskGroup(of: (Int, RGBImage).self) { group in
            for i in 0..<32 { group.addTask { (i, render(i)) } }
            var out = [RGBImage?](repeating: nil, count: 32)
            for await (i, image) in group { out[i] = image }
            return out
        }
        #expect(parallel == serial.map { Optional($0) })
    }
}
