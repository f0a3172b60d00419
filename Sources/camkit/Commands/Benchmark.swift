import ArgumentParser
import CAMKit
import Foundation

/// `camkit benchmark`: load and forward timings, like `onnxruntime_perf_test`.
struct Benchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time model load and forward passes: median and spread in milliseconds, achieved GFLOP/s.")

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

    @Option(name: .customLong("attribution-batch"), help: "Rows per network pass for --attribution (AttributionOptions.batchSize).")
    var attributionBatch: Int = AttributionOptions.defaultBatchSize

    @Option(name: .long, help: "Threads for CAMKit's kernels and the BLAS (default: all cores).")
    var threads: Int?

    @Flag(name: .long, help: "Also profile the timed runs: time per op type and the slowest kernels (medians).")
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
        times.sort()
        let median = times[times.count / 2]
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
            camTimes.sort()
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
            attributionTimes.sort()
        }
        let gflops = 2 * Double(plan.multiplyAccumulateCount) / (median * 1e6)
        var stats: [String: Any] = [
            "model": classifier.url.lastPathComponent, "batch": batch, "runs": runs,
            "load_ms": loadMs, "plan_ms": planMs,
            "forward_ms": ["median": median, "min": times.first ?? 0, "max": times.last ?? 0,
                           "p90": times[min(times.count - 1, times.count * 9 / 10)]],
            "gflops": gflops, "threads": ComputeSettings.threadCount, "blas": BLAS.coreName,
            "peak_rss_mb": peakResidentMegabytes(),
        ]
        if !camTimes.isEmpty {
            stats["method"] = method
            stats["explain_ms"] = ["median": camTimes[camTimes.count / 2], "min": camTimes.first ?? 0,
                                   "max": camTimes.last ?? 0]
            stats["peak_rss_mb"] = peakResidentMegabytes()
        }
        if !attributionTimes.isEmpty {
            stats["attribution"] = attribution
            stats["attribution_ms"] = ["median": attributionTimes[attributionTimes.count / 2], "min": attributionTimes.first ?? 0,
                                       "max": attributionTimes.last ?? 0]
            stats["attribution_batch"] = attributionBatch
            stats["peak_rss_mb"] = peakResidentMegabytes()
        }
        if json {
            let data = try JSONSerialization.data(withJSONObject: stats, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print("model \(classifier.url.lastPathComponent), input \(shape), \(plan.stepCount) kernels, BLAS \(BLAS.coreName)")
            print(String(format: "load %.1f ms, plan %.1f ms", loadMs, planMs))
            print(String(format: "forward median %.2f ms (min %.2f, max %.2f) over %d runs, %.1f GFLOP/s",
                         median, times.first ?? 0, times.last ?? 0, runs, gflops))
        }
        if !json, let method, !camTimes.isEmpty {
            print(String(format: "%@ end to end: median %.2f ms (min %.2f, max %.2f), %.2f× the forward pass",
                         method, camTimes[camTimes.count / 2], camTimes.first ?? 0, camTimes.last ?? 0,
                         camTimes[camTimes.count / 2] / median))
        }
        if !json, let attribution, !attributionTimes.isEmpty {
            print(String(format: "%@ end to end: median %.2f ms (min %.2f, max %.2f), %.2f× the forward pass",
                         attribution, attributionTimes[attributionTimes.count / 2], attributionTimes.first ?? 0,
                         attributionTimes.last ?? 0, attributionTimes[attributionTimes.count / 2] / median))
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

/// Milliseconds elapsed since `start`.
func milliseconds(since start: DispatchTime) -> Double {
    Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6
}
