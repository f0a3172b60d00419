import Foundation
import Testing
import TensorCore
@testable import Imaging

/// Captum's `_normalize_attr` and matplotlib's colour lookups, written by
/// Scripts/fixtures/make_featvis_fixtures.py into Fixtures/attribution/normalize.json.
private struct NormalizeFixture: Decodable {
    struct NamedArray: Decodable { var shape: [Int]; var values: [Float] }
    struct Case: Decodable {
        var array: String
        var sign: String
        var outlierPercent: Double
        var threshold: Float
        var normalized: [Float]
    }
    struct ChannelSum: Decodable { var chw: NamedArray; var sum: [Float] }
    struct Heat: Decodable {
        var array: String
        var sign: String
        var outlierPercent: Double
        var colormap: String
        var rgb: [UInt8]
    }
    var arrays: [String: NamedArray]
    var normalize: [Case]
    var channelSum: ChannelSum
    var heat: [Heat]

    static func load() throws -> NormalizeFixture {
        try JSONDecoder().decode(NormalizeFixture.self, from: Data(contentsOf: Fixtures.url("attribution/normalize.json")))
    }

    func tensor(_ name: String) throws -> Tensor {
        let a = try #require(arrays[name])
        return Tensor(shape: a.shape, scalars: a.values)
    }
}

