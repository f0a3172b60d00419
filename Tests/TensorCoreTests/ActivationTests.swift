import Foundation
import Testing
import TensorCore

// Tests of Activation.swift: closed forms, references written with Double math, the three ReLU
// gradient rules, and central finite-difference checks of the pullbacks (inputs kept at least
// 0.1 from every kink, so that ±ε = 1e-2 never crosses one; see ewCheckGradient).

@Suite struct ActivationTests {
    func ref(_ t: Tensor, _ f: (Double) -> Double) -> Tensor {
        Tensor(shape: t.shape, scalars: t.scalars.map { Float(f(Double($0))) })
    }

    @Test func reluForwardAndRules() {
        let x = Tensor(shape: [6], scalars: [-2, -0.5, 0, 0.5, 2, .nan])
        let y = relu(x).scalars
        #expect(Array(y[0..<5]) == [0, 0, 0, 0.5, 2] && y[5].isNaN)
        let x4 = Tensor(shape: [4], scalars: [-1, -1, 1, 1])
        let g = Tensor(shape: [4], scalars: [2, -2, 2, -2])
        #expect(reluPullback(g, input: x4).scalars == [0, 0, 2, -2])
        #expect(guidedReluPullback(g, input: x4).scalars == [0, 0, 2, 0])
        #expect(deconvnetReluPullback(g).scalars == [2, 0, 2, 0])
        // Large (threaded) input against the scalar definition.
        var r = EWRandom(seed: 31)
        let big = r.tensor([2, 64, 56, 56])
        #expect(relu(big) == Tensor(shape: big.shape, scalars: big.scalars.map { $0 < 0 ? 0 : $0 }))
    }

    /// The in-place pullbacks from the output equal the out-of-place ones (ReLU from its input,
    /// which has the same sign pattern as its output; Clip from its output), on a threaded size.
    @Test func inPlacePullbacksFromTheOutputMatch() {
        var r = EWRandom(seed: 33)
        let x = r.tensor([2, 64, 56, 56]), g = r.tensor([2, 64, 56, 56])
        let y = relu(x)
        for (rule, expected) in [(ReLUGradientRule.standard, reluPullback(g, input: x)),
                                 (.guided, guidedReluPullback(g, input: x)), (.deconvnet, deconvnetReluPullback(g))] {
            var inPlace = g
            activationPullback(&inPlace, output: y, activation: .relu, reluRule: rule)
            #expect(inPlace == expected, "\(rule)")
        }
        let clipped = clip(x, min: -0.5, max: 0.5)
        var inPlace = g
        activationPullback(&inPlace, output: clipped, activation: .clip(min: -0.5, max: 0.5))
        #expect(inPlace == clipPullback(g, output: clipped, min: -0.5, max: 0.5))
        var unchanged = g
        activationPullback(&unchanged, output: y, activation: .none)
        #expect(unchanged == g)
    }

