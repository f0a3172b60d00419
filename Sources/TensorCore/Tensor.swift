/// The element types a ``Tensor`` can hold.
///
/// Float32 carries all real compute; Int64 and Bool exist for the shape, index and mask arithmetic
/// that ONNX exporters emit (and that specialisation usually folds away).
public enum DType: String, Sendable, Hashable, CustomStringConvertible {
    case float32
    case int64
    case bool

    /// Size of one element in bytes (Bool is stored as one byte, 0 or 1).
    public var byteSize: Int {
        switch self {
        case .float32: return 4
        case .int64: return 8
        case .bool: return 1
        }
    }

    public var description: String { rawValue }
}

/// Reference-counted, 64-byte aligned storage behind a ``Tensor``.
///
/// Never shared mutably: ``Tensor`` copies it before a write unless it is uniquely referenced.
@usableFromInline
final class TensorStorage: @unchecked Sendable {
    @usableFromInline let pointer: UnsafeMutableRawPointer
    @usableFromInline let byteCount: Int

    /// Allocates uninitialised storage of `byteCount` bytes (at least one byte is allocated).
    @usableFromInline
    init(byteCount: Int) {
        self.byteCount = byteCount
        self.pointer = BufferPool.shared.allocate(byteCount: byteCount)
    }

    /// Allocates storage holding a copy of `other`'s bytes.
    @usableFromInline
    convenience init(copying other: TensorStorage) {
        self.init(byteCount: other.byteCount)
        // Large copies (copy-on-write of activations) split over the worker threads: one thread
        // does not reach the memory bandwidth.
        let to = UncheckedSendable(pointer), from = UncheckedSendable(other.pointer)
        let blocks = (other.byteCount + 4095) / 4096, byteCount = other.byteCount
        parallelFor(blocks, minimumChunk: 256) { range in
            let start = range.lowerBound * 4096, end = min(range.upperBound * 4096, byteCount)
            (to.value + start).copyMemory(from: from.value + start, byteCount: end - start)
        }
    }

    deinit {
        BufferPool.shared.release(pointer, byteCount: byteCount)
    }
}

/// An n-dimensional array with value semantics.
///
/// - Layout: dense, row-major (C order). Image batches are `NCHW` (batch, channels, height, width).
/// - Storage is copy-on-write: copies are cheap until one of them is mutated.
/// - `==` is exact (same dtype, shape and bit-identical elements); use
///   ``isApproximatelyEqual(to:rtol:atol:)`` for numerical comparison.
public struct Tensor: Sendable {
    /// The extent of each dimension; `[]` for a scalar.
    public private(set) var shape: [Int]
    /// The element type.
    public let dtype: DType
    @usableFromInline var storage: TensorStorage

    /// The number of dimensions.
    @inlinable public var rank: Int { shape.count }
    /// The number of elements (1 for a scalar).
    @inlinable public var count: Int { shape.reduce(1, *) }

    // MARK: Creation

