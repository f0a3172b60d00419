// Decoding of ONNX `TensorProto` values into CAMKit tensors.
//
// Semantics: ONNX IR spec (docs/IR.md, "Tensor definition") and the comments of
// `TensorProto` in onnx/onnx.proto: `raw_data` holds the elements little-endian and row-major;
// otherwise the typed field of the element type holds them (`float_data` for FLOAT,
// `int32_data` for INT32/INT16/INT8/UINT16/UINT8/BOOL and the bit patterns of FLOAT16/BFLOAT16,
// `int64_data` for INT64, `double_data` for DOUBLE, `uint64_data` for UINT32/UINT64).
//
// CAMKit's tensors are Float32, Int64 or Bool (see `DType`), so decoding widens or narrows:
// - FLOAT16, BFLOAT16 and DOUBLE become Float32 (DOUBLE rounds to nearest);
// - every integer type (INT8/16/32/64, UINT8/16/32/64) becomes Int64, so that index, shape and
//   axis arithmetic stays exact; a UINT64 value above Int64.max is refused;
// - BOOL stays Bool (any non-zero byte is true).
// Other types (STRING, COMPLEX*, FLOAT8*, 4- and 2-bit types) are refused with
// `ONNXGraphError.unsupportedDataType`.

import Foundation
import TensorCore

/// ONNX `TensorProto.DataType` values and how CAMKit stores each.
enum ONNXElementType {
    /// The ONNX name of a `TensorProto.DataType` value (e.g. `"FLOAT16"`), for messages.
    static func name(_ raw: Int32) -> String {
        switch raw {
        case 0: return "UNDEFINED"
        case 1: return "FLOAT"
        case 2: return "UINT8"
        case 3: return "INT8"
        case 4: return "UINT16"
        case 5: return "INT16"
        case 6: return "INT32"
        case 7: return "INT64"
        case 8: return "STRING"
        case 9: return "BOOL"
        case 10: return "FLOAT16"
        case 11: return "DOUBLE"
        case 12: return "UINT32"
        case 13: return "UINT64"
        case 14: return "COMPLEX64"
        case 15: return "COMPLEX128"
        case 16: return "BFLOAT16"
        case 17: return "FLOAT8E4M3FN"
        case 18: return "FLOAT8E4M3FNUZ"
        case 19: return "FLOAT8E5M2"
        case 20: return "FLOAT8E5M2FNUZ"
        case 21: return "UINT4"
        case 22: return "INT4"
        case 23: return "FLOAT4E2M1"
        case 24: return "FLOAT8E8M0"
        case 25: return "UINT2"
        case 26: return "INT2"
        case 27: return "FLOAT6E2M3"
        case 28: return "FLOAT6E3M2"
        default: return "data type \(raw)"
        }
    }

    /// The CAMKit dtype an ONNX element type is stored as, or `nil` when unsupported.
    static func dtype(_ raw: Int32) -> DType? {
        switch raw {
        case 1, 10, 11, 16: return .float32
        case 2, 3, 4, 5, 6, 7, 12, 13: return .int64
        case 9: return .bool
        default: return nil
        }
    }

    /// Bytes per element in `raw_data` for the supported types.
    static func rawByteSize(_ raw: Int32) -> Int? {
        switch raw {
        case 2, 3, 9: return 1
        case 4, 5, 10, 16: return 2
        case 1, 6, 12: return 4
        case 7, 11, 13: return 8
        default: return nil
        }
    }
}

// MARK: Half and bfloat16

/// Converts an IEEE 754 binary16 bit pattern to Float, exactly (every half value is a float):
/// normals and subnormals, signed zeros, infinities and NaN (payload kept).
@inlinable
func floatFromHalfBits(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exponent = UInt32(h >> 10) & 0x1F
    var mantissa = UInt32(h & 0x03FF)
    if exponent == 0x1F {
        // Infinity or NaN: all-ones float exponent, mantissa moved to the top.
        return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
    }
    if exponent == 0 {
        if mantissa == 0 { return Float(bitPattern: sign) }  // ±0
        // Subnormal half: normalise. Value = mantissa · 2^-24.
        var e: UInt32 = 127 - 15 + 1
        while mantissa & 0x0400 == 0 {
            mantissa <<= 1
            e -= 1
        }
        mantissa &= 0x03FF
        return Float(bitPattern: sign | (e << 23) | (mantissa << 13))
    }
    return Float(bitPattern: sign | ((exponent + 127 - 15) << 23) | (mantissa << 13))
}

