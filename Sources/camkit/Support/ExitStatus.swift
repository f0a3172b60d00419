// How `camkit` reports failures: one line on stderr and a sysexits(3)-style exit status.
//
// The codes are those of BSD's <sysexits.h> (also used by sendmail, git's hooks and many Unix
// tools), so that scripts can tell "you called me wrongly" (64) from "this photo is broken" (65)
// from "this file is not there" (66). Every error type of CAMKit is mapped here, in one place.

import ArgumentParser
import CAMKit
import Foundation

/// The exit statuses of `camkit`, after BSD's `<sysexits.h>`.
enum ExitStatus: Int32, CaseIterable, Sendable {
    /// Everything was done.
    case success = 0
    /// `EX_USAGE`: the command was used wrongly: an unknown flag, method, colormap, preset or layer,
    /// a class index outside the model's classes, a malformed value.
    case usage = 64
    /// `EX_DATAERR`: an input is malformed: a corrupt, truncated, empty or unsupported image, an image
    /// over the pixel limit, a malformed `.npy` tensor, model file or sidecar.
    case dataError = 65
    /// `EX_NOINPUT`: an input does not exist or cannot be read: a missing file, a directory or glob
    /// without images, a missing model, a directory where a file is expected.
    case noInput = 66
    /// `EX_UNAVAILABLE`: the input is valid but CAMKit cannot handle it: an ONNX operator, opset or
    /// data type it does not implement, a model it cannot explain, the bundled model or a font missing.
    case unavailable = 69
    /// `EX_SOFTWARE`: an internal error (a bug in CAMKit: please report it). Only errors the CLI
    /// does not expect get it: an error type not mapped here, or a library error the CLI's own
    /// calls should never cause (a target count that differs from the batch, a custom target).
    case software = 70
    /// `EX_CANTCREAT`: an output cannot be created: its directory does not exist or is not
    /// writable, a directory has its name, or its format cannot hold the image (JPEG sides are at
    /// most 65500 pixels).
    case cannotCreate = 73
    /// `EX_IOERR`: reading or writing failed midway (disk full, file too large, an I/O error),
    /// standard output included.
    case ioError = 74

    /// The `<sysexits.h>` name.
    var name: String {
        switch self {
        case .success: return "EX_OK"
        case .usage: return "EX_USAGE"
        case .dataError: return "EX_DATAERR"
        case .noInput: return "EX_NOINPUT"
        case .unavailable: return "EX_UNAVAILABLE"
        case .software: return "EX_SOFTWARE"
        case .cannotCreate: return "EX_CANTCREAT"
        case .ioError: return "EX_IOERR"
        }
    }

    /// The exit-status table for `--help` and the README.
    static let helpText = """
        Exit status (sysexits.h):
          0   every input done, every output written
          64  EX_USAGE: bad flag or value; unknown method, colormap, preset
              or layer; class index or --top-k beyond the model's classes
          65  EX_DATAERR: corrupt, truncated, empty or unsupported image;
              image over --max-pixels; malformed .npy, model or sidecar
          66  EX_NOINPUT: missing or unreadable file; directory or glob
              without images; missing model file
          69  EX_UNAVAILABLE: the model needs an operator, opset or data
              type CAMKit lacks, or has several inputs; bundled model or
              font missing or unusable
          70  EX_SOFTWARE: internal error (please report it)
          73  EX_CANTCREAT: output directory missing or not writable, or
              output name taken by a directory (checked before any work);
              image too large for JPEG (over 65500 pixels a side)
          74  EX_IOERR: reading or writing failed midway (e.g. disk full),
              standard output included
        With several inputs a bad one is reported on one line, skipped and
        counted, the others are still done, and the exit status is that of
        the first failed input (in input order).
        """

