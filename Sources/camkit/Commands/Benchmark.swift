import ArgumentParser
import CAMKit
import Foundation

/// `camkit benchmark`: load, forward, backward and end-to-end timings, like `onnxruntime_perf_test`.
struct Benchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time model load, forward and backward passes: median and spread in milliseconds, achieved GFLOP/s.")

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, help: "Batch size.")
    var batch: Int = 1

    @Option(name: .long, help: "Timed runs (after warm-up).")
    var runs: Int = 20

    @Option(name: .long, help: "Untimed warm-up runs.")
    var warmup: Int = 3

    @Option(name: .long, help: "Also time this CAM method end to end (input tensor → final maps).")
    var method: String?

    @Option(name: .customLong("target-layers"), parsing: .upToNextOption, help: "Target layers for --method (default: the model's default layer).")
    var targetLayers: [String] = []

    @Option(name: .long, help: "Also time this attribution end to end: saliency, inputxgradient, guidedbackprop, deconvolution, guidedgradcam, ig, smoothgrad, smoothgrad-sq, vargrad, smoothig, occlusion.")
    var attribution: String?

    @Option(name: .long, help: "Integrated Gradients steps for --attribution ig/smoothig.")
    var steps: Int = 50

    @Option(name: .long, help: "Noise samples for --attribution smoothgrad/smoothgrad-sq/vargrad/smoothig.")
    var samples: Int = 50

    @Option(name: .customLong("attribution-batch"), help: "Rows per network pass at most for --attribution (AttributionOptions.batchSize).")
    var attributionBatch: Int = AttributionOptions.defaultBatchSize

    @Option(name: .long, help: "Threads for CAMKit's kernels and the BLAS (default: all cores).")
    var threads: Int?

    @Flag(name: .long, inversion: .prefixedNo,
          help: "Also time gradient passes (the top-class score back to the input): the forward with the values kept, the backward pass and their total.")
    var backward = true

    @Flag(name: .long, help: "Also profile the timed runs: time per op type and the slowest kernels (medians; inside channels-last regions each convolution with its fused sum and activation, pooling and layout conversion).")
    var profile = false

    @Flag(name: .long, help: "Print one JSON object instead of text.")
    var json = false

    func validate() throws {
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
    }

    func run() throws {
        if let threads {
            ComputeSettings.threadCount = threads
        }
        let loadStart = DispatchTime.now()
        let classifier = try modelOptions.load()
        let loadMs = milliseconds(since: loadStart)
        let shape = try inputShape(of: classifier, batch: batch)
        var generator = SystemRandomNumberGenerator()
        let input = Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in Float.random(in: -1...1, using: &generator) })
        let planStart = DispatchTime.now()
        let plan = try classifier.graph.plan(forInputShapes: [shape])
        let planMs = milliseconds(since: planStart)
        for _ in 0..<warmup { _ = try plan.run([input]) }
        var times: [Double] = []
        for _ in 0..<runs {
            let start = DispatchTime.now()
            _ = try plan.run([input])
            times.append(milliseconds(since: start))
        }
        var camTimes: [Double] = []
        if let method {
            let explainer = try CAMExplainer(model: classifier.graph, method: CAMMethodName.method(named: method),
                                             targetLayers: targetLayers)
            for _ in 0..<warmup { _ = try explainer.explain(input) }
            for _ in 0..<runs {
                let start = DispatchTime.now()
                _ = try explainer.explain(input)
                camTimes.append(milliseconds(since: start))
            }
        }
        var attributionTimes: [Double] = []
        if let attribution {
            let attributor = try Attributor(model: classifier.graph, method: try attributionMethod(named: attribution),
                                            options: AttributionOptions(batchSize: attributionBatch))
            for _ in 0..<min(warmup, 1) { _ = try attributor.attribute(input) }
            for _ in 0..<runs {
                let start = DispatchTime.now()
                _ = try attributor.attribute(input)
                attributionTimes.append(milliseconds(since: start))
            }
        }
        let forward = Spread(times)
        var backward: (forward: Spread, reverse: Spread, total: Spread)?
        if self.backward {
            backward = try timeGradientPasses(plan, input: input, inputName: classifier.graph.inputs[0].name)
        }
        let gflops = 2 * Double(plan.multiplyAccumulateCount) / (forward.median * 1e6)
        var stats: [String: Any] = [
            "model": classifier.url.lastPathComponent, "batch": batch, "runs": runs,
            "load_ms": loadMs, "plan_ms": planMs, "forward_ms": forward.json,
            "gflops": gflops, "threads": ComputeSettings.threadCount, "blas": BLAS.coreName,
            "peak_rss_mb": peakResidentMegabytes(),
        ]
        if let backward {
            stats["recording_forward_ms"] = backward.forward.json
            stats["backward_ms"] = backward.reverse.json
            stats["total_ms"] = backward.total.json
        }
        if !camTimes.isEmpty {
            stats["method"] = method
            stats["explain_ms"] = Spread(camTimes).json
        }
        if !attributionTimes.isEmpty {
            stats["attribution"] = attribution
            stats["attribution_ms"] = Spread(attributionTimes).json
            stats["attribution_batch"] = attributionBatch
        }
        if json {
            let data = try JSONSerialization.data(withJSONObject: stats, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print("model \(classifier.url.lastPathComponent), input \(shape), \(plan.stepCount) kernels, BLAS \(BLAS.coreName)")
            print(String(format: "load %.1f ms, plan %.1f ms", loadMs, planMs))
            print("forward  " + forward.text + String(format: " over %d runs, %.1f GFLOP/s", runs, gflops))
            if let backward {
                print("gradient of the top-class score with respect to the input:")
                print("  forward (values kept)  " + backward.forward.text)
                print("  backward               " + backward.reverse.text)
                print("  total                  " + backward.total.text)
            }
        }
        if !json, let method, !camTimes.isEmpty {
            let spread = Spread(camTimes)
            print("\(method) end to end: " + spread.text + String(format: ", %.2f× the forward pass", spread.median / forward.median))
        }
        if !json, let attribution, !attributionTimes.isEmpty {
            let spread = Spread(attributionTimes)
            print("\(attribution) end to end: " + spread.text + String(format: ", %.2f× the forward pass", spread.median / forward.median))
        }
        if profile && !json {
            let steps = try plan.profile([input], runs: runs)
            print("time per op type (sum of the kernels' medians over \(runs) runs):")
            var byType: [String: (milliseconds: Double, calls: Int)] = [:]
            for step in steps {
                let total = byType[step.opType] ?? (0, 0)
                byType[step.opType] = (total.milliseconds + step.milliseconds, total.calls + 1)
            }
            for (type, total) in byType.sorted(by: { $0.value.milliseconds > $1.value.milliseconds }) {
                print(type.padding(toLength: 24, withPad: " ", startingAt: 0)
                      + String(format: "%9.3f ms  %4d calls", total.milliseconds, total.calls))
            }
            print("slowest kernels:")
            for step in steps.sorted(by: { $0.milliseconds > $1.milliseconds }).prefix(12) {
                let shape = step.outputShape.map(String.init).joined(separator: "×")
                print(String(format: "%9.3f ms  ", step.milliseconds) + "\(step.opType) \(step.nodeName) → \(shape)")
            }
        }
    }
}

