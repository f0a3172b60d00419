import Dispatch
import Foundation
import Synchronization

/// How many threads CAMKit's own kernels use (the BLAS has its own setting, see ``BLAS``).
///
/// Defaults to the number of active processors. Set it once at start-up, before running models.
public enum ComputeSettings {
    private static let threads = Atomic<Int>(0)

    /// The number of threads kernels split their work across (at least 1).
    public static var threadCount: Int {
        get {
            let t = threads.load(ordering: .relaxed)
            return t > 0 ? t : max(1, ProcessInfo.processInfo.activeProcessorCount)
        }
        set { threads.store(max(1, newValue), ordering: .relaxed) }
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
