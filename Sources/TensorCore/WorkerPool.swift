#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CKernels
import Foundation
import Synchronization

/// CAMKit's own threads: ``parallelFor(_:minimumChunk:_:)`` hands its chunks to them.
///
/// Why not `DispatchQueue.concurrentPerform`: on these virtual machines a parked thread takes
/// 0.1–1 ms to wake (the hypervisor halts an idle vCPU), so a 0.07 ms ReLU took 0.8 ms on two
/// threads, and every kernel of a forward pass paid that hand-off. The pool's workers instead
/// *spin* for a short while after each job (``spinDuration``, 1 ms by default,
/// `CAMKIT_SPIN_MICROSECONDS` overrides it), yielding the CPU every few microseconds, and only
/// then park on a condition variable, as ONNX Runtime's pool does; back-to-back kernels therefore
/// find them awake.
///
/// One job runs at a time. A `parallelFor` issued while the pool is busy — from inside a chunk
/// (nesting) or from another thread — runs its chunks inline on its caller, which is always
/// correct and never deadlocks.
@usableFromInline
final class WorkerPool: @unchecked Sendable {
    @usableFromInline static let shared = WorkerPool()

    /// How long an idle worker spins before it parks.
    let spinDuration: UInt64 = {
        if let text = ProcessInfo.processInfo.environment["CAMKIT_SPIN_MICROSECONDS"],
           let microseconds = UInt64(text) { return microseconds * 1000 }
        return 1_000_000
    }()

    /// Held by the thread whose job the workers are running.
    private let busy = Atomic<Bool>(false)
    // Written only by the `busy` holder; workers read `task` after acquiring their `go` flag.
    private var workers: [PoolWorker] = []
    private var task: ((Int) -> Void)?
    private var epoch = 0

    /// Whether the calling thread is running a chunk of a `parallelFor` (a worker, or a caller inside
    /// its own chunk). Unlike the pool's availability this depends only on the call structure, so
    /// kernels may base decisions that change rounding on it (``BLAS`` splits products only outside).
    static var isInsideParallelRegion: Bool { ck_parallel_depth() > 0 }

    /// Runs `body(0..<chunks)` with chunk 0 on the caller and chunk `i` on worker `i − 1`, and
    /// returns when all have finished.
    @usableFromInline
    func run(chunks: Int, _ body: (Int) -> Void) {
        ck_parallel_depth_add(1)
        defer { ck_parallel_depth_add(-1) }
        guard chunks > 1, busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            for c in 0..<chunks { body(c) }
            return
        }
        defer { busy.store(false, ordering: .releasing) }
        while workers.count < chunks - 1 { workers.append(PoolWorker(index: workers.count, pool: self)) }
        withoutActuallyEscaping(body) { body in
            task = body
            epoch += 1
            for w in 0..<(chunks - 1) { workers[w].post(epoch) }
            body(0)
            for w in 0..<(chunks - 1) { workers[w].waitUntilDone(epoch) }
            task = nil
        }
    }

    /// Worker `index`'s share of the current job.
    fileprivate func runChunk(_ index: Int) {
        task?(index + 1)
    }
}

/// One pool thread with its own flags, so the caller can post a job and wait for each worker
/// without a shared counter.
private final class PoolWorker: @unchecked Sendable {
    /// The epoch of the job to run (raised by the caller).
    let go = Atomic<Int>(0)
    /// The epoch of the last job finished.
    let done = Atomic<Int>(0)
    /// Set while the thread waits on `condition`.
    let sleeping = Atomic<Bool>(false)
    let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    let index: Int
    unowned let pool: WorkerPool

    init(index: Int, pool: WorkerPool) {
        self.index = index
        self.pool = pool
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        pthread_attr_setstacksize(&attributes, 8 << 20)
        #if canImport(Glibc)
        var thread = pthread_t()
        #else
        var thread: pthread_t?
        #endif
        let context = Unmanaged.passRetained(self).toOpaque()
        let status = pthread_create(&thread, &attributes, { context in
            #if canImport(Glibc)
            let worker = Unmanaged<PoolWorker>.fromOpaque(context!).takeRetainedValue()
            #else
            let worker = Unmanaged<PoolWorker>.fromOpaque(context).takeRetainedValue()
            #endif
            worker.loop()
            return nil
        }, context)
        precondition(status == 0, "cannot start a worker thread (pthread_create: \(status))")
        pthread_attr_destroy(&attributes)
        pthread_detach(thread)
    }

    /// Hands job `epoch` to this worker, waking it if it parked.
    func post(_ epoch: Int) {
        go.store(epoch, ordering: .sequentiallyConsistent)
        if sleeping.load(ordering: .sequentiallyConsistent) {
            pthread_mutex_lock(mutex)
            pthread_cond_signal(condition)
            pthread_mutex_unlock(mutex)
        }
    }

    /// Spins until the worker has finished job `epoch`, yielding the CPU every few microseconds
    /// (see ``spinsPerYield``).
    func waitUntilDone(_ epoch: Int) {
        var spins = 0
        while done.load(ordering: .acquiring) != epoch {
            spins += 1
            if spins % spinsPerYield == 0 { sched_yield() } else { ck_cpu_relax() }
        }
    }

    private func loop() {
        ck_parallel_depth_add(1)
        var seen = 0
        while true {
            seen = waitForJob(after: seen)
            pool.runChunk(index)
            done.store(seen, ordering: .releasing)
        }
    }

    /// Spins for the pool's spin duration, then parks, until a job newer than `seen` is posted.
    private func waitForJob(after seen: Int) -> Int {
        let start = monotonicNanoseconds()
        var spins = 0
        while true {
            let posted = go.load(ordering: .acquiring)
            if posted != seen { return posted }
            spins += 1
            if spins % spinsPerYield == 0 {
                if monotonicNanoseconds() - start > pool.spinDuration { break }
                sched_yield()
            } else {
                ck_cpu_relax()
            }
        }
        pthread_mutex_lock(mutex)
        sleeping.store(true, ordering: .sequentiallyConsistent)
        while go.load(ordering: .sequentiallyConsistent) == seen { pthread_cond_wait(condition, mutex) }
        sleeping.store(false, ordering: .sequentiallyConsistent)
        pthread_mutex_unlock(mutex)
        return go.load(ordering: .acquiring)
    }
}

/// How many `pause`s a spinning thread makes between `sched_yield` calls (a few microseconds).
/// Yielding matters when the scheduler has put the spinning thread and the one it waits for on
/// the same CPU: without it the waiter burns its whole time slice (~3 ms here) before the other
/// can run. On an otherwise idle CPU `sched_yield` returns at once.
private let spinsPerYield = 128

@inline(__always)
private func monotonicNanoseconds() -> UInt64 {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
}
