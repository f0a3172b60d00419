// Errors of the Imaging module: every case names the file (or "<memory>") and says what to do.

/// An image could not be read, decoded or written.
///
/// The ``description`` is one line meant for a user: it names the file, the problem and what to do.
public enum ImageError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file could not be read (missing, a directory, no permission).
    case unreadable(path: String, reason: String)
    /// The file has zero bytes.
    case empty(path: String)
    /// The file is an image in a format CAMKit does not decode (detected by its magic bytes).
    case unsupportedFormat(path: String, format: String)
    /// The bytes are not a known image format at all.
    case unrecognizedFormat(path: String)
    /// The data ends before the image does.
    case truncated(path: String, format: String, detail: String)
    /// The decoder rejected the data.
    case corrupt(path: String, format: String, detail: String)
    /// The header announces more pixels than the configured limit; nothing was allocated.
    case tooLarge(path: String, width: Int, height: Int, limit: Int)
    /// Encoding failed (e.g. an empty image, or a size the format cannot hold).
    case encodingFailed(format: String, detail: String)
    /// Writing the output file failed; the destination was left untouched.
    case writeFailed(path: String, reason: String)

    /// One line for a user: the file, what went wrong, and what to do.
    public var description: String {
        switch self {
        case let .unreadable(path, reason):
            return "\(path): cannot read the file (\(reason)); check the path and its permissions."
        case let .empty(path):
            return "\(path): the file is empty (0 bytes); re-export or re-download the image."
        case let .unsupportedFormat(path, format):
            return "\(path): unsupported format \(format); CAMKit reads PNG and JPEG. "
                + "Convert it first, e.g. `convert \(path) out.png` (ImageMagick)."
        case let .unrecognizedFormat(path):
            return "\(path): not an image CAMKit recognises (no PNG or JPEG signature); "
                + "CAMKit reads PNG and JPEG, check that this is the file you meant."
        case let .truncated(path, format, detail):
            return "\(path): the \(format) file is truncated (\(detail)); the download or copy "
                + "was probably interrupted, fetch the file again."
        case let .corrupt(path, format, detail):
            return "\(path): the \(format) data is corrupt (\(detail)); re-export the image or "
                + "open and re-save it in an image editor."
        case let .tooLarge(path, width, height, limit):
            return "\(path): \(width)×\(height) pixels (\(width * height)) exceeds the limit of "
                + "\(limit) pixels; downscale the image or raise the pixel limit."
        case let .encodingFailed(format, detail):
            return "cannot encode the image as \(format): \(detail)."
        case let .writeFailed(path, reason):
            return "\(path): cannot write the file (\(reason)); check that the directory exists "
                + "and is writable. Nothing was written."
        }
    }
}