/// Converts a bfloat16 bit pattern (the top half of a binary32) to Float, exactly.
@inlinable
func floatFromBFloat16Bits(_ b: UInt16) -> Float {
    Float(bitPattern: UInt32(b) << 16)
}

// MARK: Decoding

/// Where tensor bytes stored outside the model come from.
protocol ExternalDataSource {
    /// The bytes of `tensor`'s external data, as described by its `external_data` entries.
    func bytes(for tensor: Onnx_TensorProto, name: String) throws -> Data
}

/// Decodes `proto` into a ``Tensor``.
///
/// - Parameters:
///   - proto: the serialized tensor.
///   - name: the name used in error messages (the tensor's own name, or e.g.
///     `"attribute 'value' of node 'Constant_3'"`).
///   - external: where to read data stored outside the model.
/// - Throws: ``ONNXGraphError/unsupportedDataType(tensor:type:)``,
///   ``ONNXGraphError/invalidTensor(tensor:reason:)`` and the external-data errors.
func decodeTensor(_ proto: Onnx_TensorProto, name: String, external: any ExternalDataSource) throws -> Tensor {
    let type = proto.dataType
    guard let dtype = ONNXElementType.dtype(type), let byteSize = ONNXElementType.rawByteSize(type) else {
        throw ONNXGraphError.unsupportedDataType(tensor: name, type: ONNXElementType.name(type))
    }
    if proto.hasSegment {
        throw ONNXGraphError.invalidTensor(tensor: name, reason: "segmented tensors are not supported")
    }

    var shape: [Int] = []
    shape.reserveCapacity(proto.dims.count)
    var count = 1
    for d in proto.dims {
        guard d >= 0, let extent = Int(exactly: d) else {
            throw ONNXGraphError.invalidTensor(tensor: name, reason: "negative dimension in shape \(proto.dims)")
        }
        let (product, overflow) = count.multipliedReportingOverflow(by: extent)
        guard !overflow, product <= Int.max / 8 else {
            throw ONNXGraphError.invalidTensor(tensor: name, reason: "shape \(proto.dims) has too many elements")
        }
        count = product
        shape.append(extent)
    }

    // Every byte count is checked against the shape before the tensor is allocated, so that a
    // corrupt shape cannot request terabytes.
    if proto.dataLocation == .external || proto.hasRawData {
        let bytes = proto.dataLocation == .external ? try external.bytes(for: proto, name: name) : proto.rawData
        guard bytes.count == count * byteSize else {
            throw ONNXGraphError.invalidTensor(
                tensor: name,
                reason: "\(bytes.count) bytes of data for \(count) elements of \(ONNXElementType.name(type)) (expected \(count * byteSize))")
        }
        var tensor = Tensor(uninitializedShape: shape, dtype: dtype)
        try fill(&tensor, fromRaw: bytes, type: type, byteSize: byteSize, count: count, name: name)
        return tensor
    }
    let (field, stored) = typedField(of: proto, type: type)
    guard stored == count else {
        let what = stored == 0 ? "no data (neither raw_data nor \(field))" : "\(stored) values in \(field)"
        throw ONNXGraphError.invalidTensor(tensor: name, reason: "\(what) for shape \(proto.dims) (\(count) elements)")
    }
    var tensor = Tensor(uninitializedShape: shape, dtype: dtype)
    try fill(&tensor, fromTypedFieldsOf: proto, type: type, count: count, name: name)
    return tensor
}

/// The name and element count of the typed field that holds elements of `type`.
private func typedField(of proto: Onnx_TensorProto, type: Int32) -> (String, Int) {
    switch type {
    case 1: return ("float_data", proto.floatData.count)
    case 11: return ("double_data", proto.doubleData.count)
    case 7: return ("int64_data", proto.int64Data.count)
    case 12, 13: return ("uint64_data", proto.uint64Data.count)
    default: return ("int32_data", proto.int32Data.count)
    }
}

