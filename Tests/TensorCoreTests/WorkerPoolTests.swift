import Foundation
import Synchronization
import Testing
@testable import TensorCore

/// `parallelFor` on the worker pool: every item visited exactly once, in the documented contiguous
/// chunks; nesting and concurrent callers run inline instead of deadlocking; parked workers wake.
@Suite struct WorkerPoolTests {
    /// Counts visits per item.
    private final class Visits: @unchecked Sendable {
        let counts: UnsafeMutablePointer<Int>
        let count: Int
        init(_ count: Int) {
            self.count = count
            counts = .allocate(capacity: count)
            counts.initialize(repeating: 0, count: count)
        }
        deinit { counts.deallocate() }
        var all: [Int] { Array(UnsafeBufferPointer(start: counts, count: count)) }
    }

    @Test(arguments: [1, 2, 3, 5])
    func everyItemOnceInContiguousChunks(threads: Int) {
        ComputeSettings.withThreadCount(threads) { checkChunks(threads: threads) }
    }

    private func checkChunks(threads: Int) {
        for count in [1, 2, 7, 1000] {
            let visits = Visits(count)
            let ranges = Mutex<[Range<Int>]>([])
            parallelFor(count) { range in
                for i in range { visits.counts[i] += 1 }
                ranges.withLock { $0.append(range) }
            }
            #expect(visits.all == Array(repeating: 1, count: count))
            // The chunks are count·c/T ..< count·(c+1)/T, as documented.
            let chunks = min(threads, count)
            let expected = (0..<chunks).map { c in (count * c / chunks)..<(count * (c + 1) / chunks) }.filter { !$0.isEmpty }
            #expect(ranges.withLock { $0.sorted { $0.lowerBound < $1.lowerBound } } == expected)
        }
    }

    @Test func nestedParallelForRunsInline() {
        ComputeSettings.withThreadCount(2) { checkNesting() }
    }

    private func checkNesting() {
        let visits = Visits(64 * 64)
        #expect(!WorkerPool.isInsideParallelRegion)
        parallelFor(64) { outer in
            #expect(WorkerPool.isInsideParallelRegion)
            for i in outer {
                parallelFor(64) { inner in
                    for j in inner { visits.counts[i * 64 + j] += 1 }
                }
            }
        }
        #expect(!WorkerPool.isInsideParallelRegion)
        #expect(visits.all == Array(repeating: 1, count: 64 * 64))
    }

    /// Several threads issuing jobs at once: one gets the pool, the others run inline; all finish
    /// with every item visited once.
    @Test func concurrentCallersAllComplete() {
        let callers = 6, count = 5000
        let visits = (0..<callers).map { _ in Visits(count) }
        DispatchQueue.concurrentPerform(iterations: callers) { c in
            ComputeSettings.withThreadCount(2) {
                for _ in 0..<50 {
                    parallelFor(count, minimumChunk: 16) { range in
                        for i in range { visits[c].counts[i] += 1 }
                    }
                }
            }
        }
        for v in visits { #expect(v.all == Array(repeating: 50, count: count)) }
    }

    /// A worker that has parked (spun past its spin time) is woken by the next job.
    @Test func parkedWorkersWake() {
        ComputeSettings.withThreadCount(2) { checkWaking() }
    }

    private func checkWaking() {
        for _ in 0..<3 {
            let visits = Visits(100)
            parallelFor(100) { range in for i in range { visits.counts[i] += 1 } }
            #expect(visits.all == Array(repeating: 1, count: 100))
            // Longer than the default spin time (1 ms), so the worker parks before the next job.
            Thread.sleep(forTimeInterval: Double(WorkerPool.shared.spinDuration) / 1e9 + 0.005)
        }
    }
}
