// Format detection by magic bytes (never by file extension).

/// The formats CAMKit decodes and encodes.
public enum ImageFormat: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// PNG (any colour type and bit depth on read; 8-bit gray/RGB/RGBA on write).
    case png = "PNG"
    /// JPEG (baseline, progressive, gray, CMYK on read; baseline on write).
    case jpeg = "JPEG"

    /// The name users know ("PNG", "JPEG").
    public var description: String { rawValue }

    /// The format a file name's extension asks for when writing (`png`, `jpg`, `jpeg`; any case),
    /// or `nil` for any other extension.
    public init?(pathExtension: String) {
        switch pathExtension.lowercased() {
        case "png": self = .png
        case "jpg", "jpeg", "jpe", "jfif": self = .jpeg
        default: return nil
        }
    }
}

/// What the first bytes of a file say it is.
public enum DetectedFormat: Sendable, Hashable {
    /// A format CAMKit decodes.
    case supported(ImageFormat)
    /// A known image format CAMKit does not decode; the associated value is its name (e.g. "GIF").
    case unsupported(String)
    /// No known signature.
    case unknown

    /// Identifies `bytes` by their signature (magic bytes); the file extension plays no part.
    public init(sniffing bytes: UnsafeRawBufferPointer) {
        func starts(_ magic: [UInt8], at offset: Int = 0) -> Bool {
            guard bytes.count >= offset + magic.count else { return false }
            for (i, m) in magic.enumerated() where bytes[offset + i] != m { return false }
            return true
        }
        let ascii = { (s: String) in Array(s.utf8) }
        if starts([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { self = .supported(.png); return }
        if starts([0xFF, 0xD8, 0xFF]) { self = .supported(.jpeg); return }
        if starts(ascii("GIF87a")) || starts(ascii("GIF89a")) { self = .unsupported("GIF"); return }
        if starts(ascii("RIFF")) && starts(ascii("WEBP"), at: 8) { self = .unsupported("WebP"); return }
        if starts([0x49, 0x49, 0x2A, 0x00]) || starts([0x4D, 0x4D, 0x00, 0x2A]) { self = .unsupported("TIFF"); return }
        if starts(ascii("ftyp"), at: 4) {
            let brand = bytes.count >= 12 ? String(decoding: bytes[8..<12], as: UTF8.self) : ""
            switch brand {
            case "avif", "avis": self = .unsupported("AVIF")
            case "heic", "heix", "hevc", "hevx", "mif1", "msf1": self = .unsupported("HEIF/HEIC")
            default: self = .unknown
            }
            return
        }
        if starts([0x00, 0x00, 0x00, 0x0C, 0x6A, 0x50, 0x20, 0x20]) || starts([0xFF, 0x4F, 0xFF, 0x51]) {
            self = .unsupported("JPEG 2000"); return
        }
        if starts([0xFF, 0x0A]) || starts([0x00, 0x00, 0x00, 0x0C, 0x4A, 0x58, 0x4C, 0x20]) {
            self = .unsupported("JPEG XL"); return
        }
        if starts(ascii("8BPS")) { self = .unsupported("PSD"); return }
        if starts(ascii("qoif")) { self = .unsupported("QOI"); return }
        if starts([0x00, 0x00, 0x01, 0x00]) && bytes.count > 6 { self = .unsupported("ICO"); return }
        if starts(ascii("BM")) && bytes.count >= 26 { self = .unsupported("BMP"); return }
        self = .unknown
    }
}
