// Running one piece of work per input on `--jobs` threads, with results reported in input order
// (so that stdout, and the exit status of the first failure, do not depend on scheduling).

import CAMKit
import Foundation
import Synchronization

/// What one input produced.
struct ItemOutcome: Sendable {
    /// Lines for stdout (text or JSON records), written together.
    var stdout: [String] = []
    /// Lines for stderr (warnings), written above the progress bar.
    var notes: [String] = []
    /// Files written.
    var outputs = 0
    /// The error that made the input be skipped, if any.
    var failure: (line: String, status: ExitStatus)?
}

/// Hands inputs to worker threads and reports their outcomes in input order.
enum BatchRunner {
    /// Runs `work` for inputs `0..<count` on `jobs` threads (inline for one job) and passes each
    /// outcome to the reporter and stdout in input order.
    /// - Returns: the status of the first failed input; else ``ExitStatus/ioError`` when stdout could
    ///   not be written (reported once on stderr, the work goes on); else `nil`.
    static func run(count: Int, jobs: Int, reporter: BatchReporter,
                    work: @escaping @Sendable (Int) -> ItemOutcome) -> ExitStatus? {
        let emitter = OrderedEmitter(reporter: reporter)
        let workers = max(1, min(jobs, count))
        if workers == 1 {
            for i in 0..<count { emitter.deliver(i, work(i)) }
        } else {
            let next = Atomic<Int>(0)
            let group = DispatchGroup()
            for _ in 0..<workers {
                group.enter()
                let thread = Thread {
                    while true {
                        let i = next.add(1, ordering: .relaxed).oldValue
                        if i >= count { break }
                        emitter.deliver(i, work(i))
                    }
                    group.leave()
                }
                thread.stackSize = 8 << 20
                thread.start()
            }
            group.wait()
        }
        return emitter.firstFailure
    }
}

/// Collects outcomes and writes them out in input order.
private final class OrderedEmitter: Sendable {
    private struct State {
        var next = 0
        var pending: [Int: ItemOutcome] = [:]
        var firstFailure: ExitStatus?
        var standardOutputFailed = false
    }

    private let reporter: BatchReporter
    private let state = Mutex(State())

    init(reporter: BatchReporter) { self.reporter = reporter }

    var firstFailure: ExitStatus? {
        state.withLock { $0.firstFailure ?? ($0.standardOutputFailed ? .ioError : nil) }
    }

    func deliver(_ index: Int, _ outcome: ItemOutcome) {
        state.withLock { s in
            s.pending[index] = outcome
            while let o = s.pending.removeValue(forKey: s.next) {
                s.next += 1
                if !o.stdout.isEmpty && !s.standardOutputFailed {
                    do {
                        try StandardOutput.write(o.stdout.joined(separator: "\n") + "\n")
                    } catch {
                        s.standardOutputFailed = true
                        reporter.line(diagnosticLine(for: error))
                    }
                }
                for note in o.notes { reporter.line(note) }
                if let failure = o.failure {
                    reporter.line(failure.line)
                    if s.firstFailure == nil { s.firstFailure = failure.status }
                }
                reporter.finished(outputs: o.outputs, failed: o.failure != nil)
            }
        }
    }
}

/// A Float as a JSON number with its shortest round-tripping digits (0.4602, not
/// 0.46020001173019409), or null when it is not finite (JSON has no NaN).
func jsonNumber(_ value: Float) -> Any {
    guard value.isFinite else { return NSNull() }
    return Double("\(value)") ?? Double(value)
}

/// A prediction as the JSON object `--json` prints: index, label, logit, probability.
func jsonObject(_ p: Prediction) -> [String: Any] {
    ["index": p.index, "label": p.label, "logit": jsonNumber(p.logit), "probability": jsonNumber(p.probability)]
}
