@testable import Explain
import TensorCore
import Testing

@Suite("ReshapeTransform")
struct ReshapeTransformTests {
    @Test func vitTokensDropTheClassTokenAndMoveChannelsFirst() throws {
        // (1, 1 + 4, 3): token t, channel c holds 10 t + c.
        let values = (0..<5).flatMap { t in (0..<3).map { c in Float(10 * t + c) } }
        let x = Tensor(shape: [1, 5, 3], scalars: values)
        let applied = try ReshapeTransform.vit().resolve(shape: x.shape, layer: "l", modelHasLayerNorm: true)
        #expect(applied == .tokens(extra: 1, height: 2, width: 2))
        let y = applied.apply(x)
        #expect(y.shape == [1, 3, 2, 2])
        // Channel 2, position (1, 0) = token 1 + 2 = 3.
        #expect(y.scalars[2 * 4 + 2] == 32)
        #expect(applied.rawChannelAxis == 2)
    }

    @Test func extraTokensAreDetectedOrGiven() throws {
        let t = ReshapeTransform.vit()
        #expect(try t.resolve(shape: [2, 198, 8], layer: "l", modelHasLayerNorm: true) == .tokens(extra: 2, height: 14, width: 14))
        #expect(try t.resolve(shape: [2, 49, 8], layer: "l", modelHasLayerNorm: true) == .tokens(extra: 0, height: 7, width: 7))
        #expect(try ReshapeTransform.vit(extraTokens: 2).resolve(shape: [1, 18, 4], layer: "l", modelHasLayerNorm: true)
                == .tokens(extra: 2, height: 4, width: 4))
        #expect(throws: ExplainError.self) {
            _ = try ReshapeTransform.vit(extraTokens: 1).resolve(shape: [1, 18, 4], layer: "l", modelHasLayerNorm: true)
        }
        #expect(throws: ExplainError.self) {
            _ = try ReshapeTransform.automatic.resolve(shape: [1, 1000], layer: "fc", modelHasLayerNorm: false)
        }
        #expect(throws: ExplainError.self) {
            _ = try ReshapeTransform.channelsFirst.resolve(shape: [1, 17, 8], layer: "l", modelHasLayerNorm: true)
        }
    }

    @Test func swinChannelsLastIsPermuted() throws {
        let x = Tensor(shape: [1, 2, 2, 3], scalars: (0..<12).map(Float.init))
        let applied = try ReshapeTransform.automatic.resolve(shape: x.shape, layer: "s", modelHasLayerNorm: true)
        #expect(applied == .channelsLast)
        let y = applied.apply(x)
        #expect(y.shape == [1, 3, 2, 2])
        #expect(y.scalars == [0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11])
        // Without LayerNorm in the model a rank-4 output is NCHW.
        #expect(try ReshapeTransform.automatic.resolve(shape: x.shape, layer: "s", modelHasLayerNorm: false) == .identity)
    }
}