    /// Creates a tensor whose elements are not initialised; kernels that overwrite every element
    /// use it to avoid a useless fill.
    /// - Precondition: every extent of `shape` is non-negative.
    public init(uninitializedShape shape: [Int], dtype: DType = .float32) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative extent in shape \(shape)")
        self.shape = shape
        self.dtype = dtype
        self.storage = TensorStorage(byteCount: shape.reduce(1, *) * dtype.byteSize)
    }

    /// Creates a tensor of the given shape filled with zeros (or `false`).
    public init(zeros shape: [Int], dtype: DType = .float32) {
        self.init(uninitializedShape: shape, dtype: dtype)
        storage.pointer.initializeMemory(as: UInt8.self, repeating: 0, count: storage.byteCount)
    }

    /// Creates a Float32 tensor of the given shape with every element equal to `value`.
    public init(repeating value: Float, shape: [Int]) {
        self.init(uninitializedShape: shape, dtype: .float32)
        storage.pointer.bindMemory(to: Float.self, capacity: count).update(repeating: value, count: count)
    }

    /// Creates a Float32 tensor from row-major `scalars`.
    /// - Precondition: `scalars.count` equals the product of `shape`.
    public init(shape: [Int], scalars: [Float]) {
        precondition(scalars.count == shape.reduce(1, *), "\(scalars.count) scalars for shape \(shape)")
        self.init(uninitializedShape: shape, dtype: .float32)
        scalars.withUnsafeBytes { storage.pointer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    }

    /// Creates an Int64 tensor from row-major `values`.
    /// - Precondition: `values.count` equals the product of `shape`.
    public init(shape: [Int], int64s values: [Int64]) {
        precondition(values.count == shape.reduce(1, *), "\(values.count) values for shape \(shape)")
        self.init(uninitializedShape: shape, dtype: .int64)
        values.withUnsafeBytes { storage.pointer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    }

    /// Creates a Bool tensor from row-major `values`.
    /// - Precondition: `values.count` equals the product of `shape`.
    public init(shape: [Int], bools values: [Bool]) {
        precondition(values.count == shape.reduce(1, *), "\(values.count) values for shape \(shape)")
        self.init(uninitializedShape: shape, dtype: .bool)
        let p = storage.pointer.bindMemory(to: UInt8.self, capacity: values.count)
        for (i, v) in values.enumerated() { p[i] = v ? 1 : 0 }
    }

    /// A Float32 scalar (rank 0).
    public init(_ value: Float) { self.init(shape: [], scalars: [value]) }

    /// Creates a tensor sharing `storage` (internal: used by reshaping, which never copies).
    @usableFromInline
    init(shape: [Int], dtype: DType, storage: TensorStorage) {
        self.shape = shape
        self.dtype = dtype
        self.storage = storage
    }

    // MARK: Element access (copies)

    /// The elements as Float32 values, row-major. Int64 and Bool tensors are converted.
    public var scalars: [Float] {
        switch dtype {
        case .float32: return withUnsafeBufferPointer { Array($0) }
        case .int64: return withUnsafeInt64BufferPointer { $0.map { Float($0) } }
        case .bool: return withUnsafeBoolBufferPointer { $0.map { Float($0) } }
        }
    }

    /// The elements as Int64 values, row-major. Float32 values are truncated toward zero.
    public var int64s: [Int64] {
        switch dtype {
        case .float32: return withUnsafeBufferPointer { $0.map { Int64($0) } }
        case .int64: return withUnsafeInt64BufferPointer { Array($0) }
        case .bool: return withUnsafeBoolBufferPointer { $0.map { Int64($0) } }
        }
    }

    /// The elements as Bool values, row-major (non-zero is `true`).
    public var bools: [Bool] {
        switch dtype {
        case .float32: return withUnsafeBufferPointer { $0.map { $0 != 0 } }
        case .int64: return withUnsafeInt64BufferPointer { $0.map { $0 != 0 } }
        case .bool: return withUnsafeBoolBufferPointer { $0.map { $0 != 0 } }
        }
    }

    /// The single element of a one-element tensor, as Float.
    /// - Precondition: `count == 1`.
    public var scalar: Float {
        precondition(count == 1, "scalar of a tensor with \(count) elements")
        return scalars[0]
    }

    // MARK: Raw buffers

    /// Calls `body` with the Float32 elements.
    /// - Precondition: `dtype == .float32`.
    @inlinable
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        precondition(dtype == .float32, "Float32 buffer of a \(dtype) tensor")
        let n = count
        return try body(UnsafeBufferPointer(start: storage.pointer.assumingMemoryBound(to: Float.self), count: n))
    }

    /// Calls `body` with the Float32 elements for writing, copying the storage first if it is shared.
    /// - Precondition: `dtype == .float32`.
    @inlinable
    public mutating func withUnsafeMutableBufferPointer<R>(
        _ body: (UnsafeMutableBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        precondition(dtype == .float32, "Float32 buffer of a \(dtype) tensor")
        makeUnique()
        return try body(UnsafeMutableBufferPointer(start: storage.pointer.assumingMemoryBound(to: Float.self), count: count))
    }

    /// Calls `body` with the Int64 elements.
    /// - Precondition: `dtype == .int64`.
    @inlinable
    public func withUnsafeInt64BufferPointer<R>(_ body: (UnsafeBufferPointer<Int64>) throws -> R) rethrows -> R {
        precondition(dtype == .int64, "Int64 buffer of a \(dtype) tensor")
        return try body(UnsafeBufferPointer(start: storage.pointer.assumingMemoryBound(to: Int64.self), count: count))
    }

    /// Calls `body` with the Int64 elements for writing, copying the storage first if it is shared.
    /// - Precondition: `dtype == .int64`.
    @inlinable
    public mutating func withUnsafeMutableInt64BufferPointer<R>(
        _ body: (UnsafeMutableBufferPointer<Int64>) throws -> R
    ) rethrows -> R {
        precondition(dtype == .int64, "Int64 buffer of a \(dtype) tensor")
        makeUnique()
        return try body(UnsafeMutableBufferPointer(start: storage.pointer.assumingMemoryBound(to: Int64.self), count: count))
    }

    /// Calls `body` with the Bool elements as bytes (0 or 1).
    /// - Precondition: `dtype == .bool`.
    @inlinable
    public func withUnsafeBoolBufferPointer<R>(_ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        precondition(dtype == .bool, "Bool buffer of a \(dtype) tensor")
        return try body(UnsafeBufferPointer(start: storage.pointer.assumingMemoryBound(to: UInt8.self), count: count))
    }

    /// Calls `body` with the Bool elements as bytes for writing (store only 0 or 1).
    /// - Precondition: `dtype == .bool`.
    @inlinable
    public mutating func withUnsafeMutableBoolBufferPointer<R>(
        _ body: (UnsafeMutableBufferPointer<UInt8>) throws -> R
    ) rethrows -> R {
        precondition(dtype == .bool, "Bool buffer of a \(dtype) tensor")
        makeUnique()
        return try body(UnsafeMutableBufferPointer(start: storage.pointer.assumingMemoryBound(to: UInt8.self), count: count))
    }

    /// Calls `body` with the raw bytes of the elements (any dtype).
    @inlinable
    public func withUnsafeRawBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: storage.pointer, count: count * dtype.byteSize))
    }

    /// Copies the storage if it is shared, so that a write cannot be seen through another copy.
    @inlinable
    public mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&storage) {
            storage = TensorStorage(copying: storage)
        }
    }

    // MARK: Shape changes that never copy

    /// The same elements viewed with another shape of equal element count (no copy).
    /// - Precondition: `newShape` has the same element count.
    public func reshaped(to newShape: [Int]) -> Tensor {
        precondition(newShape.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        return Tensor(shape: newShape, dtype: dtype, storage: storage)
    }

    /// The elements converted to another dtype (Float → Int64 truncates toward zero, like ONNX Cast).
    public func converted(to target: DType) -> Tensor {
        if target == dtype { return self }
        switch target {
        case .float32: return Tensor(shape: shape, scalars: scalars)
        case .int64: return Tensor(shape: shape, int64s: int64s)
        case .bool: return Tensor(shape: shape, bools: bools)
        }
    }
}