extension Benchmark {
    /// Times `warmup + runs` gradient passes of the top-class score of each image (the first
    /// output's largest entry per row) with respect to the input; the spreads of the timed runs.
    func timeGradientPasses(_ plan: ExecutionPlan, input: Tensor, inputName: String) throws
        -> (forward: Spread, reverse: Spread, total: Spread) {
        var forward: [Double] = [], reverse: [Double] = [], total: [Double] = []
        for run in 0..<(warmup + runs) {
            let start = DispatchTime.now()
            let result = try plan.gradients([input], withRespectTo: [inputName], seed: topClassSeed)
            let elapsed = milliseconds(since: start)
            guard run >= warmup else { continue }
            total.append(elapsed)
            forward.append(milliseconds(result.forwardDuration))
            reverse.append(milliseconds(result.reverseDuration))
        }
        return (Spread(forward), Spread(reverse), Spread(total))
    }

    /// The attribution method for `--attribution`.
    func attributionMethod(named name: String) throws -> any AttributionMethod {
        switch name.lowercased() {
        case "saliency": return Saliency()
        case "inputxgradient": return InputXGradient()
        case "guidedbackprop": return GuidedBackprop()
        case "deconvolution": return Deconvolution()
        case "guidedgradcam": return GuidedGradCAM()
        case "ig", "integratedgradients": return IntegratedGradients(steps: steps)
        case "smoothgrad": return NoiseTunnel(wrapping: Saliency(), kind: .smoothGrad, samples: samples)
        case "smoothgrad-sq": return NoiseTunnel(wrapping: Saliency(), kind: .smoothGradSquared, samples: samples)
        case "vargrad": return NoiseTunnel(wrapping: Saliency(), kind: .varGrad, samples: samples)
        case "smoothig": return NoiseTunnel.smoothIntegratedGradients(IntegratedGradients(steps: steps), samples: samples)
        case "occlusion": return Occlusion(window: 16, stride: 8)
        default:
            throw ValidationError("unknown --attribution '\(name)': use saliency, inputxgradient, guidedbackprop, deconvolution, guidedgradcam, ig, smoothgrad, smoothgrad-sq, vargrad, smoothig or occlusion")
        }
    }
}

