@testable import Explain
import Foundation
import ONNXGraph
import TensorCore
import Testing

/// Bad input to the attribution methods: each is a thrown ``ExplainError`` naming the value, never
/// a crash. The model is the 64×64 ResNet fixture (`Tests/ONNXGraphTests/Fixtures/resnet_basic`).
@Suite("Attribution bad input")
struct AttributionTests {
    let model: ModelGraph
    let input: Tensor

    init() throws {
        model = try fixtureModel("Tests/ONNXGraphTests/Fixtures/resnet_basic/model.onnx")
        input = try loadNPY("Tests/ExplainTests/Fixtures/attr/resnet_basic_pred/input.npy")
    }

    func attribute(_ method: any AttributionMethod, targets: [CAMTarget]? = nil,
                   options: AttributionOptions = AttributionOptions()) throws -> AttributionResult {
        try Attributor(model: model, method: method, options: options).attribute(input, targets: targets)
    }

    @Test func baselineOfTheWrongShape() throws {
        let wrong = Tensor(zeros: [3, 32, 32])
        let error = #expect(throws: ExplainError.self) {
            try attribute(IntegratedGradients(steps: 4, baseline: .tensor(wrong)))
        }
        guard case .shapeMismatch(let name, let shape, _)? = error else {
            Issue.record("expected shapeMismatch, got \(String(describing: error))")
            return
        }
        #expect(name == "the baseline" && shape == [3, 32, 32])
        #expect(error?.description.contains("[3, 64, 64]") == true)
    }

    @Test func zeroAndTooFewSteps() {
        for (steps, rule) in [(0, IntegrationRule.gaussLegendre), (1, .riemannTrapezoid), (-3, .riemannLeft)] {
            let error = #expect(throws: ExplainError.self) { try attribute(IntegratedGradients(steps: steps, rule: rule)) }
            #expect(error == .invalidOption(name: "steps", value: "\(steps)",
                                            reason: "\(rule.rawValue) needs at least \(rule == .gaussLegendre ? 1 : 2) steps (Captum's default is 50)"))
        }
    }

    @Test func zeroSamplesAndNegativeNoise() {
        let zero = #expect(throws: ExplainError.self) {
            try attribute(NoiseTunnel(wrapping: Saliency(), samples: 0))
        }
        #expect(zero?.description.contains("at least 1 noisy sample") == true)
        let negative = #expect(throws: ExplainError.self) {
            try attribute(NoiseTunnel(wrapping: Saliency(), samples: 2, noise: .gaussian(.absolute(-0.1), seed: 0)))
        }
        #expect(negative == .invalidOption(name: "noise standard deviation", value: "-0.1", reason: "must be ≥ 0"))
        let negativeFraction = #expect(throws: ExplainError.self) {
            try attribute(NoiseTunnel(wrapping: Saliency(), samples: 2, noise: .gaussian(.fractionOfRange(-1), seed: 0)))
        }
        #expect(negativeFraction?.description.contains("noise level") == true)
        let wrongNoise = #expect(throws: ExplainError.self) {
            try attribute(NoiseTunnel(wrapping: Saliency(), noise: .explicit(Tensor(zeros: [2, 3, 64, 64]))))
        }
        #expect(wrongNoise?.description.contains("(samples, 1, 3, 64, 64)") == true)
    }

    @Test func occlusionWindowLargerThanTheInput() {
        let error = #expect(throws: ExplainError.self) { try attribute(Occlusion(window: 65, stride: 8)) }
        #expect(error?.description.contains("larger than the input sample [3, 64, 64]") == true)
        let stride = #expect(throws: ExplainError.self) { try attribute(Occlusion(window: 4, stride: 8)) }
        #expect(stride?.description.contains("some elements would never be occluded") == true)
        let axes = #expect(throws: ExplainError.self) { try attribute(Occlusion(window: [8], strides: [4])) }
        #expect(axes?.description.contains("one extent and one stride per non-batch axis") == true)
        let zero = #expect(throws: ExplainError.self) { try attribute(Occlusion(window: 0, stride: 1)) }
        #expect(zero?.description.contains("at least 1") == true)
    }

    @Test func targetCountMismatch() {
        let error = #expect(throws: ExplainError.self) {
            try attribute(Saliency(), targets: [.classScore(1), .classScore(2)])
        }
        #expect(error == .targetCountMismatch(targets: 2, batch: 1))
        let range = #expect(throws: ExplainError.self) { try attribute(Saliency(), targets: [.classScore(100_000)]) }
        guard case .classOutOfRange(100_000, _)? = range else {
            Issue.record("expected classOutOfRange, got \(String(describing: range))")
            return
        }
    }

    @Test func invalidBatchSizeBlurAndLayer() {
        let batch = #expect(throws: ExplainError.self) {
            try attribute(Saliency(), options: AttributionOptions(batchSize: 0))
        }
        #expect(batch?.description.contains("batch size") == true)
        let blur = #expect(throws: ExplainError.self) { try attribute(IntegratedGradients(steps: 2, baseline: .blurred(sigma: 0))) }
        #expect(blur?.description.contains("blur sigma") == true)
        #expect(throws: ONNXGraphError.self) { try attribute(GuidedGradCAM(layer: "layr4")) }
        let flat = #expect(throws: ExplainError.self) { try attribute(GuidedGradCAM(layer: "/Flatten_output_0")) }
        if case .noSpatialStructure? = flat {} else if flat != nil { Issue.record("expected noSpatialStructure, got \(String(describing: flat))") }
    }

    @Test func notAnImageBatch() {
        let error = #expect(throws: ExplainError.self) {
            try Attributor(model: model, method: Saliency()).attribute(Tensor(zeros: [0, 3, 64, 64]))
        }
        #expect(error?.description.contains("every dimension must be positive") == true)
    }

    /// Closed forms of the small pieces: a constant baseline, Occlusion's window count with a
    /// clipped last window, SmoothGrad with zero noise = the method itself.
    @Test func closedForms() throws {
        // σ = 0: every noisy copy is the input, so SmoothGrad equals Saliency and VarGrad is 0.
        let plain = try attribute(Saliency())
        let smooth = try attribute(NoiseTunnel(wrapping: Saliency(), samples: 3, noise: .gaussian(.absolute(0), seed: 0)))
        #expect(smooth.attributions.relativeL2Error(to: plain.attributions) <= 1e-6)
        let variance = try attribute(NoiseTunnel(wrapping: Saliency(), kind: .varGrad, samples: 3, noise: .gaussian(.absolute(0), seed: 0)))
        #expect(variance.attributions.scalars.allSatisfy { abs($0) <= 1e-12 })
        // IG from a baseline equal to the input: all zero, completeness error 0.
        let same = try attribute(IntegratedGradients(steps: 3, baseline: .tensor(input)))
        #expect(same.attributions.scalars.allSatisfy { $0 == 0 })
        #expect(same.completenessError == [0])
        // Occlusion with one window covering everything: every element gets f(x) − f(baseline).
        let whole = try attribute(Occlusion(window: 64, stride: 64, baseline: 0.5))
        let f = try attribute(IntegratedGradients(steps: 2, rule: .riemannTrapezoid, baseline: .constant(0.5)))
        let delta = try #require(f.scoreDifference?.first)
        #expect(whole.attributions.scalars.allSatisfy { abs($0 - delta) <= 1e-5 * max(1, abs(delta)) })
    }

    /// Rows per pass: equal passes split evenly over the threads where a divisor of the row count
    /// in `batchSize/2 ... batchSize` allows, else full passes and the rest.
    @Test func rowsPerPass() {
        let cases: [(rows: Int, batch: Int, threads: Int, expected: Int)] = [
            (50, 16, 2, 10), (52, 16, 2, 16), (32, 16, 2, 16), (20, 16, 2, 10), (100, 16, 2, 10),
            (49, 16, 1, 16), (50, 16, 1, 10), (45, 16, 1, 15), (45, 16, 2, 16),
            (7, 16, 2, 7), (16, 16, 2, 16), (5, 1, 2, 1), (0, 16, 2, 1),
        ]
        for c in cases {
            #expect(AttributionContext.rowsPerPass(rowCount: c.rows, batchSize: c.batch, threads: c.threads) == c.expected,
                    "\(c.rows) rows, batch \(c.batch), \(c.threads) threads")
        }
    }
}
