import Testing
@testable import Imaging

@Suite struct ResamplingTests {
    @Test(arguments: Fixtures.manifest.pil_resize.map(\.file))
    func bilinearIsByteIdenticalToPIL(file: String) throws {
        let c = try #require(Fixtures.manifest.pil_resize.first { $0.file == file })
        let source = try Fixtures.rgb("resize/pil_source.rgb")
        let out = source.resized(width: c.width, height: c.height)
        let expected = try Fixtures.bytes(c.file)
        #expect(maxDifference(out.pixels, expected) == 0, "\(c.width)×\(c.height)")
    }

    @Test func sameSizeIsIdentity() throws {
        let source = try Fixtures.rgb("resize/pil_source.rgb")
        #expect(source.resized(width: source.width, height: source.height) == source)
    }

    @Test func constantImageStaysConstant() {
        let c = RGBColor(red: 200, green: 13, blue: 77)
        let img = RGBImage(width: 101, height: 67, color: c)
        #expect(img.resized(width: 17, height: 90) == RGBImage(width: 17, height: 90, color: c))
    }
}