    /// The status for an error thrown by CAMKit, the CLI or Foundation.
    init(for error: any Error) {
        switch error {
        case let e as CLIError: self = e.status
        case let e as ImageError: self = Self.status(for: e)
        case let e as ONNXGraphError: self = Self.status(for: e)
        case let e as ExplainError: self = Self.status(for: e)
        case let e as CAMKitError: self = Self.status(for: e)
        case is FontError: self = .unavailable
        case is NPY.FormatError: self = .dataError
        case is ValidationError: self = .usage
        case let e as CocoaError: self = Self.status(for: e)
        default: self = .software
        }
    }

    /// Foundation's file errors (`Data(contentsOf:)` reads `.npy` tensors and sidecars). Foundation
    /// names a few errno values (ENOENT, EACCES); the others arrive as "unknown" with the POSIX
    /// error underneath: a path that is a directory (EISDIR) or runs through a file (ENOTDIR) is a
    /// file that cannot be read (66), a failing device (EIO) an I/O error (74).
    private static func status(for error: CocoaError) -> ExitStatus {
        switch error.code {
        case .fileReadNoSuchFile, .fileNoSuchFile, .fileReadNoPermission, .fileReadInvalidFileName: return .noInput
        case .fileReadCorruptFile, .fileReadInapplicableStringEncoding: return .dataError
        case .fileWriteNoPermission, .fileWriteInvalidFileName, .fileWriteVolumeReadOnly: return .cannotCreate
        default: break
        }
        let notAFile: [Int32] = [ENOENT, ENOTDIR, EISDIR, EACCES, EPERM, ELOOP, ENAMETOOLONG]
        if let code = posixCode(of: error), notAFile.contains(code) {
            // Foundation's write errors are codes 512–767 (NSFileWriteUnknownError...).
            return (512..<768).contains(error.code.rawValue) ? .cannotCreate : .noInput
        }
        return .ioError
    }

    private static func status(for error: ImageError) -> ExitStatus {
        switch error {
        case .unreadable: return .noInput
        case .empty, .unsupportedFormat, .unrecognizedFormat, .truncated, .corrupt, .tooLarge: return .dataError
        // The encoders refuse what their format cannot hold (JPEG: sides over 65500 pixels, e.g.
        // an overlay on a panorama saved as .jpg): the output cannot be created in that format.
        case .encodingFailed: return .cannotCreate
        case .writeFailed(_, let reason):
            // Creating the temporary file fails for a missing or read-only directory; a failing
            // write or rename afterwards is an I/O error.
            return reason.hasPrefix("cannot create") ? .cannotCreate : .ioError
        }
    }

    private static func status(for error: ONNXGraphError) -> ExitStatus {
        switch error {
        case .fileNotFound, .unreadable, .externalDataMissing: return .noInput
        case .notONNX, .invalidTensor, .undefinedValue, .invalidNode, .externalDataOutsideModelDirectory,
             .inputNotFound, .inputShapeMismatch, .unboundDimension, .inputCountMismatch, .inputTypeMismatch:
            return .dataError
        case .unsupportedOpset, .unsupportedDataType, .unsupportedOperator: return .unavailable
        case .unknownValue, .unknownLayer: return .usage
        }
    }

    private static func status(for error: ExplainError) -> ExitStatus {
        switch error {
        case .classOutOfRange, .noSpatialStructure, .noDefaultTargetLayer, .noClassifierHead, .unsupportedTarget,
             .invalidOption, .layerNotOnPath:
            return .usage
        case .channelOutOfRange, .noConvolutionKernels: return .usage
        case .unsupportedInput, .shapeMismatch: return .dataError
        case .unsupportedModel, .unsupportedOutput: return .unavailable
        case .targetCountMismatch, .invalidCustomTarget: return .software
        @unknown default: return .software
        }
    }

    private static func status(for error: CAMKitError) -> ExitStatus {
        switch error {
        case .invalidSidecar: return .dataError
        case .bundledModelMissing: return .unavailable
        case .unknownMethod, .invalidPreprocessing: return .usage
        }
    }
}

/// An error the CLI raises itself, with its message and exit status.
struct CLIError: Error, CustomStringConvertible, Sendable {
    /// One line: the file or value, what is wrong, what to do.
    var description: String
    /// The exit status.
    var status: ExitStatus