    @Test func pointwiseActivationsMatchReferences() {
        var r = EWRandom(seed: 32)
        let x = r.tensor([5, 400], -8, 8)
        #expect(ewClose(sigmoid(x), ref(x) { 1 / (1 + Foundation.exp(-$0)) }, rtol: 1e-6, atol: 1e-7))
        #expect(ewClose(tanh(x), ref(x) { Foundation.tanh($0) }, rtol: 1e-6, atol: 1e-7))
        #expect(ewClose(leakyRelu(x, alpha: 0.1), ref(x) { $0 < 0 ? 0.1 * $0 : $0 }))
        #expect(ewClose(gelu(x), ref(x) { 0.5 * $0 * (1 + Foundation.erf($0 / 2.0.squareRoot())) }, rtol: 1e-6, atol: 1e-6))
        #expect(ewClose(gelu(x, approximation: .tanh), ref(x) {
            0.5 * $0 * (1 + Foundation.tanh((2 / Double.pi).squareRoot() * ($0 + 0.044715 * $0 * $0 * $0)))
        }, rtol: 1e-5, atol: 1e-6))
        #expect(ewClose(hardSigmoid(x, alpha: 0.3, beta: 0.4), ref(x) { Swift.max(0, Swift.min(1, 0.3 * $0 + 0.4)) }))
        #expect(ewClose(hardSwish(x), ref(x) { $0 * Swift.max(0, Swift.min(1, $0 / 6 + 0.5)) }))
        // Tails do not overflow into NaN.
        #expect(sigmoid(Tensor(shape: [2], scalars: [-200, 200])).scalars == [0, 1])
    }

    @Test func clipForward() {
        let x = Tensor(shape: [5], scalars: [-3, -1, 0, 1, 3])
        #expect(clip(x, min: -1.5, max: 2).scalars == [-1.5, -1, 0, 1, 2])
        #expect(clip(x, min: nil, max: 0.5).scalars == [-3, -1, 0, 0.5, 0.5])
        #expect(clip(x, min: 0, max: nil).scalars == [0, 0, 0, 1, 3])
        #expect(clip(x, min: nil, max: nil) == x)
        // min > max: ONNX Runtime applies min then max, so everything becomes max.
        #expect(clip(x, min: 2, max: 1).scalars == [1, 1, 1, 1, 1])
        #expect(clip(Tensor(shape: [3], int64s: [-5, 0, 9]), min: -1, max: 6).int64s == [-1, 0, 6])
        let g = Tensor(shape: [5], scalars: [1, 2, 3, 4, 5])
        #expect(clipPullback(g, input: x, min: -1, max: 1).scalars == [0, 2, 3, 4, 0])
        // From the output (PyTorch's hardtanh backward): zero at the bounds themselves.
        let y = clip(x, min: -1, max: 1)  // [-1, -1, 0, 1, 1]
        #expect(clipPullback(g, output: y, min: -1, max: 1).scalars == [0, 0, 3, 0, 0])
        let bounds = clipBoundsPullback(g, input: x, min: -1.5, max: 2)
        #expect(bounds.min == 1 && bounds.max == 5)
    }

    @Test func activationPullbacks() {
        var r = EWRandom(seed: 33)
        let x = r.tensor([4, 7], -3, 3)
        let apart = r.tensorAwayFromZero([4, 7], 0.1, 3)
        ewCheckGradient([apart], { relu($0[0]) }) { g in [reluPullback(g, input: apart)] }
        ewCheckGradient([apart], { leakyRelu($0[0], alpha: 0.2) }) { g in [leakyReluPullback(g, input: apart, alpha: 0.2)] }
        ewCheckGradient([x], { sigmoid($0[0]) }) { g in [sigmoidPullback(g, result: sigmoid(x))] }
        ewCheckGradient([x], { tanh($0[0]) }) { g in [tanhPullback(g, result: tanh(x))] }
        ewCheckGradient([x], { gelu($0[0]) }) { g in [geluPullback(g, input: x)] }
        ewCheckGradient([x], { gelu($0[0], approximation: .tanh) }) { g in [geluPullback(g, input: x, approximation: .tanh)] }
        // Hard sigmoid kinks at αx + β ∈ {0, 1} (x = −2.5, 2.5 for the defaults); hard swish at ±3.
        let hs = Tensor(shape: [8], scalars: [-4, -2.4, -1, -0.05, 0.3, 1.7, 2.4, 4])
        ewCheckGradient([hs], { hardSigmoid($0[0]) }) { g in [hardSigmoidPullback(g, input: hs)] }
        let hw = Tensor(shape: [8], scalars: [-5, -2.8, -1, -0.05, 0.3, 1.7, 2.8, 5])
        ewCheckGradient([hw], { hardSwish($0[0]) }) { g in [hardSwishPullback(g, input: hw)] }
        let c = Tensor(shape: [6], scalars: [-2, -0.8, -0.3, 0.2, 0.9, 2])
        ewCheckGradient([c], { clip($0[0], min: -0.5, max: 0.5) }) { g in [clipPullback(g, input: c, min: -0.5, max: 0.5)] }
    }
}
