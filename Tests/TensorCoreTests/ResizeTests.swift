import Foundation
import Testing
@testable import TensorCore

// Tests of Resize.swift: nearest and linear resize against closed forms (PyTorch/ONNX values),
// a naive direct bilinear reference, OpenCV's INTER_LINEAR fixtures, and the pullbacks.


/// The input coordinate of output `x`, written from the ONNX spec's formulas.
private func specCoordinate(_ x: Int, scale: Float, n: Int, m: Int, _ ct: ResizeCoordinateTransformation) -> Float {
    switch ct {
    case .halfPixel: return (Float(x) + 0.5) / scale - 0.5
    case .pytorchHalfPixel: return m > 1 ? (Float(x) + 0.5) / scale - 0.5 : 0
    case .alignCorners: return m == 1 ? 0 : Float(x) * Float(n - 1) / Float(m - 1)
    case .asymmetric: return Float(x) / scale
    case .halfPixelSymmetric:
        let adj = Float(m) / (scale * Float(n))
        return Float(n) / 2 * (1 - adj) + (Float(x) + 0.5) / scale - 0.5
    }
}

/// Direct bilinear interpolation over the last two dims (four neighbours, weights multiplied),
/// clamping coordinates into the input like ONNX Runtime and PyTorch.
private func naiveBilinear(_ x: Tensor, h: Int, w: Int, scales: (Float, Float), _ ct: ResizeCoordinateTransformation) -> [Float] {
    let H = x.shape[x.rank - 2], W = x.shape[x.rank - 1]
    let planes = x.count / (H * W)
    let xs = x.scalars
    var out: [Float] = []
    for p in 0..<planes {
        for i in 0..<h {
            let y = max(0, min(specCoordinate(i, scale: scales.0, n: H, m: h, ct), Float(H - 1)))
            let y0 = Int(y), y1 = min(y0 + 1, H - 1), dy = y - Float(y0)
            for j in 0..<w {
                let xx = max(0, min(specCoordinate(j, scale: scales.1, n: W, m: w, ct), Float(W - 1)))
                let x0 = Int(xx), x1 = min(x0 + 1, W - 1), dx = xx - Float(x0)
                let v = { (r: Int, c: Int) in xs[p * H * W + r * W + c] }
                let top = v(y0, x0) * (1 - dx) + v(y0, x1) * dx
                let bottom = v(y1, x0) * (1 - dx) + v(y1, x1) * dx
                out.append(top * (1 - dy) + bottom * dy)
            }
        }
    }
    return out
}

private func close(_ a: [Float], _ b: [Float], _ tol: Float) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= tol * (1 + abs($1)) }
}

@Test func bilinearMatchesPyTorchValues() {
    let x = Tensor(shape: [1, 1, 2, 2], scalars: [1, 2, 3, 4])
    // torch.nn.functional.interpolate(x, size=(4, 4), mode="bilinear", align_corners=False)
    let y = resizedBilinear(x, height: 4, width: 4, alignCorners: false)
    let expected: [Float] = [1.0, 1.25, 1.75, 2.0, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3.0, 3.25, 3.75, 4.0]
    #expect(close(y.scalars, expected, 1e-6))
    // align_corners=True (nn.UpsamplingBilinear2d) to 3×3.
    let z = resizedBilinear(x, height: 3, width: 3, alignCorners: true)
    let expectedCorners: [Float] = [1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4]
    #expect(close(z.scalars, expectedCorners, 1e-6))
}

@Test func bilinearMatchesNaiveReference() {
    var rng = TestRNG(seed: 51)
    let x = shapingRandomTensor([2, 3, 7, 9], &rng)
    for ct in ResizeCoordinateTransformation.allCases {
        for (h, w) in [(14, 27), (3, 4), (7, 9), (1, 1), (20, 5)] {
            let scales: [Float] = [1, 1, Float(h) / 7, Float(w) / 9]
            let y = resized(x, toShape: [2, 3, h, w], scales: scales, mode: .linear, coordinateTransformation: ct)
            #expect(close(y.scalars, naiveBilinear(x, h: h, w: w, scales: (scales[2], scales[3]), ct), 1e-5), "\(ct) \(h)×\(w)")
        }
    }
}

@Test func bilinearMatchesOpenCV() throws {
    let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("ImagingTests/Fixtures/resize")
    func load(_ name: String) throws -> [Float] {
        let data = try Data(contentsOf: dir.appendingPathComponent(name))
        return data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }
    let src7 = try load("cv2_src_7x7.f32"), ref224 = try load("cv2_7x7_to_224.f32")
    let y = resizedBilinear(Tensor(shape: [1, 1, 7, 7], scalars: src7), height: 224, width: 224, alignCorners: false)
    #expect(Tensor(shape: [224, 224], scalars: ref224).relativeL2Error(to: y.reshaped(to: [224, 224])) < 1e-6)
    #expect(close(y.scalars, ref224, 1e-5))
    let src13 = try load("cv2_src_13x17.f32"), ref60 = try load("cv2_13x17_to_60x100.f32")
    let z = resizedBilinear(Tensor(shape: [1, 1, 13, 17], scalars: src13), height: 60, width: 100, alignCorners: false)
    #expect(close(z.scalars, ref60, 1e-5))
}

