@testable import Explain
import TensorCore
import Testing

@Suite("CAMPostProcessing")
struct PostProcessingTests {
    @Test func minMaxUsesTheReferenceEpsilon() {
        var x = Tensor(shape: [2, 1, 3], scalars: [1, 2, 3, 5, 5, 5])
        CAMPostProcessing.minMaxNormalize(&x)
        let s = x.scalars
        #expect(s[0] == 0)
        #expect(s[1] == 1 / (2 + 1e-7))
        #expect(s[2] == 2 / (2 + 1e-7))
        #expect(s[3...].allSatisfy { $0 == 0 })   // a flat map becomes zeros
        #expect(CAMPostProcessing.flatImages(x) == [1])
    }

    @Test func scaleNormalisesBeforeTheHalfPixelResize() {
        // 1×2 map [0, 1] → width 4 with OpenCV INTER_LINEAR: [0, 0.25, 0.75, 1] (× 1/(1+1e-7)).
        let x = Tensor(shape: [1, 1, 2], scalars: [3, 7])
        let y = CAMPostProcessing.scaled(x, height: 1, width: 4)
        let e: Float = 1 / (1 + 1e-7)
        let expected: [Float] = [0, 0.25 * e, 0.75 * e, e]
        for (a, b) in zip(y.scalars, expected) { #expect(abs(a - b) < 1e-6) }
    }

    @Test func layersAreRectifiedAveragedAndRenormalised() {
        let a = Tensor(shape: [1, 1, 2], scalars: [0, 0.5])
        let b = Tensor(shape: [1, 1, 2], scalars: [-1, 0.25])
        let y = CAMPostProcessing.aggregated([a, b]).scalars
        #expect(y[0] == 0)
        #expect(abs(y[1] - 1) < 1e-6)
    }

    @Test func nonFiniteValuesAreReplaced() {
        var x = Tensor(shape: [2, 2], scalars: [1, .nan, 2, 3])
        #expect(CAMPostProcessing.sanitize(&x) == [0])
        #expect(x.scalars == [1, 0, 2, 3])
    }

    @Test func weightedSumMatchesTheDefinition() {
        let a = Tensor(shape: [1, 2, 1, 2], scalars: [1, 2, 3, 4])
        let w = Tensor(shape: [1, 2], scalars: [2, -1])
        #expect(CAMPostProcessing.weightedChannelSum(weights: w, activations: a).scalars == [-1, 0])
        #expect(CAMPostProcessing.channelSum(CAMPostProcessing.weightedActivations(weights: w, activations: a)).scalars == [-1, 0])
    }
}
