// Encoding PNG/JPEG and writing files atomically (temporary file in the destination's directory,
// then rename(2), so a reader never sees a half-written image and a failure leaves no debris).

import CCodecs
import Foundation

/// PNG compression effort.
public enum PNGCompression: Sendable, Hashable {
    /// zlib level 1 with the "Up" row filter: the default. On 12 MP photos and overlays it was
    /// 4–10× faster than libpng's defaults for files 15–20 % larger (and both faster and smaller
    /// than libpng's `PNG_IMAGE_FLAG_FAST`, zlib 3 without filters). CAMKit's outputs are figures,
    /// not archives.
    case fast
    /// libpng's defaults: zlib level 6, adaptive row filters. Smaller, much slower.
    case standard
    /// A zlib level 0–9 (clamped); levels ≤ 3 use the "Up" filter, higher ones adaptive filters.
    case level(Int)

    var zlibLevel: Int32 {
        switch self {
        case .fast: return 1
        case .standard: return 6
        case .level(let l): return Int32(max(0, min(9, l)))
        }
    }
}

/// Encoders for the two output formats; every function returns the complete file's bytes.
public enum ImageEncoder {
    /// The default JPEG quality (PIL's default is 75; 90 keeps heatmap edges clean).
    public static let defaultJPEGQuality = 90

    /// Encodes interleaved 8-bit pixels (1 = gray, 3 = RGB, 4 = RGBA channels) as PNG.
    /// - Throws: ``ImageError/encodingFailed(format:detail:)`` for an empty image or a libpng failure.
    public static func png(pixels: [UInt8], width: Int, height: Int, channels: Int,
                           compression: PNGCompression = .fast) throws -> [UInt8] {
        try encode(format: .png, pixels: pixels, width: width, height: height, channels: channels) { p, out, size, msg in
            ccodecs_png_encode(p, Int32(width), Int32(height), Int32(channels), compression.zlibLevel, out, size, msg)
        }
    }

    /// Encodes interleaved 8-bit pixels (1 = gray or 3 = RGB channels) as baseline JPEG,
    /// 4:2:0 chroma subsampling for colour.
    /// - Parameter quality: 1–100 (clamped), libjpeg's scale.
    /// - Throws: ``ImageError/encodingFailed(format:detail:)`` for an empty image, a side over
    ///   65,500 pixels or a libjpeg failure.
    public static func jpeg(pixels: [UInt8], width: Int, height: Int, channels: Int,
                            quality: Int = defaultJPEGQuality) throws -> [UInt8] {
        try encode(format: .jpeg, pixels: pixels, width: width, height: height, channels: channels) { p, out, size, msg in
            ccodecs_jpeg_encode(p, Int32(width), Int32(height), Int32(channels), Int32(max(1, min(100, quality))), out, size, msg)
        }
    }

    private static func encode(
        format: ImageFormat, pixels: [UInt8], width: Int, height: Int, channels: Int,
        _ call: (UnsafePointer<UInt8>, UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>,
                 UnsafeMutablePointer<Int>, UnsafeMutablePointer<CChar>) -> Int32
    ) throws -> [UInt8] {
        guard width > 0, height > 0, width <= Int(Int32.max), height <= Int(Int32.max) else {
            throw ImageError.encodingFailed(format: format.rawValue, detail: "image size \(width)×\(height) is empty or too large")
        }
        guard pixels.count == width * height * channels else {
            throw ImageError.encodingFailed(format: format.rawValue,
                                            detail: "\(pixels.count) bytes for \(width)×\(height)×\(channels)")
        }
        var out: UnsafeMutablePointer<UInt8>? = nil
        var size = 0
        var text = [CChar](repeating: 0, count: Int(CCODECS_MESSAGE_SIZE))
        let rc = pixels.withUnsafeBufferPointer { p in
            text.withUnsafeMutableBufferPointer { t in call(p.baseAddress!, &out, &size, t.baseAddress!) }
        }
        defer { ccodecs_free(out) }
        guard rc == 0, let out else {
            throw ImageError.encodingFailed(format: format.rawValue, detail: ImageDecoder.message(text))
        }
        return Array(UnsafeBufferPointer(start: out, count: size))
    }
}

extension RGBImage {
    /// The image encoded as an 8-bit RGB PNG.
    /// - Throws: ``ImageError/encodingFailed(format:detail:)`` (e.g. for an empty image).
    public func pngData(compression: PNGCompression = .fast) throws -> [UInt8] {
        try ImageEncoder.png(pixels: pixels, width: width, height: height, channels: 3, compression: compression)
    }

