import Testing
import TensorCore
@testable import Imaging

@Suite struct MapResizeTests {
    func compare(_ src: String, _ ref: String, h: Int, w: Int) throws -> Float {
        let m = try Fixtures.tensor(src)
        let expected = try Fixtures.tensor(ref)
        let out = resizedBilinear(m, height: h, width: w)
        #expect(out.shape == [h, w])
        let a = out.scalars, b = expected.scalars
        var worst: Float = 0
        for i in 0..<a.count { worst = max(worst, abs(a[i] - b[i])) }
        return worst
    }

    @Test func upsamplesLikeOpenCV() throws {
        let worst = try compare("resize/cv2_src_7x7.f32", "resize/cv2_7x7_to_224.f32", h: 224, w: 224)
        #expect(worst <= 2.5e-7, "max |Δ| = \(worst)")
    }

    @Test func nonIntegerRatiosMatchOpenCV() throws {
        let up = try compare("resize/cv2_src_13x17.f32", "resize/cv2_13x17_to_60x100.f32", h: 60, w: 100)
        #expect(up <= 2.5e-7, "max |Δ| = \(up)")
        let down = try compare("resize/cv2_src_13x17.f32", "resize/cv2_13x17_to_5x7.f32", h: 5, w: 7)
        #expect(down <= 2.5e-7, "max |Δ| = \(down)")
    }

    @Test func leadingDimensionsAreBatches() throws {
        let m = try Fixtures.tensor("resize/cv2_src_13x17.f32")
        let two = Tensor(shape: [2, 1, 13, 17], scalars: m.scalars + m.scalars.map { $0 * 2 })
        let out = resizedBilinear(two, height: 30, width: 40)
        #expect(out.shape == [2, 1, 30, 40])
        let single = resizedBilinear(m, height: 30, width: 40).scalars
        let s = out.scalars
        #expect(Array(s[0..<1200]) == single)
        #expect(Array(s[1200...]) == single.map { $0 * 2 })
    }
}