@Test func nearestRoundingModes() {
    let x = Tensor(shape: [4], scalars: [10, 11, 12, 13])
    func near(_ m: Int, _ ct: ResizeCoordinateTransformation, _ r: NearestRounding) -> [Float] {
        resized(x, toShape: [m], scales: [Float(m) / 4], mode: .nearest(r), coordinateTransformation: ct).scalars
    }
    // Downsampling by 2 with half_pixel lands exactly on .5: the rounding mode decides.
    #expect(near(2, .halfPixel, .roundPreferFloor) == [10, 12])
    #expect(near(2, .halfPixel, .roundPreferCeil) == [11, 13])
    #expect(near(2, .halfPixel, .floor) == [10, 12])
    #expect(near(2, .halfPixel, .ceil) == [11, 13])
    // PyTorch's nearest upsampling exports asymmetric + floor.
    #expect(near(8, .asymmetric, .floor) == [10, 10, 11, 11, 12, 12, 13, 13])
    #expect(near(8, .halfPixel, .roundPreferFloor) == [10, 10, 11, 11, 12, 12, 13, 13])
    #expect(near(6, .alignCorners, .roundPreferCeil) == [10, 11, 11, 12, 12, 13])
    #expect(near(3, .asymmetric, .ceil) == [10, 12, 13])   // index 4 clamps to 3
    let i = Tensor(shape: [1, 2], int64s: [5, 6])
    let up = resized(i, toShape: [2, 4], scales: [2, 2], mode: .nearest(.floor), coordinateTransformation: .asymmetric)
    #expect(up == Tensor(shape: [2, 4], int64s: [5, 5, 6, 6, 5, 5, 6, 6]))
}

@Test func resizePullbacksMatchFiniteDifferences() {
    var seed: UInt64 = 60
    for ct in ResizeCoordinateTransformation.allCases {
        for (shape, out) in [([1, 2, 5, 6], [1, 2, 11, 13]), ([2, 1, 9, 8], [2, 1, 4, 3])] {
            seed += 1
            let scales = (0..<4).map { Float(out[$0]) / Float(shape[$0]) }
            checkLinearPullback(shape, seed: seed,
                          { resized($0, toShape: out, scales: scales, mode: .linear, coordinateTransformation: ct) },
                          { resizePullback($0, inputShape: shape, scales: scales, mode: .linear, coordinateTransformation: ct) })
            checkLinearPullback(shape, seed: seed + 100,
                          { resized($0, toShape: out, scales: scales, mode: .nearest(.roundPreferFloor), coordinateTransformation: ct) },
                          { resizePullback($0, inputShape: shape, scales: scales, mode: .nearest(.roundPreferFloor),
                                           coordinateTransformation: ct) })
        }
    }
    checkLinearPullback([1, 3, 7, 7], seed: 99, { resizedBilinear($0, height: 32, width: 32, alignCorners: true) },
                  { resizedBilinearPullback($0, inputShape: [1, 3, 7, 7], alignCorners: true) })
}

@Test func antialiasedLinearDownscale() {
    // 8 → 4 with half_pixel: a triangle of half-width 2 centred at (i + 0.5)·2; the tap left of
    // index 0 folds onto it (ONNX Runtime with exclude_outside = 0), weights normalised by 2.
    let x = Tensor(shape: [8], scalars: (0..<8).map(Float.init))
    let y = resized(x, toShape: [4], scales: [0.5], mode: .linear, coordinateTransformation: .halfPixel, antialias: true)
    let expected: [Float] = [0.625, 2.5, 4.5, 6.375]
    #expect(close(y.scalars, expected, 1e-6))
    // Upscaling with antialias is plain bilinear.
    var rng = TestRNG(seed: 70)
    let z = shapingRandomTensor([1, 2, 5, 6], &rng)
    let a = resized(z, toShape: [1, 2, 9, 13], scales: [1, 1, 1.8, 13.0 / 6], mode: .linear,
                    coordinateTransformation: .halfPixel, antialias: true)
    let b = resized(z, toShape: [1, 2, 9, 13], scales: [1, 1, 1.8, 13.0 / 6], mode: .linear, coordinateTransformation: .halfPixel)
    #expect(close(a.scalars, b.scalars, 1e-5))
    checkLinearPullback([1, 2, 9, 10], seed: 71,
                  { resized($0, toShape: [1, 2, 4, 3], scales: [1, 1, 0.45, 0.3], mode: .linear,
                            coordinateTransformation: .halfPixel, antialias: true) },
                  { resizePullback($0, inputShape: [1, 2, 9, 10], scales: [1, 1, 0.45, 0.3], mode: .linear,
                                   coordinateTransformation: .halfPixel, antialias: true) })
}
