import Foundation
import Testing
import TensorCore
@testable import Imaging

@Suite struct DecodingTests {
    @Test(arguments: Fixtures.manifest.decode.map(\.file))
    func decodesLikePIL(file: String) throws {
        let c = try #require(Fixtures.manifest.decode.first { $0.file == file })
        let image = try RGBImage(contentsOf: Fixtures.url(c.file))
        #expect(image.width == c.width && image.height == c.height, "\(c.kind): size")
        let expected = try Fixtures.bytes(c.expected)
        let diff = maxDifference(image.pixels, expected)
        #expect(diff <= c.tolerance, "\(c.kind): max |Δ| = \(diff) > \(c.tolerance)")
    }

    @Test(arguments: Fixtures.manifest.errors.map(\.file))
    func badFilesThrowDescriptiveErrors(file: String) throws {
        let c = try #require(Fixtures.manifest.errors.first { $0.file == file })
        let url = Fixtures.url(c.file)
        do {
            _ = try RGBImage(contentsOf: url)
            Issue.record("\(c.file) (\(c.kind)) decoded without error")
        } catch let error as ImageError {
            let text = error.description
            #expect(text.contains(url.path), "message must name the file: \(text)")
            switch c.kind {
            case "empty": #expect(error == .empty(path: url.path))
            case "truncated":
                guard case .truncated = error else { Issue.record("\(c.file): expected truncated, got \(text)"); return }
            case "corrupt":
                guard case .corrupt = error else { Issue.record("\(c.file): expected corrupt, got \(text)"); return }
            case "unknown": #expect(error == .unrecognizedFormat(path: url.path))
            case "too large":
                guard case .tooLarge = error else { Issue.record("\(c.file): expected tooLarge, got \(text)"); return }
            default:
                let format = String(c.kind.dropFirst("unsupported ".count))
                guard case .unsupportedFormat(_, let f) = error else { Issue.record("\(c.file): got \(text)"); return }
                #expect(f.uppercased() == format.uppercased())
                #expect(text.contains("CAMKit reads PNG and JPEG"))
            }
        }
    }

    @Test func pixelLimitIsConfigurable() throws {
        let bytes = try Fixtures.bytes("decode/rgb.png")   // 48 × 32 = 1536 pixels
        #expect(throws: ImageError.tooLarge(path: "x.png", width: 48, height: 32, limit: 1000)) {
            try RGBImage(decoding: bytes, name: "x.png", options: DecodingOptions(pixelLimit: 1000))
        }
        _ = try RGBImage(decoding: bytes, options: DecodingOptions(pixelLimit: 1536))
        let jpeg = try Fixtures.bytes("decode/baseline.jpg")
        #expect(throws: ImageError.self) { try RGBImage(decoding: jpeg, options: DecodingOptions(pixelLimit: 1535)) }
    }

    @Test func missingFileAndDirectoryAreUnreadable() {
        #expect(throws: ImageError.self) { try RGBImage(contentsOf: Fixtures.url("does-not-exist.png")) }
        do {
            _ = try RGBImage(contentsOf: Fixtures.directory)
        } catch let e as ImageError {
            guard case .unreadable(_, let reason) = e else { Issue.record("\(e)"); return }
            #expect(reason.contains("directory"))
        } catch { Issue.record("\(error)") }
    }

    @Test func alphaCanBeComposited() throws {
        let bytes = try Fixtures.bytes("decode/rgba.png")
        let white = try RGBImage(decoding: bytes, options: DecodingOptions(alpha: .composite(over: .white)))
        let plain = try RGBImage(decoding: bytes)
        // Row 0, columns 0..<8 have alpha 0 in the fixture: they become white.
        for x in 0..<8 { #expect(white[x: x, y: 0] == .white) }
        #expect(plain[x: 0, y: 0] != .white)
    }

    @Test func noPrefixOfAFileCrashesAndShortPrefixesThrow() throws {
        // Every prefix of a valid JPEG either throws or decodes; none ends the process.
        let jpeg = try Fixtures.bytes("decode/progressive.jpg")
        for n in stride(from: 0, to: jpeg.count, by: 7) {
            _ = try? RGBImage(decoding: Array(jpeg[0..<n]))
        }
        // A PNG cut anywhere before its final IEND chunk (12 bytes) is an error.
        let png = try Fixtures.bytes("decode/palette.png")
        var decoded: [Int] = []
        for n in stride(from: 0, to: png.count - 12, by: 5) where (try? RGBImage(decoding: Array(png[0..<n]))) != nil {
            decoded.append(n)
        }
        #expect(decoded.isEmpty, "prefixes that decoded: \(decoded) of \(png.count) bytes")
    }

}
