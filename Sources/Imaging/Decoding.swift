// Decoding PNG and JPEG files into RGBImage: format by magic bytes, header read (and pixel limit
// checked) before any pixel memory is allocated, EXIF orientation applied.
//
// Matches what the references feed their models: PIL's `Image.open(p).convert("RGB")` (torchvision's
// loader) and `cv2.imread(p, IMREAD_COLOR)` (pytorch-grad-cam's examples): alpha is dropped, not
// composited; 16-bit channels are reduced to 8 bits; CMYK is converted to RGB. Both references
// use libjpeg-turbo with the same default IDCT and upsampling, so decoded JPEG pixels agree exactly
// or within ±1 (tested).

import CCodecs
import Foundation

/// What to do with an alpha channel.
public enum AlphaHandling: Sendable, Hashable {
    /// Ignore alpha and keep the stored colour (PIL's `convert("RGB")`, OpenCV's `IMREAD_COLOR`).
    case discard
    /// Composite over a solid colour: `c·a + background·(1 − a)`, in 8-bit sRGB values.
    case composite(over: RGBColor)
}

/// Settings for reading images.
public struct DecodingOptions: Sendable, Hashable {
    /// The default pixel limit: 100 megapixels.
    public static let defaultPixelLimit = 100_000_000

    /// Images whose header announces more than this many pixels (width × height) are refused with
    /// ``ImageError/tooLarge(path:width:height:limit:)`` before pixel memory is allocated.
    public var pixelLimit: Int
    /// Whether to apply the EXIF orientation (JPEG APP1 Exif, PNG eXIf) so that the decoded image
    /// is upright, as OpenCV's `imread` and PIL's `exif_transpose` do. Default `true`.
    /// (torchvision's PIL loader does *not* apply it; set `false` to reproduce that.)
    public var appliesOrientation: Bool
    /// What to do with an alpha channel. Default ``AlphaHandling/discard``.
    public var alpha: AlphaHandling

    /// Creates decoding settings; every parameter has the documented default.
    public init(pixelLimit: Int = DecodingOptions.defaultPixelLimit,
                appliesOrientation: Bool = true,
                alpha: AlphaHandling = .discard) {
        self.pixelLimit = pixelLimit
        self.appliesOrientation = appliesOrientation
        self.alpha = alpha
    }
}

/// What an image file's header says, read without decoding pixels.
public struct ImageHeader: Sendable, Hashable {
    /// The file's format.
    public var format: ImageFormat
    /// Stored width in pixels (before orientation).
    public var storedWidth: Int
    /// Stored height in pixels (before orientation).
    public var storedHeight: Int
    /// The EXIF orientation, ``ImageOrientation/up`` when absent.
    public var orientation: ImageOrientation
    /// Displayed width: the stored width, or the stored height when the orientation swaps them.
    public var width: Int { orientation.swapsDimensions ? storedHeight : storedWidth }
    /// Displayed height.
    public var height: Int { orientation.swapsDimensions ? storedWidth : storedHeight }
}

extension RGBImage {
    /// Reads and decodes a PNG or JPEG file.
    ///
    /// - Parameters:
    ///   - url: a file URL.
    ///   - options: pixel limit, orientation and alpha handling.
    /// - Throws: ``ImageError`` naming the file: unreadable, empty, unsupported or unrecognised
    ///   format, truncated, corrupt, or over the pixel limit.
    public init(contentsOf url: URL, options: DecodingOptions = DecodingOptions()) throws {
        let bytes = try readFile(url)
        self = try bytes.withUnsafeBytes { try ImageDecoder.decode($0, name: url.path, options: options) }
    }

    /// Decodes a PNG or JPEG held in memory.
    ///
    /// - Parameters:
    ///   - data: the encoded file.
    ///   - name: what error messages call the data (a path or URL), `"<memory>"` by default.
    ///   - options: pixel limit, orientation and alpha handling.
    /// - Throws: ``ImageError`` (see ``init(contentsOf:options:)``).
    public init(decoding data: some ContiguousBytes, name: String = "<memory>",
                options: DecodingOptions = DecodingOptions()) throws {
        self = try data.withUnsafeBytes { try ImageDecoder.decode($0, name: name, options: options) }
    }

