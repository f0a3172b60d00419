import CKernels
import Foundation
import Synchronization

/// How many threads CAMKit's kernels use (the BLAS included, see ``BLAS``).
///
/// Defaults to the number of active processors. Set it once at start-up, before running models,
/// or for one computation on one thread with ``withThreadCount(_:_:)``.
public enum ComputeSettings {
    private static let threads = Atomic<Int>(0)

    /// The number of threads kernels split their work across (at least 1): the calling thread's
    /// override from ``withThreadCount(_:_:)`` if any, else the process-wide setting.
    public static var threadCount: Int {
        get {
            let local = Int(ck_thread_count_override())
            if local > 0 { return local }
            let t = threads.load(ordering: .relaxed)
            return t > 0 ? t : max(1, ProcessInfo.processInfo.activeProcessorCount)
        }
        set { threads.store(max(1, newValue), ordering: .relaxed) }
    }

    /// Runs `body` with ``threadCount`` set to `count` on the calling thread only (other threads
    /// keep theirs), restoring the previous value afterwards. Every decision that depends on the
    /// thread count is made on the thread that starts a kernel, so this scopes a whole computation.
    public static func withThreadCount<R>(_ count: Int, _ body: () throws -> R) rethrows -> R {
        let previous = ck_thread_count_override()
        ck_set_thread_count_override(Int32(max(1, count)))
        defer { ck_set_thread_count_override(previous) }
        return try body()
    }
}

/// Runs `body(range)` over `0..<count` split into contiguous chunks across ``ComputeSettings/threadCount``
/// threads (the caller and ``WorkerPool``'s workers). Work smaller than `minimumChunk` items per
/// thread runs inline on the caller, as does a `parallelFor` nested in another one.
///
/// - Parameters:
///   - count: the number of work items.
///   - minimumChunk: the least number of items worth handing to another thread.
///   - body: processes the items of one chunk; called concurrently, so it must only write
///     to memory owned by its range.
@inlinable
public func parallelFor(_ count: Int, minimumChunk: Int = 1, _ body: (Range<Int>) -> Void) {
    guard count > 0 else { return }
    let threads = min(ComputeSettings.threadCount, max(1, count / max(1, minimumChunk)))
    if threads <= 1 {
        body(0..<count)
        return
    }
    let chunks = threads
    WorkerPool.shared.run(chunks: chunks) { c in
        let start = count * c / chunks, end = count * (c + 1) / chunks
        if start < end { body(start..<end) }
    }
}

/// Wraps a value the compiler cannot prove `Sendable` but that the caller shares safely
/// (kernels hand disjoint ranges of one buffer to each thread).
@usableFromInline
struct UncheckedSendable<Value>: @unchecked Sendable {
    @usableFromInline let value: Value
    @inlinable init(_ value: Value) { self.value = value }
}
