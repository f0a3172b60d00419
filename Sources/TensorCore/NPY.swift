import Foundation

/// Reading and writing NumPy's `.npy` format (versions 1.0–3.0), the format Python users load.
///
/// Supported element types: `<f4` (Float32), `<f8` (read as Float32), `<i8` (Int64), `<i4`
/// (read as Int64), `|b1` (Bool), `|u1` (read as Float32). Arrays must be C-ordered.
public enum NPY {
    /// A problem with an `.npy` file's contents.
    public struct FormatError: Error, CustomStringConvertible, Sendable {
        /// What is wrong.
        public var description: String
    }

    /// Decodes an `.npy` file's bytes.
    /// - Throws: ``FormatError`` for a bad header, an unsupported dtype, Fortran order or short data.
    public static func decode(_ data: Data) throws -> Tensor {
        let bytes = [UInt8](data)
        let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else {
            throw FormatError(description: "not an .npy file (missing the \\x93NUMPY magic)")
        }
        let major = bytes[6]
        let headerLength: Int, headerStart: Int
        if major == 1 {
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        } else if major == 2 || major == 3 {
            guard bytes.count >= 12 else { throw FormatError(description: "truncated .npy header") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        } else {
            throw FormatError(description: "unsupported .npy version \(major)")
        }
        guard bytes.count >= headerStart + headerLength,
              let header = String(bytes: bytes[headerStart..<headerStart + headerLength], encoding: .utf8)
        else { throw FormatError(description: "truncated .npy header") }

        guard let descr = value(of: "descr", in: header)?.trimmingCharacters(in: CharacterSet(charactersIn: "'\" ")),
              let fortran = value(of: "fortran_order", in: header),
              let shapeText = value(of: "shape", in: header)
        else { throw FormatError(description: "malformed .npy header: \(header)") }
        guard fortran.trimmingCharacters(in: .whitespaces) == "False" else {
            throw FormatError(description: "Fortran-ordered .npy arrays are not supported; save with np.ascontiguousarray")
        }
        let shape = try shapeText.trimmingCharacters(in: CharacterSet(charactersIn: "() "))
            .split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
            .map { text -> Int in
                guard let v = Int(text), v >= 0 else { throw FormatError(description: "bad shape \(shapeText) in .npy header") }
                return v
            }
        let count = shape.reduce(1, *)
        let body = headerStart + headerLength
        let elementSize: Int
        switch descr {
        case "<f4", "<i4": elementSize = 4
        case "<f8", "<i8": elementSize = 8
        case "|b1", "|u1": elementSize = 1
        default: throw FormatError(description: "unsupported .npy dtype '\(descr)'; use float32, float64, int64, int32, bool or uint8")
        }
        guard bytes.count - body >= count * elementSize else {
            throw FormatError(description: "truncated .npy data: expected \(count * elementSize) bytes, found \(bytes.count - body)")
        }
        return bytes.withUnsafeBytes { raw -> Tensor in
            let p = raw.baseAddress! + body
            switch descr {
            case "<f4":
                var t = Tensor(uninitializedShape: shape, dtype: .float32)
                t.withUnsafeMutableBufferPointer { dst in
                    for i in 0..<count { dst[i] = Float(bitPattern: p.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self).littleEndian) }
                }
                return t
            case "<f8":
                var t = Tensor(uninitializedShape: shape, dtype: .float32)
                t.withUnsafeMutableBufferPointer { dst in
                    for i in 0..<count {
                        dst[i] = Float(Double(bitPattern: p.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self).littleEndian))
                    }
                }
                return t
            case "<i8":
                var t = Tensor(uninitializedShape: shape, dtype: .int64)
                t.withUnsafeMutableInt64BufferPointer { dst in
                    for i in 0..<count { dst[i] = Int64(littleEndian: p.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)) }
                }
                return t
            case "<i4":
                var t = Tensor(uninitializedShape: shape, dtype: .int64)
                t.withUnsafeMutableInt64BufferPointer { dst in
                    for i in 0..<count { dst[i] = Int64(Int32(littleEndian: p.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))) }
                }
                return t
            case "|b1":
                var t = Tensor(uninitializedShape: shape, dtype: .bool)
                t.withUnsafeMutableBoolBufferPointer { dst in
                    for i in 0..<count { dst[i] = p.load(fromByteOffset: i, as: UInt8.self) != 0 ? 1 : 0 }
                }
                return t
            default: // "|u1"
                var t = Tensor(uninitializedShape: shape, dtype: .float32)
                t.withUnsafeMutableBufferPointer { dst in
                    for i in 0..<count { dst[i] = Float(p.load(fromByteOffset: i, as: UInt8.self)) }
                }
                return t
            }
        }
    }

    /// Reads an `.npy` file.
    /// - Throws: the file system's error, or ``FormatError`` naming the file.
    public static func read(contentsOf url: URL) throws -> Tensor {
        let data = try Data(contentsOf: url)
        do { return try decode(data) } catch let error as FormatError {
            throw FormatError(description: "\(url.path): \(error.description)")
        }
    }

    /// Encodes a tensor as `.npy` (version 1.0, little-endian, C order; Float32 as `<f4`,
    /// Int64 as `<i8`, Bool as `|b1`).
    public static func encode(_ tensor: Tensor) -> Data {
        let descr: String
        switch tensor.dtype {
        case .float32: descr = "<f4"
        case .int64: descr = "<i8"
        case .bool: descr = "|b1"
        }
        let shapeText = tensor.shape.isEmpty ? "()" :
            "(" + tensor.shape.map(String.init).joined(separator: ", ") + (tensor.rank == 1 ? ",)" : ")")
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }"
        // Pad so that the data starts on a multiple of 64 bytes, header ends with '\n'.
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var data = Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0])
        let length = UInt16(header.utf8.count)
        data.append(contentsOf: [UInt8(length & 0xFF), UInt8(length >> 8)])
        data.append(contentsOf: Array(header.utf8))
        tensor.withUnsafeRawBytes { data.append(contentsOf: $0) }
        return data
    }

    /// The text after `'key':` in a header dictionary, up to the next top-level comma.
    private static func value(of key: String, in header: String) -> String? {
        guard let keyRange = header.range(of: "'\(key)'") ?? header.range(of: "\"\(key)\"") else { return nil }
        var rest = header[keyRange.upperBound...].drop { $0 == " " || $0 == ":" }
        var depth = 0
        var out = ""
        while let c = rest.first {
            if c == "(" { depth += 1 }
            if c == ")" { depth -= 1 }
            if (c == "," && depth == 0) || c == "}" { break }
            out.append(c)
            rest = rest.dropFirst()
        }
        return out.trimmingCharacters(in: .whitespaces)
    }
}
