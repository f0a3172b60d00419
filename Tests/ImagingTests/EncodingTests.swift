import Foundation
import Testing
@testable import Imaging

@Suite struct EncodingTests {
    static func sample() throws -> RGBImage { try RGBImage(contentsOf: Fixtures.url("decode/rgb.png")) }

    @Test func pngRoundTripIsLossless() throws {
        let image = try Self.sample()
        for compression in [PNGCompression.fast, .standard] {
            let data = try image.pngData(compression: compression)
            #expect(try RGBImage(decoding: data) == image)
        }
        let gray = image.grayscale
        let back = try RGBImage(decoding: try gray.pngData())
        #expect(back == gray.rgb)
    }

    @Test func jpegRoundTripIsClose() throws {
        let image = try Self.sample()
        let data = try image.jpegData(quality: 95)
        #expect(data.starts(with: [0xFF, 0xD8, 0xFF]))
        let back = try RGBImage(decoding: data)
        #expect(back.width == image.width && back.height == image.height)
        var total = 0
        for i in 0..<image.pixels.count { total += abs(Int(image.pixels[i]) - Int(back.pixels[i])) }
        #expect(Double(total) / Double(image.pixels.count) < 3)
        let grayJPEG = try image.grayscale.jpegData()
        #expect(try RGBImage.header(of: grayJPEG).format == .jpeg)
    }

    @Test func emptyImagesDoNotEncode() {
        let empty = RGBImage(width: 0, height: 0, pixels: [])
        #expect(throws: ImageError.self) { try empty.pngData() }
        #expect(throws: ImageError.self) { try empty.jpegData() }
    }

    @Test func writeIsAtomicAndPicksTheFormatFromTheExtension() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("camkit-imaging-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let image = try Self.sample()
        let png = dir.appendingPathComponent("out.png"), jpg = dir.appendingPathComponent("out.JPG")
        try image.write(to: png)
        try image.write(to: jpg)
        #expect(try RGBImage.header(of: Data(contentsOf: png)).format == .png)
        #expect(try RGBImage.header(of: Data(contentsOf: jpg)).format == .jpeg)
        // Overwrite in place; no temporary files remain.
        try image.oriented(.down).write(to: png)
        #expect(try RGBImage(contentsOf: png) == image.oriented(.down))
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        #expect(names == ["out.JPG", "out.png"])
        // Permissions follow the umask like a normally created file (not mkstemp's 0600).
        let mode = try FileManager.default.attributesOfItem(atPath: png.path)[.posixPermissions] as? Int
        #expect(mode.map { $0 & 0o044 != 0 } ?? false)
    }

    @Test func writingIntoAMissingDirectoryFailsCleanly() throws {
        let image = try Self.sample()
        let url = URL(fileURLWithPath: "/nonexistent-camkit-dir/out.png")
        do {
            try image.write(to: url)
            Issue.record("write succeeded")
        } catch let e as ImageError {
            guard case .writeFailed(let path, _) = e else { Issue.record("\(e)"); return }
            #expect(path == url.path)
        }
    }
}
