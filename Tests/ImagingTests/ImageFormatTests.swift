import Testing
@testable import Imaging

@Suite struct ImageFormatTests {
    @Test func formatIsDetectedByMagicNotExtension() throws {
        let png = try Fixtures.bytes("decode/rgb.png")
        let f = png.withUnsafeBytes { DetectedFormat(sniffing: $0) }
        #expect(f == .supported(.png))
        let jpeg = try Fixtures.bytes("decode/baseline.jpg")
        #expect(jpeg.withUnsafeBytes { DetectedFormat(sniffing: $0) } == .supported(.jpeg))
        #expect([UInt8]("GIF89a...".utf8).withUnsafeBytes { DetectedFormat(sniffing: $0) } == .unsupported("GIF"))
    }

    @Test func extensionsChooseTheOutputFormat() {
        #expect(ImageFormat(pathExtension: "JPG") == .jpeg)
        #expect(ImageFormat(pathExtension: "jpeg") == .jpeg)
        #expect(ImageFormat(pathExtension: "png") == .png)
        #expect(ImageFormat(pathExtension: "gif") == nil)
    }
}