@Suite struct AttributionRenderingTests {
    /// Every sign mode and two outlier percentages, against Captum 0.9's own function.
    @Test func normalizationMatchesCaptum() throws {
        let fixture = try NormalizeFixture.load()
        #expect(fixture.normalize.count >= 28)
        for c in fixture.normalize {
            let sign = try #require(AttributionSign(rawValue: c.sign))
            let a = try fixture.tensor(c.array)
            var kept = a.scalars
            switch sign {
            case .all: break
            case .positive: kept = kept.map { max($0, 0) }
            case .negative: kept = kept.map { min($0, 0) }
            case .absoluteValue: kept = kept.map { abs($0) }
            }
            #expect(cumulativeSumThreshold(kept.map(abs), percentile: 100 - c.outlierPercent) == c.threshold,
                    "\(c.array) \(c.sign) \(c.outlierPercent)")
            let n = try normalizedAttribution(a, sign: sign, outlierPercent: c.outlierPercent)
            #expect(n.shape == a.shape)
            // Same float32 operations as NumPy: exact.
            #expect(n.scalars == c.normalized, "\(c.array) \(c.sign) \(c.outlierPercent)")
        }
    }

    @Test func zeroThresholdGivesZerosAndBadPercentIsAnError() throws {
        let positive = Tensor(shape: [2, 2], scalars: [1, 2, 3, 4])
        #expect(try normalizedAttribution(positive, sign: .negative).scalars == [0, 0, 0, 0])
        #expect(try normalizedAttribution(Tensor(zeros: [3, 3]), sign: .all).scalars == [Float](repeating: 0, count: 9))
        #expect(throws: AttributionRenderingError.invalidOutlierPercent(101)) {
            _ = try normalizedAttribution(positive, outlierPercent: 101)
        }
    }

    /// Captum's visualize_image_attr sums an (H, W, C) attribution over C; CAMKit's are (C, H, W).
    @Test func channelReductions() throws {
        let fixture = try NormalizeFixture.load()
        let chw = Tensor(shape: fixture.channelSum.chw.shape, scalars: fixture.channelSum.chw.values)
        let summed = try reducedChannels(chw, .sum)
        #expect(summed.shape == [4, 5])
        for (a, b) in zip(summed.scalars, fixture.channelSum.sum) { #expect(abs(a - b) <= 1e-6 * max(1, abs(b))) }
        // max |.| and Σ|.| by definition.
        let t = Tensor(shape: [1, 3, 1, 2], scalars: [1, -2, -3, 0.5, 2, 1])
        #expect(try reducedChannels(t, .maxAbsolute).scalars == [3, 2])
        #expect(try reducedChannels(t, .sumAbsolute).scalars == [6, 3.5])
        #expect(throws: AttributionRenderingError.self) { _ = try reducedChannels(Tensor(zeros: [4, 4]), .sum) }
    }

    /// matplotlib's `bwr`, Captum's RdWhGn and the ColorBrewer maps, byte for byte.
    @Test func colormapTablesMatchMatplotlib() throws {
        #expect(Colormap.bwr.table == (try Fixtures.bytes("attribution/bwr.rgb")))
        #expect(Colormap.rdWhGn.table == (try Fixtures.bytes("attribution/rdwhgn.rgb")))
        for (map, name) in [(Colormap.blues, "blues"), (.greens, "greens"), (.reds, "reds")] {
            #expect(map.table == (try Fixtures.bytes("attribution/\(name).rgb")), "\(name)")
        }
        #expect(Colormap(rawValue: "rdwhgn") == .rdWhGn)
    }

    /// matplotlib `cmap(Normalize(vmin, vmax)(norm_attr), bytes=True)` on Captum-normalised maps.
    @Test func heatmapColoursMatchMatplotlib() throws {
        let fixture = try NormalizeFixture.load()
        for h in fixture.heat {
            let sign = try #require(AttributionSign(rawValue: h.sign))
            let normalized = try normalizedAttribution(try fixture.tensor(h.array), sign: sign, outlierPercent: h.outlierPercent)
            let map = try #require(Colormap(rawValue: h.colormap))
            let image = try attributionHeatmap(normalized, sign: sign, colormap: map)
            #expect(image.pixels == h.rgb, "\(h.sign) \(h.colormap)")
        }
    }

    /// The blend by its formula: α·heat + (1 − α)·grey, grey = min–max stretched mean of R, G, B.
    @Test func blendedOverlay() throws {
        // Grey levels 0 and 255 at the two pixels (the stretch makes them black and white).
        let photo = RGBImage(width: 2, height: 1, pixels: [10, 20, 30, 200, 210, 220])
        let map = Tensor(shape: [1, 2], scalars: [1, 0])
        let blended = try blendedAttributionOverlay(photo, normalized: map, sign: .absoluteValue, colormap: .gray, alpha: 0.25)
        // Pixel 0: heat 255 (gray table, level 255), grey 0 → 63.75 → 64. Pixel 1: heat 0, grey 255 → 191.25 → 191.
        #expect(blended.pixels == [64, 64, 64, 191, 191, 191])
        #expect(throws: AttributionRenderingError.self) {
            _ = try blendedAttributionOverlay(photo, normalized: Tensor(zeros: [2, 2]))
        }
        #expect(throws: AttributionRenderingError.invalidAlpha(1.5)) {
            _ = try blendedAttributionOverlay(photo, normalized: map, alpha: 1.5)
        }
    }

    @Test func featureMapAndKernelTiles() throws {
        let maps = Tensor(shape: [3, 2, 2], scalars: [0, 1, 1, 0, 0.5, 0.5, 0.5, 0.5, 1, 1, 1, 1])
        let tiles = try featureMapTiles(maps, captions: ["#4", "#0", "#7"], tileSize: (4, 4), colormap: .gray)
        #expect(tiles.tiles.count == 3 && tiles.captions == ["#4", "#0", "#7"])
        #expect(tiles.tiles[0].width == 4 && tiles.tiles[0].height == 4)
        #expect(tiles.tiles[2][x: 1, y: 1] == Colormap.gray.color(255))
        #expect(tiles.tiles[1][x: 2, y: 3] == Colormap.gray.color(127))       // uint8(255 · 0.5)
        let grid = tiles.grid(columns: 2, padding: 1)
        #expect(grid.width == 2 * 4 + 3 && grid.height == 2 * 4 + 3)
        #expect(throws: AttributionRenderingError.captionCount(1, tiles: 3)) { _ = try featureMapTiles(maps, captions: ["x"]) }
        // With a font, each caption is drawn in a band under its tile (ink below the tile area).
        if let font = try? Font.default(pixelHeight: 10) {
            let big = try featureMapTiles(maps, captions: ["#4", "#0", "#7"], tileSize: (24, 24), colormap: .gray)
            let labelled = big.grid(captionFont: font, columns: 3, padding: 1)
            #expect(labelled.width == 3 * 24 + 4 * 1)          // captioned tiles keep the tile width
            #expect(labelled.height > 24 + 2 * 1)              // the caption band adds height
            let band = (1 + 24)..<(labelled.height - 1)
            let ink = band.contains { y in (1..<25).contains { x in labelled[x: x, y: y] != RGBColor.white } }
            #expect(ink, "caption '#4' drawn under the first tile")
        }

        // Two RGB kernels 1×2: weight (k, c, 0, x) → pixel x of kernel k, channel c.
        let rgb = Tensor(shape: [2, 3, 1, 2], scalars: [1, 0, 0, 1, 0, 0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5])
        let k = try kernelTiles(rgb, captions: ["#0", "#1"], scale: 2)
        #expect(k.tiles.count == 2 && k.tiles[0].width == 4 && k.tiles[0].height == 2)
        #expect(k.tiles[0][x: 0, y: 1] == RGBColor(red: 255, green: 0, blue: 0))
        #expect(k.tiles[0][x: 3, y: 0] == RGBColor(red: 0, green: 255, blue: 0))
        #expect(k.tiles[1][x: 1, y: 1] == RGBColor(red: 127, green: 127, blue: 127))
        // Grey: one tile per input channel.
        let grey = try kernelTiles(rgb, captions: ["#0", "#1"], rgb: false, scale: 1)
        #expect(grey.tiles.count == 6 && grey.captions[4] == "#1/1")
        #expect(grey.tiles[1][x: 0, y: 0] == RGBColor(red: 0, green: 0, blue: 0))
        #expect(grey.tiles[0][x: 0, y: 0] == RGBColor(red: 255, green: 255, blue: 255))
        #expect(grey.tiles[2][x: 1, y: 0] == RGBColor(red: 0, green: 0, blue: 0))
        #expect(throws: AttributionRenderingError.self) {
            _ = try kernelTiles(Tensor(zeros: [2, 4, 3, 3]), rgb: true)
        }
    }
}