/// The process's peak resident set size in MiB.
func peakResidentMegabytes() -> Double {
    var usage = rusage()
    #if canImport(Glibc)
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
    #else
    getrusage(RUSAGE_SELF, &usage)
    return Double(usage.ru_maxrss) / 1_048_576
    #endif
}

/// The median and spread of a set of timings in milliseconds.
struct Spread {
    /// The timings, sorted.
    var sorted: [Double]

    init(_ times: [Double]) { sorted = times.sorted() }

    var median: Double { sorted.isEmpty ? 0 : sorted[sorted.count / 2] }

    /// `median`, `min`, `max` and `p90` for `--json`.
    var json: [String: Double] {
        ["median": median, "min": sorted.first ?? 0, "max": sorted.last ?? 0,
         "p90": sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, sorted.count * 9 / 10)]]
    }

    /// "median M ms (min A, max B)".
    var text: String {
        String(format: "median %.2f ms (min %.2f, max %.2f)", median, sorted.first ?? 0, sorted.last ?? 0)
    }
}

/// d(score)/d(output) for the top-class score of each image: one-hot at each row's largest entry
/// of the first output (other outputs get no seed).
func topClassSeed(_ outputs: [Tensor]) -> [Tensor?] {
    guard let logits = outputs.first, let rows = logits.shape.first, rows > 0 else { return outputs.map { _ in nil } }
    var seed = Tensor(zeros: logits.shape)
    let length = logits.count / rows
    logits.withUnsafeBufferPointer { p in
        seed.withUnsafeMutableBufferPointer { s in
            for r in 0..<rows where length > 0 {
                let row = p[(r * length)..<((r + 1) * length)]
                if let top = row.indices.max(by: { row[$0] < row[$1] }) { s[top] = 1 }
            }
        }
    }
    return [seed] + outputs.dropFirst().map { _ in nil }
}

/// A duration in milliseconds.
func milliseconds(_ duration: Duration) -> Double {
    let (seconds, attoseconds) = duration.components
    return Double(seconds) * 1e3 + Double(attoseconds) / 1e15
}

/// Milliseconds elapsed since `start`.
func milliseconds(since start: DispatchTime) -> Double {
    Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6
}