    /// The image encoded as a baseline JPEG of the given quality (1–100).
    /// - Throws: ``ImageError/encodingFailed(format:detail:)``.
    public func jpegData(quality: Int = ImageEncoder.defaultJPEGQuality) throws -> [UInt8] {
        try ImageEncoder.jpeg(pixels: pixels, width: width, height: height, channels: 3, quality: quality)
    }

    /// Encodes and writes the image atomically.
    ///
    /// - Parameters:
    ///   - url: destination file; its directory must exist.
    ///   - format: PNG or JPEG; `nil` picks it from the extension (`.png`, `.jpg`, `.jpeg`),
    ///     PNG for any other extension.
    ///   - quality: JPEG quality (ignored for PNG).
    /// - Throws: ``ImageError/encodingFailed(format:detail:)`` or ``ImageError/writeFailed(path:reason:)``;
    ///   on failure the destination is unchanged.
    public func write(to url: URL, format: ImageFormat? = nil,
                      quality: Int = ImageEncoder.defaultJPEGQuality) throws {
        let f = format ?? ImageFormat(pathExtension: url.pathExtension) ?? .png
        let bytes = f == .png ? try pngData() : try jpegData(quality: quality)
        try writeAtomically(bytes, to: url)
    }
}

extension GrayImage {
    /// The image encoded as an 8-bit grayscale PNG.
    /// - Throws: ``ImageError/encodingFailed(format:detail:)``.
    public func pngData(compression: PNGCompression = .fast) throws -> [UInt8] {
        try ImageEncoder.png(pixels: pixels, width: width, height: height, channels: 1, compression: compression)
    }

    /// The image encoded as a grayscale JPEG of the given quality (1–100).
    /// - Throws: ``ImageError/encodingFailed(format:detail:)``.
    public func jpegData(quality: Int = ImageEncoder.defaultJPEGQuality) throws -> [UInt8] {
        try ImageEncoder.jpeg(pixels: pixels, width: width, height: height, channels: 1, quality: quality)
    }

    /// Encodes and writes the image atomically (format from `format` or the extension, PNG otherwise).
    /// - Throws: ``ImageError/encodingFailed(format:detail:)`` or ``ImageError/writeFailed(path:reason:)``.
    public func write(to url: URL, format: ImageFormat? = nil,
                      quality: Int = ImageEncoder.defaultJPEGQuality) throws {
        let f = format ?? ImageFormat(pathExtension: url.pathExtension) ?? .png
        let bytes = f == .png ? try pngData() : try jpegData(quality: quality)
        try writeAtomically(bytes, to: url)
    }
}

/// Writes `bytes` to `url` atomically: a temporary file is created in the same directory (so the
/// final `rename(2)` never crosses file systems), written completely (created with mode 0666 minus the
/// umask, like any new file), then renamed over the destination. On any failure
/// the temporary file is removed and the destination is left as it was.
///
/// - Throws: ``ImageError/writeFailed(path:reason:)`` with the system's reason.
public func writeAtomically(_ bytes: [UInt8], to url: URL) throws {
    let path = url.path
    let directory = url.deletingLastPathComponent().path
    let fail = { (what: String) -> ImageError in
        .writeFailed(path: path, reason: "\(what): \(String(cString: strerror(errno)))")
    }
    // open(O_CREAT | O_EXCL, 0666) lets the kernel apply the umask, as for any new file.
    var fd: Int32 = -1
    var tempPath = ""
    for _ in 0..<16 where fd < 0 {
        let suffix = String(UInt64.random(in: 0...UInt64.max), radix: 36)
        tempPath = "\(directory.isEmpty ? "." : directory)/.\(url.lastPathComponent).\(suffix).tmp"
        fd = open(tempPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
        if fd < 0 && errno != EEXIST { break }
    }
    guard fd >= 0 else { throw fail("cannot create a temporary file in \(directory)") }
    var committed = false
    defer {
        if !committed { unlink(tempPath) }
    }
    do {
        defer { close(fd) }
        var offset = 0
        try bytes.withUnsafeBytes { raw in
            while offset < raw.count {
                let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw fail("write")
                }
                offset += n
            }
        }
    }
    guard rename(tempPath, path) == 0 else { throw fail("rename") }
    committed = true
}