extension Tensor: Equatable {
    /// Exact equality: same dtype, same shape, bit-identical elements.
    public static func == (lhs: Tensor, rhs: Tensor) -> Bool {
        guard lhs.dtype == rhs.dtype, lhs.shape == rhs.shape else { return false }
        return lhs.withUnsafeRawBytes { a in rhs.withUnsafeRawBytes { b in a.elementsEqual(b) } }
    }
}

extension Tensor {
    /// Whether every element satisfies `|a − b| ≤ atol + rtol·|b|` (NumPy's `allclose`, with `other`
    /// as the reference). Shapes must match exactly; NaN never compares equal.
    public func isApproximatelyEqual(to other: Tensor, rtol: Float = 1e-5, atol: Float = 1e-6) -> Bool {
        guard shape == other.shape else { return false }
        let a = scalars, b = other.scalars
        for i in 0..<a.count where !(abs(a[i] - b[i]) <= atol + rtol * abs(b[i])) { return false }
        return true
    }

    /// The relative L2 error `‖self − reference‖ / ‖reference‖` (or the absolute norm when the
    /// reference is all zeros), computed in Double.
    public func relativeL2Error(to reference: Tensor) -> Double {
        precondition(shape == reference.shape, "shapes \(shape) and \(reference.shape) differ")
        let a = scalars, b = reference.scalars
        var num = 0.0, den = 0.0
        for i in 0..<a.count {
            let d = Double(a[i]) - Double(b[i])
            num += d * d
            den += Double(b[i]) * Double(b[i])
        }
        return den > 0 ? (num / den).squareRoot() : num.squareRoot()
    }
}

extension Tensor: CustomStringConvertible {
    /// A short summary: dtype, shape and the first few elements.
    public var description: String {
        let head = scalars.prefix(8).map { "\($0)" }.joined(separator: ", ")
        return "Tensor<\(dtype)>\(shape)[\(head)\(count > 8 ? ", …" : "")]"
    }
}
