import Testing
import TensorCore
@testable import Imaging

@Suite struct OverlayTests {
    @Test(arguments: [(Float(0.5), "overlay/show_cam_w5.rgb"), (Float(0.3), "overlay/show_cam_w3.rgb")])
    func matchesShowCamOnImage(weight: Float, file: String) throws {
        let image = try Fixtures.rgb("overlay/image.rgb")
        let mask = try Fixtures.tensor("overlay/mask.f32")
        let out = camOverlay(image, mask: mask, colormap: .jet, imageWeight: weight)
        let expected = try Fixtures.bytes(file)
        let mismatches = zip(out.pixels, expected).filter { $0 != $1 }.count
        #expect(mismatches == 0, "\(mismatches) bytes differ, max |Δ| = \(maxDifference(out.pixels, expected))")
    }

    @Test func kerasOverlayMatchesTheTutorialFormula() throws {
        let image = try Fixtures.rgb("overlay/image.rgb")
        let mask = try Fixtures.tensor("overlay/mask.f32")
        let out = kerasOverlay(image, mask: mask)
        let expected = try Fixtures.bytes("overlay/keras_a4.rgb")
        #expect(maxDifference(out.pixels, expected) <= 1)
        let clipped = kerasOverlay(image, mask: Tensor(zeros: [40, 56]), alpha: 0, scaling: .clip)
        #expect(clipped == image)
    }
}
