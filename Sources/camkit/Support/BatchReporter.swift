// What a batch run tells the user on stderr: one line per failed input, a progress bar while it
// runs (only when stderr is a terminal: nothing for pipes, logs and CI), and a summary at the end.

import Dispatch
import Foundation
import Synchronization

/// Counts a batch's progress and draws it on stderr; safe to call from several threads.
final class BatchReporter: Sendable {
    private struct State {
        var done = 0
        var failed = 0
        var outputs = 0
        var barShown = false
        var lastDraw: UInt64 = 0
    }

    /// The number of inputs.
    let total: Int
    /// Whether the progress bar is drawn.
    let showsProgress: Bool
    private let started = DispatchTime.now()
    private let state = Mutex(State())

    /// - Parameters:
    ///   - total: the number of inputs.
    ///   - progress: draw a progress bar (the caller checks `isatty` and `--quiet`).
    init(total: Int, progress: Bool) {
        self.total = total
        self.showsProgress = progress
    }

    /// Whether stderr is a terminal (where a progress bar makes sense).
    static var standardErrorIsTerminal: Bool { isatty(STDERR_FILENO) != 0 }

    /// Seconds since the reporter was made.
    var elapsedSeconds: Double { Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9 }

    /// Prints one line on stderr (above the progress bar, which is redrawn).
    func line(_ text: String) {
        state.withLock { s in
            StandardError.write((s.barShown ? "\r\u{1B}[2K" : "") + text + "\n")
            s.barShown = false
            draw(&s, force: true)
        }
    }

    /// Records a finished input.
    /// - Parameters:
    ///   - outputs: files written for it.
    ///   - failed: whether it was skipped because of an error.
    func finished(outputs: Int, failed: Bool) {
        state.withLock { s in
            s.done += 1
            s.outputs += outputs
            if failed { s.failed += 1 }
            draw(&s, force: s.done == total)
        }
    }

    /// Removes the progress bar.
    func clearProgress() {
        state.withLock { s in
            if s.barShown { StandardError.write("\r\u{1B}[2K") }
            s.barShown = false
        }
    }

    /// The counts so far: inputs done (successfully), skipped, outputs written.
    var counts: (succeeded: Int, skipped: Int, outputs: Int) {
        state.withLock { s in (s.done - s.failed, s.failed, s.outputs) }
    }

    /// The summary line: images done, skipped, outputs written (for commands that write any), time and rate.
    func summary(verb: String = "explained", countsOutputs: Bool = true) -> String {
        let (ok, skipped, outputs) = counts
        let seconds = elapsedSeconds
        let rate = seconds > 0 ? Double(ok + skipped) / seconds : 0
        let written = countsOutputs ? ", \(outputs) output\(outputs == 1 ? "" : "s") written" : ""
        return "camkit: \(ok) image\(ok == 1 ? "" : "s") \(verb), \(skipped) skipped\(written)"
            + String(format: " in %.1f s (%.2f images/s)", seconds, rate)
    }

    /// Draws the bar (at most ten times a second unless forced).
    private func draw(_ s: inout State, force: Bool) {
        guard showsProgress, total > 0 else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        guard force || now - s.lastDraw > 100_000_000 else { return }
        s.lastDraw = now
        let width = 24
        let filled = min(width, s.done * width / total)
        let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
        let seconds = elapsedSeconds
        let rate = seconds > 0 ? Double(s.done) / seconds : 0
        var text = "\r\u{1B}[2K\(bar) \(s.done)/\(total)"
        if s.failed > 0 { text += ", \(s.failed) skipped" }
        if rate > 0 {
            text += String(format: "  %.1f images/s", rate)
            if s.done < total { text += String(format: "  ETA %.0f s", Double(total - s.done) / rate) }
        }
        StandardError.write(text)
        s.barShown = true
    }
}
