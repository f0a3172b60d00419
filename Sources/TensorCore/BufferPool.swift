#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Synchronization

/// A cache of freed tensor buffers, keyed by size.
///
/// A forward pass allocates the same sizes again and again; handing back a recently freed block
/// avoids the page faults of fresh `mmap`ed memory, which cost more than the kernels for large
/// activations (a reverse pass over a batch of 16 ResNet-50 images frees and reallocates ~2 GB per
/// pass). Blocks are 64-byte aligned. The cache holds at most ``capacity`` bytes: a quarter of the
/// physical memory, at most 4 GiB (`CAMKIT_BUFFER_CACHE_MB` overrides it); when a freed block
/// does not fit, the least recently freed blocks are released to the system first, so sizes no
/// longer in use do not stay cached for good.
final class BufferPool: Sendable {
    static let shared = BufferPool()

    /// The most bytes kept in the cache.
    let capacity: Int

    /// A cache of at most `capacity` bytes (default: see the type's description).
    init(capacity: Int? = nil) {
        if let capacity {
            self.capacity = capacity
        } else if let text = ProcessInfo.processInfo.environment["CAMKIT_BUFFER_CACHE_MB"], let mb = Int(text) {
            self.capacity = max(0, mb) << 20
        } else {
            self.capacity = Int(min(ProcessInfo.processInfo.physicalMemory / 4, 4 << 30))
        }
    }

    /// The bytes currently cached.
    var cachedBytes: Int { state.withLock { $0.bytes } }

    private struct SendablePointer: @unchecked Sendable { let raw: UnsafeMutableRawPointer }

    /// The cached blocks: free lists by size, and every cached block in the order it was freed
    /// (`order[i]` is valid from `head`; entries whose block was handed out again are skipped).
    private struct State {
        var blocks: [Int: [SendablePointer]] = [:]
        var order: [(size: Int, pointer: SendablePointer)] = []
        var head = 0
        var bytes = 0
        var handedOut = Set<UnsafeMutableRawPointer>()
    }
    private let state = Mutex<State>(State())

    func allocate(byteCount: Int) -> UnsafeMutableRawPointer {
        let size = max(byteCount, 1)
        if size >= 4096 {
            let reused: SendablePointer? = state.withLock { s in
                guard var list = s.blocks[size], let p = list.popLast() else { return nil }
                s.blocks[size] = list
                s.bytes -= size
                s.handedOut.insert(p.raw)
                return p
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
        guard size >= 4096, size <= capacity else {
            free(pointer)
            return
        }
        let p = SendablePointer(raw: pointer)
        let evicted: [SendablePointer] = state.withLock { s in
            var evicted: [SendablePointer] = []
            // Release the least recently freed blocks until this one fits.
            while s.bytes + size > capacity && s.head < s.order.count {
                let oldest = s.order[s.head]
                s.head += 1
                if s.handedOut.remove(oldest.pointer.raw) != nil { continue }
                guard var list = s.blocks[oldest.size],
                      let index = list.firstIndex(where: { $0.raw == oldest.pointer.raw }) else { continue }
                list.remove(at: index)
                s.blocks[oldest.size] = list
                s.bytes -= oldest.size
                evicted.append(oldest.pointer)
            }
            if s.head > 4096 && s.head * 2 > s.order.count {
                s.order.removeFirst(s.head)
                s.head = 0
            }
            s.blocks[size, default: []].append(p)
            s.order.append((size, p))
            s.bytes += size
            return evicted
        }
        for block in evicted { free(block.raw) }
    }
}
