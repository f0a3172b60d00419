import Foundation
import Testing

/// `camkit benchmark` through the built executable: the `--json` report's keys and the relations
/// its timings must satisfy.
@Suite struct BenchmarkCommandTests: CommandLineSuite {
    /// The report has load, plan, forward, backward and total times (median and spread) for the
    /// bundled model; every gradient pass's total contains its forward and its backward part, so
    /// the median total is at least either part's median. `--no-backward` leaves the gradient
    /// passes out.
    @Test func jsonReportsForwardBackwardAndTotal() throws {
        let run = try camkit(["benchmark", "--runs", "3", "--warmup", "1", "--threads", "1", "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        let report = try run.record()
        var medians: [String: Double] = [:]
        for key in ["forward_ms", "recording_forward_ms", "backward_ms", "total_ms"] {
            let spread = try #require(report[key] as? [String: Double], "\(key) missing from \(report.keys)")
            #expect(Set(spread.keys) == ["median", "min", "max", "p90"])
            let (low, median, high) = (spread["min"] ?? -1, spread["median"] ?? -1, spread["max"] ?? -1)
            #expect(0 < low && low <= median && median <= high, "\(key): \(spread)")
            medians[key] = median
        }
        let total = medians["total_ms"] ?? 0
        #expect(total >= (medians["backward_ms"] ?? .infinity) && total >= (medians["recording_forward_ms"] ?? .infinity))
        #expect((report["gflops"] as? Double ?? 0) > 0)
        #expect((report["load_ms"] as? Double ?? -1) >= 0 && (report["plan_ms"] as? Double ?? -1) >= 0)

        let forwardOnly = try camkit(["benchmark", "--runs", "1", "--warmup", "0", "--threads", "1", "--no-backward", "--json"])
        #expect(forwardOnly.status == 0, "\(forwardOnly.stderr)")
        let short = try forwardOnly.record()
        #expect(short["forward_ms"] != nil)
        #expect(short["backward_ms"] == nil && short["total_ms"] == nil && short["recording_forward_ms"] == nil)
    }
}