    /// Reads only the header of an encoded image: format, size and orientation.
    /// - Throws: ``ImageError`` as for decoding (but never ``ImageError/tooLarge(path:width:height:limit:)``).
    public static func header(of data: some ContiguousBytes, name: String = "<memory>") throws -> ImageHeader {
        try data.withUnsafeBytes { try ImageDecoder.header($0, name: name) }
    }
}

/// Reads a whole file with POSIX calls, so that errors carry `strerror` text.
func readFile(_ url: URL) throws -> [UInt8] {
    let path = url.path
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { throw ImageError.unreadable(path: path, reason: String(cString: strerror(errno))) }
    defer { close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0 else { throw ImageError.unreadable(path: path, reason: String(cString: strerror(errno))) }
    guard (st.st_mode & S_IFMT) != S_IFDIR else { throw ImageError.unreadable(path: path, reason: "it is a directory") }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(Int(st.st_size))
    var chunk = [UInt8](repeating: 0, count: 1 << 20)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            throw ImageError.unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        if n == 0 { break }
        bytes.append(contentsOf: chunk[0..<n])
    }
    return bytes
}

enum ImageDecoder {
    static func message(_ buffer: [CChar]) -> String {
        buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    /// Whether a decoder message means "the data ended early".
    static func isTruncation(_ message: String) -> Bool {
        let m = message.lowercased()
        return ["premature end", "end of data", "not enough", "truncated", "unexpected end", "eof",
                "read beyond"].contains { m.contains($0) }
    }

    static func failure(_ format: ImageFormat, _ name: String, _ detail: String) -> ImageError {
        isTruncation(detail)
            ? .truncated(path: name, format: format.rawValue, detail: detail)
            : .corrupt(path: name, format: format.rawValue, detail: detail)
    }

    static func format(of bytes: UnsafeRawBufferPointer, name: String) throws -> ImageFormat {
        guard bytes.count > 0 else { throw ImageError.empty(path: name) }
        switch DetectedFormat(sniffing: bytes) {
        case .supported(let f): return f
        case .unsupported(let f): throw ImageError.unsupportedFormat(path: name, format: f)
        case .unknown: throw ImageError.unrecognizedFormat(path: name)
        }
    }

    static func info(_ bytes: UnsafeRawBufferPointer, format: ImageFormat, name: String) throws -> ccodecs_info {
        var info = ccodecs_info()
        var text = [CChar](repeating: 0, count: Int(CCODECS_MESSAGE_SIZE))
        let base = bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let rc = format == .jpeg
            ? ccodecs_jpeg_info(base, bytes.count, &info, &text)
            : ccodecs_png_info(base, bytes.count, &info, &text)
        guard rc == 0 else { throw failure(format, name, message(text)) }
        guard info.width > 0, info.height > 0 else {
            throw ImageError.corrupt(path: name, format: format.rawValue, detail: "zero width or height")
        }
        return info
    }

    static func orientation(_ bytes: UnsafeRawBufferPointer, format: ImageFormat) -> ImageOrientation {
        let o = format == .jpeg ? EXIFReader.jpegOrientation(bytes) : EXIFReader.pngOrientation(bytes)
        return o ?? .up
    }

    static func header(_ bytes: UnsafeRawBufferPointer, name: String) throws -> ImageHeader {
        let format = try format(of: bytes, name: name)
        let info = try info(bytes, format: format, name: name)
        return ImageHeader(format: format, storedWidth: Int(info.width), storedHeight: Int(info.height),
                           orientation: orientation(bytes, format: format))
    }

    static func decode(_ bytes: UnsafeRawBufferPointer, name: String, options: DecodingOptions) throws -> RGBImage {
        let format = try format(of: bytes, name: name)
        // PNG: check the IHDR size first; libpng's header read may need chunks beyond IHDR.
        if format == .png, let (w, h) = pngDimensions(bytes), w * h > options.pixelLimit {
            throw ImageError.tooLarge(path: name, width: w, height: h, limit: options.pixelLimit)
        }
        let info = try info(bytes, format: format, name: name)
        let width = Int(info.width), height = Int(info.height)
        // Checked before any allocation (width * height cannot overflow: both are < 2^31).
        guard width * height <= options.pixelLimit else {
            throw ImageError.tooLarge(path: name, width: width, height: height, limit: options.pixelLimit)
        }
        let base = bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
        var text = [CChar](repeating: 0, count: Int(CCODECS_MESSAGE_SIZE))
        var image: RGBImage
        switch format {
        case .jpeg:
            let n = width * height * 3
            var rc: Int32 = 0
            let pixels = [UInt8](unsafeUninitializedCapacity: n) { buffer, count in
                rc = ccodecs_jpeg_decode_rgb(base, bytes.count, buffer.baseAddress!, n, &text)
                count = rc == 0 ? n : 0
            }
            guard rc == 0 else { throw failure(format, name, message(text)) }
            image = RGBImage(width: width, height: height, pixels: pixels)
        case .png:
            let hasAlpha = info.adobe_or_alpha != 0
            let channels = hasAlpha ? 4 : 3
            let n = width * height * channels
            var rc: Int32 = 0
            let raw = [UInt8](unsafeUninitializedCapacity: n) { buffer, count in
                rc = ccodecs_png_decode(base, bytes.count, Int32(channels), buffer.baseAddress!, n, &text)
                count = rc == 0 ? n : 0
            }
            guard rc == 0 else { throw failure(format, name, message(text)) }
            image = hasAlpha
                ? removingAlpha(raw, width: width, height: height, handling: options.alpha)
                : RGBImage(width: width, height: height, pixels: raw)
        }
        if options.appliesOrientation {
            image = image.oriented(orientation(bytes, format: format))
        }
        return image
    }

    /// Width and height from a PNG's IHDR chunk (which the specification requires to come first),
    /// or `nil` if the chunk is missing or its CRC is wrong (libpng then reports the corruption).
    static func pngDimensions(_ b: UnsafeRawBufferPointer) -> (Int, Int)? {
        guard b.count >= 33, b[12] == 0x49, b[13] == 0x48, b[14] == 0x44, b[15] == 0x52 else { return nil }
        func be32(_ o: Int) -> Int { Int(b[o]) << 24 | Int(b[o + 1]) << 16 | Int(b[o + 2]) << 8 | Int(b[o + 3]) }
        guard be32(8) == 13 else { return nil }
        // CRC-32 (ISO 3309, as PNG uses it) over the chunk type and data.
        var crc: UInt32 = 0xFFFF_FFFF
        for i in 12..<29 {
            crc ^= UInt32(b[i])
            for _ in 0..<8 { crc = (crc >> 1) ^ (0xEDB8_8320 & (0 &- (crc & 1))) }
        }
        guard crc ^ 0xFFFF_FFFF == UInt32(be32(29)) else { return nil }
        return (be32(16), be32(20))
    }

    /// RGBA (not premultiplied) → RGB.
    static func removingAlpha(_ rgba: [UInt8], width: Int, height: Int, handling: AlphaHandling) -> RGBImage {
        let count = width * height
        var out = [UInt8](repeating: 0, count: count * 3)
        rgba.withUnsafeBufferPointer { s in
            out.withUnsafeMutableBufferPointer { d in
                switch handling {
                case .discard:
                    for i in 0..<count {
                        d[3 * i] = s[4 * i]; d[3 * i + 1] = s[4 * i + 1]; d[3 * i + 2] = s[4 * i + 2]
                    }
                case .composite(let bg):
                    let b = [UInt32(bg.red), UInt32(bg.green), UInt32(bg.blue)]
                    for i in 0..<count {
                        let a = UInt32(s[4 * i + 3])
                        for c in 0..<3 {
                            d[3 * i + c] = UInt8((UInt32(s[4 * i + c]) * a + b[c] * (255 - a) + 127) / 255)
                        }
                    }
                }
            }
        }
        return RGBImage(width: width, height: height, pixels: out)
    }
}