    /// A usage error (64): a bad flag value.
    static func usage(_ message: String) -> CLIError { CLIError(description: message, status: .usage) }
}

/// Writes to stderr without buffering (so that lines interleave correctly with the progress bar).
enum StandardError {
    /// Writes `text` as is. A failing stderr (redirected to a full disk) is ignored: there is
    /// nowhere left to report it, and the exit status still tells.
    static func write(_ text: String) {
        try? FileHandle.standardError.write(contentsOf: Data(text.utf8))
    }
}

/// Writes to stdout without buffering, reporting failures instead of crashing (Foundation's
/// non-throwing `FileHandle.write(_:)` traps on ENOSPC when stdout is redirected to a full disk).
enum StandardOutput {
    /// Writes `text` as is.
    /// - Throws: ``CLIError`` with ``ExitStatus/ioError`` and the system's reason.
    static func write(_ text: String) throws {
        do {
            try FileHandle.standardOutput.write(contentsOf: Data(text.utf8))
        } catch {
            throw failure(reason: systemReason(error))
        }
    }

    /// The error for output that could not be written to stdout.
    static func failure(reason: String) -> CLIError {
        CLIError(description: "cannot write to standard output (\(reason)); check the disk or pipe it is redirected to",
                 status: .ioError)
    }
}

/// The system's words for a Foundation or POSIX error ("No space left on device"): the POSIX
/// error itself or the one Foundation wraps (as a `POSIXError` or an `NSError` in its domain).
func systemReason(_ error: any Error) -> String {
    if let code = posixCode(of: error) { return String(cString: strerror(code)) }
    return (error as? LocalizedError)?.errorDescription ?? String(describing: error)
}

/// The errno value behind a Foundation or POSIX error, if there is one.
func posixCode(of error: any Error) -> Int32? {
    if let posix = error as? POSIXError { return posix.code.rawValue }
    let ns = error as NSError
    if ns.domain == NSPOSIXErrorDomain { return Int32(ns.code) }
    if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? any Error, underlying as NSError !== ns {
        return posixCode(of: underlying)
    }
    return nil
}

/// The one line printed for an error: `camkit: <what>`, newlines folded so it stays one line.
func diagnosticLine(for error: any Error) -> String {
    var text = String(describing: error)
    if let e = error as? CocoaError {
        // Foundation's own description is a dump of its user-info dictionary on Linux.
        let path = e.filePath ?? e.url?.path ?? "a file"
        let reason = systemReason(e)
        switch ExitStatus(for: e) {
        case .noInput: text = "\(path): cannot read the file (\(reason)); check the path and that it is a file you can read"
        case .cannotCreate: text = "\(path): cannot write the file (\(reason)); choose a writable location"
        case .dataError: text = "\(path): cannot decode the file (\(reason)); check that it is the file you meant"
        default:
            let what = (512..<768).contains(e.code.rawValue) ? "writing" : "reading"
            text = "\(path): \(what) failed (\(reason)); check the disk, or copy the file elsewhere and retry"
        }
    }
    if case ImageError.encodingFailed(let format, _)? = error as? ImageError, format == "JPEG" {
        if text.hasSuffix(".") { text.removeLast() }
        text += "; save it as .png instead"
    }
    text = text.replacingOccurrences(of: "\n", with: " ")
    return "camkit: " + text
}

/// The line for an error about one input, naming the input as the user gave it (the decoder
/// reports absolute paths).
func diagnosticLine(for error: any Error, input: String) -> String {
    let line = diagnosticLine(for: error)
    let absolute = URL(fileURLWithPath: input).path
    return absolute == input ? line : line.replacingOccurrences(of: absolute, with: input)
}

/// Runs a command body; an error becomes one line on stderr and its ``ExitStatus`` (thrown as
/// ArgumentParser's `ExitCode`, so no second message is printed).
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let e as ExitCode {
        throw e
    } catch let e as CleanExit {
        throw e
    } catch {
        StandardError.write(diagnosticLine(for: error) + "\n")
        throw ExitCode(ExitStatus(for: error).rawValue)
    }
}
