#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// A cache of freed tensor buffers, keyed by size.
///
/// A forward pass allocates the same sizes again and again; handing back a recently freed block
/// avoids the page faults of fresh `mmap`ed memory, which cost more than the kernels for large
/// activations. Blocks are 64-byte aligned. The cache holds at most ``capacity`` bytes.
final class BufferPool: Sendable {
    static let shared = BufferPool()

    /// The most bytes kept in the cache.
    let capacity = 1 << 30
    private let state = Mutex<(blocks: [Int: [UnsafeMutableRawPointer]], bytes: Int)>(([:], 0))

    private struct SendablePointer: @unchecked Sendable { let raw: UnsafeMutableRawPointer }

    func allocate(byteCount: Int) -> UnsafeMutableRawPointer {
        let size = max(byteCount, 1)
        if size >= 4096 {
            let reused: SendablePointer? = state.withLock { s in
                guard var list = s.blocks[size], let p = list.popLast() else { return nil }
                s.blocks[size] = list
                s.bytes -= size
                return SendablePointer(raw: p)
            }
            if let reused { return reused.raw }
        }
        var p: UnsafeMutableRawPointer?
        guard posix_memalign(&p, 64, size) == 0, let p else {
            preconditionFailure("out of memory allocating \(size) bytes")
        }
        return p
    }

    func release(_ pointer: UnsafeMutableRawPointer, byteCount: Int) {
        let size = max(byteCount, 1)
        if size >= 4096 {
            let p = SendablePointer(raw: pointer)
            let kept = state.withLock { s -> Bool in
                guard s.bytes + size <= capacity else { return false }
                s.blocks[size, default: []].append(p.raw)
                s.bytes += size
                return true
            }
            if kept { return }
        }
        free(pointer)
    }
}
