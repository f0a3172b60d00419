import Testing
@testable import Imaging

@Suite struct OrientationTests {
    @Test func orientationSwapsDimensionsAndHeaderReportsIt() throws {
        for o in 1...8 {
            let bytes = try Fixtures.bytes("decode/exif_orientation_\(o).jpg")
            let header = try RGBImage.header(of: bytes)
            #expect(header.orientation.rawValue == o)
            #expect(header.storedWidth == 48 && header.storedHeight == 32)
            #expect(header.width == (o >= 5 ? 32 : 48))
            let raw = try RGBImage(decoding: bytes, options: DecodingOptions(appliesOrientation: false))
            #expect(raw.width == 48 && raw.height == 32)
        }
    }

    @Test func orientationTransformsAreConsistent() {
        // A 3×2 image with distinct pixels; check against explicit expectations.
        let img = RGBImage(width: 3, height: 2, pixels: (0..<18).map { UInt8($0 / 3) })  // pixel k has value k
        func values(_ i: RGBImage) -> [UInt8] { stride(from: 0, to: i.pixels.count, by: 3).map { i.pixels[$0] } }
        #expect(values(img.oriented(.upMirrored)) == [2, 1, 0, 5, 4, 3])
        #expect(values(img.oriented(.down)) == [5, 4, 3, 2, 1, 0])
        #expect(values(img.oriented(.downMirrored)) == [3, 4, 5, 0, 1, 2])
        #expect(values(img.oriented(.leftMirrored)) == [0, 3, 1, 4, 2, 5])   // transpose
        #expect(values(img.oriented(.right)) == [3, 0, 4, 1, 5, 2])          // 90° clockwise
        #expect(values(img.oriented(.rightMirrored)) == [5, 2, 4, 1, 3, 0])  // transverse
        #expect(values(img.oriented(.left)) == [2, 5, 1, 4, 0, 3])           // 90° counter-clockwise
    }

    @Test func pngExifChunkIsApplied() throws {
        let bytes = try Fixtures.bytes("decode/exif_orientation_6.png")
        let header = try RGBImage.header(of: bytes)
        #expect(header.format == .png && header.orientation == .right)
        let image = try RGBImage(decoding: bytes)
        #expect(image.width == 32 && image.height == 48)
    }

    @Test func malformedExifIsIgnored() {
        // A TIFF header pointing its IFD beyond the segment, and an unknown orientation value.
        let outOfRange: [UInt8] = Array("II".utf8) + [42, 0, 0xFF, 0, 0, 0]
        let bad = outOfRange.withUnsafeBytes { EXIFReader.tiffOrientation($0, start: 0, end: $0.count) }
        #expect(bad == nil)
        let nine: [UInt8] = Array("MM".utf8) + [0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 9, 0, 0]
        #expect(nine.withUnsafeBytes { EXIFReader.tiffOrientation($0, start: 0, end: $0.count) } == nil)
        let six = nine.enumerated().map { $0.offset == 19 ? UInt8(6) : $0.element }
        #expect(six.withUnsafeBytes { EXIFReader.tiffOrientation($0, start: 0, end: $0.count) } == .right)
    }
}
