import Testing
@testable import Imaging

@Suite struct RGBImageTests {
    @Test func grayscaleMatchesPIL() throws {
        let rgb = try RGBImage(contentsOf: Fixtures.url("decode/rgb.png"))
        let gray = try RGBImage(contentsOf: Fixtures.url("decode/gray.png"))   // PIL convert("L")
        #expect(rgb.grayscale.rgb == gray)
    }

    @Test func cropPadsAndPasteClips() {
        var img = RGBImage(width: 4, height: 3, color: .white)
        let c = img.cropped(x: -1, y: 1, width: 3, height: 3)
        #expect(c[x: 0, y: 0] == .black && c[x: 1, y: 0] == .white && c[x: 2, y: 1] == .white && c[x: 1, y: 2] == .black)
        img.paste(RGBImage(width: 3, height: 3, color: .black), x: 2, y: -1)
        #expect(img[x: 1, y: 0] == .white && img[x: 2, y: 0] == .black && img[x: 3, y: 1] == .black && img[x: 3, y: 2] == .white)
    }
}