/// Fills `tensor` (already of the right shape and dtype) from little-endian `raw_data` bytes.
private func fill(_ tensor: inout Tensor, fromRaw data: Data, type: Int32, byteSize: Int, count: Int,
                  name: String) throws {
    precondition(data.count == count * byteSize, "byte count checked by decodeTensor")
    if count == 0 { return }
    try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
        switch type {
        case 1:  // FLOAT
            tensor.withUnsafeMutableBufferPointer { out in
                #if _endian(little)
                UnsafeMutableRawBufferPointer(out).copyMemory(from: raw)
                #else
                for i in 0..<count {
                    out[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
                }
                #endif
            }
        case 10, 16:  // FLOAT16, BFLOAT16
            let convert = type == 10 ? floatFromHalfBits : floatFromBFloat16Bits
            tensor.withUnsafeMutableBufferPointer { out in
                for i in 0..<count {
                    out[i] = convert(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
                }
            }
        case 11:  // DOUBLE
            tensor.withUnsafeMutableBufferPointer { out in
                for i in 0..<count {
                    let bits = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))
                    out[i] = Float(Double(bitPattern: bits))
                }
            }
        case 9:  // BOOL
            tensor.withUnsafeMutableBoolBufferPointer { out in
                for i in 0..<count { out[i] = raw[i] == 0 ? 0 : 1 }
            }
        case 7:  // INT64
            tensor.withUnsafeMutableInt64BufferPointer { out in
                #if _endian(little)
                UnsafeMutableRawBufferPointer(out).copyMemory(from: raw)
                #else
                for i in 0..<count { out[i] = Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)) }
                #endif
            }
        case 2, 3, 4, 5, 6, 12, 13:
            try tensor.withUnsafeMutableInt64BufferPointer { out in
                for i in 0..<count {
                    let offset = byteSize * i
                    switch type {
                    case 2: out[i] = Int64(raw[offset])
                    case 3: out[i] = Int64(Int8(bitPattern: raw[offset]))
                    case 4: out[i] = Int64(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
                    case 5: out[i] = Int64(Int16(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: Int16.self)))
                    case 6: out[i] = Int64(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: Int32.self)))
                    case 12: out[i] = Int64(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
                    default:
                        let v = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
                        guard let exact = Int64(exactly: v) else {
                            throw ONNXGraphError.invalidTensor(tensor: name, reason: "UINT64 value \(v) does not fit in Int64")
                        }
                        out[i] = exact
                    }
                }
            }
        default:
            throw ONNXGraphError.unsupportedDataType(tensor: name, type: ONNXElementType.name(type))
        }
    }
}

/// Fills `tensor` from the typed repeated field that holds elements of `type`.
private func fill(_ tensor: inout Tensor, fromTypedFieldsOf proto: Onnx_TensorProto, type: Int32, count: Int,
                  name: String) throws {
    precondition(typedField(of: proto, type: type).1 == count, "element count checked by decodeTensor")
    switch type {
    case 1:
        tensor.withUnsafeMutableBufferPointer { out in
            proto.floatData.withUnsafeBufferPointer { src in
                guard let base = src.baseAddress, count > 0 else { return }
                out.baseAddress?.update(from: base, count: count)
            }
        }
    case 11:
        tensor.withUnsafeMutableBufferPointer { out in
            for (i, v) in proto.doubleData.enumerated() { out[i] = Float(v) }
        }
    case 10, 16:
        let convert = type == 10 ? floatFromHalfBits : floatFromBFloat16Bits
        tensor.withUnsafeMutableBufferPointer { out in
            for (i, v) in proto.int32Data.enumerated() { out[i] = convert(UInt16(truncatingIfNeeded: v)) }
        }
    case 9:
        tensor.withUnsafeMutableBoolBufferPointer { out in
            for (i, v) in proto.int32Data.enumerated() { out[i] = v == 0 ? 0 : 1 }
        }
    case 7:
        tensor.withUnsafeMutableInt64BufferPointer { out in
            for (i, v) in proto.int64Data.enumerated() { out[i] = v }
        }
    case 2, 3, 4, 5, 6:
        tensor.withUnsafeMutableInt64BufferPointer { out in
            for (i, v) in proto.int32Data.enumerated() { out[i] = Int64(v) }
        }
    case 12, 13:
        try tensor.withUnsafeMutableInt64BufferPointer { out in
            for (i, v) in proto.uint64Data.enumerated() {
                guard let exact = Int64(exactly: v) else {
                    throw ONNXGraphError.invalidTensor(tensor: name, reason: "UINT64 value \(v) does not fit in Int64")
                }
                out[i] = exact
            }
        }
    default:
        throw ONNXGraphError.unsupportedDataType(tensor: name, type: ONNXElementType.name(type))
    }
}
