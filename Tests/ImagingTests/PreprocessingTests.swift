import Foundation
import Testing
import TensorCore
@testable import Imaging

@Suite struct PreprocessingTests {
    @Test(arguments: Fixtures.manifest.photos.map(\.file))
    func resizeAndCropMatchTorchvision(file: String) throws {
        let p = try #require(Fixtures.manifest.photos.first { $0.file == file })
        let photo = try RGBImage(contentsOf: Fixtures.url(p.file))
        #expect(photo.width == p.width && photo.height == p.height)
        let result = Preprocessing.imagenet(photo)
        let expected = try Fixtures.bytes(p.crop)
        let pixels = result.inputImage.pixels
        var sum = 0
        for i in 0..<pixels.count { sum += abs(Int(pixels[i]) - Int(expected[i])) }
        let mean = Double(sum) / Double(pixels.count)
        #expect(mean <= 1.0 / 255.0 * 255.0 * 0.05, "mean |Δ| = \(mean) levels")   // ≤ 0.05 levels
        #expect(maxDifference(pixels, expected) <= 2)
        if let tensorFile = p.tensor {
            let reference = try Fixtures.tensor(tensorFile)
            #expect(result.tensor.shape == [1, 3, 224, 224])
            let a = result.tensor.scalars, b = reference.scalars
            var d = 0.0
            for i in 0..<a.count { d += Double(abs(a[i] - b[i])) }
            let meanAbs = d / Double(a.count)
            #expect(meanAbs <= 1.0 / 255.0, "mean |Δ| = \(meanAbs)")
        }
    }

    @Test func normalisationIsBitIdenticalToToTensorNormalize() {
        let img = RGBImage(width: 2, height: 1, pixels: [0, 128, 255, 10, 20, 30])
        let t = img.tensor(normalization: .imagenet).scalars
        let mean: [Float] = [0.485, 0.456, 0.406], std: [Float] = [0.229, 0.224, 0.225]
        let expected: [Float] = [(Float(0) / 255 - mean[0]) / std[0], (Float(10) / 255 - mean[0]) / std[0],
                                 (Float(128) / 255 - mean[1]) / std[1], (Float(20) / 255 - mean[1]) / std[1],
                                 (Float(255) / 255 - mean[2]) / std[2], (Float(30) / 255 - mean[2]) / std[2]]
        #expect(t == expected)
        let caffe = img.tensor(normalization: .caffe, layout: .nhwc)
        #expect(caffe.shape == [1, 1, 2, 3])
        #expect(caffe.scalars[0] == 255 - 103.939 && caffe.scalars[2] == 0 - 123.68)   // BGR
        let inception = img.tensor(normalization: .inception).scalars
        #expect(inception[0] == -1 && inception[4] == 1)
    }

    @Test func torchvisionSizeAndCropRounding() {
        #expect(shorterSideSize(width: 451, height: 300, shorterSide: 256) == (384, 256))
        #expect(shorterSideSize(width: 300, height: 451, shorterSide: 256) == (256, 384))
        #expect(centerCropOrigin(width: 257, height: 225, cropWidth: 224, cropHeight: 224) == (16, 0)) // 16.5 → 16
        #expect(centerCropOrigin(width: 259, height: 224, cropWidth: 224, cropHeight: 224) == (18, 0)) // 17.5 → 18
        #expect(centerCropOrigin(width: 100, height: 224, cropWidth: 224, cropHeight: 224) == (-62, 0))
    }

    @Test func geometryMapsTheInputBackOntoThePhoto() {
        // A 400×300 photo, imagenet preset: resized to 341×256, crop at (58, 16).
        let photo = RGBImage(width: 400, height: 300, color: .white)
        let r = Preprocessing.imagenet(photo)
        let g = r.geometry
        #expect(g.inputWidth == 224 && g.inputHeight == 224)
        #expect(abs(g.scaleX - 400.0 / 341.0) < 1e-12 && abs(g.offsetX - 58 * 400.0 / 341.0) < 1e-9)
        // A constant map comes back constant inside the crop and zero outside.
        let ones = Tensor(repeating: 1, shape: [224, 224])
        let back = g.mapToSource(ones)
        #expect(back.shape == [300, 400])
        let v = back.scalars
        #expect(v[150 * 400 + 200] == 1)
        #expect(v[150 * 400 + 10] == 0)        // left of the crop
        #expect(v[150 * 400 + 395] == 0)       // right of the crop
        let edge = g.mapToSource(ones, outside: .edge).scalars
        #expect(edge.allSatisfy { $0 == 1 })
        // A horizontal ramp in input space maps to a ramp in the photo (monotone inside the crop).
        let ramp = Tensor(shape: [224, 224], scalars: (0..<(224 * 224)).map { Float($0 % 224) })
        let rb = g.mapToSource(ramp).scalars
        let row = Array(rb[(150 * 400 + 70)..<(150 * 400 + 330)])
        #expect(zip(row, row.dropFirst()).allSatisfy { $0 <= $1 })
        // Input x = 100.5 (centre of column 100 in input) lies at photo x = scaleX·100.5 + offsetX.
        let px = g.scaleX * 100.5 + g.offsetX - 0.5
        let j = Int(px.rounded())
        #expect(abs(rb[150 * 400 + j] - Float(100 + (Double(j) - px) / g.scaleX)) < 1e-3)
    }

    @Test func letterboxAndStretchGeometry() {
        let photo = RGBImage(width: 200, height: 100, color: RGBColor(red: 9, green: 9, blue: 9))
        let lb = Preprocessing(resize: .letterbox(width: 64, height: 64, fill: .letterboxGray), normalization: .identity)(photo)
        #expect(lb.inputImage.width == 64 && lb.inputImage.height == 64)
        #expect(lb.inputImage[x: 0, y: 0] == .letterboxGray)         // pad band on top
        #expect(lb.inputImage[x: 32, y: 32] == RGBColor(red: 9, green: 9, blue: 9))
        #expect(lb.geometry.offsetY == -16 * lb.geometry.scaleY)
        let back = lb.geometry.mapToSource(Tensor(repeating: 2, shape: [64, 64]))
        #expect(back.shape == [100, 200] && back.scalars.allSatisfy { $0 == 2 })
        let st = Preprocessing(resize: .stretch(width: 50, height: 50), normalization: .identity)(photo)
        #expect(st.tensor.shape == [1, 3, 50, 50] && st.geometry.scaleX == 4 && st.geometry.scaleY == 2)
        let adapted = Preprocessing.imagenet.adapted(toInputWidth: 299, height: 299)
        #expect(adapted.resize == .resizeShorterSideAndCenterCrop(shorterSide: 342, cropWidth: 299, cropHeight: 299))
        #expect(Preprocessing.preset(named: "none") == .raw && Preprocessing.preset(named: "Caffe") == .caffe)
    }
}

/// Stretch and letterbox geometry, and the caffe / inception presets, against the references named
/// in Scripts/fixtures/make_imaging_fixtures.py: torchvision's `Resize((h, w))`, PIL's `ImageOps.pad`
/// and Keras' `preprocess_input(mode="caffe" / "tf")` formulas, on PIL-decoded photos.
@Suite struct PreprocessingModeTests {
    struct GeometryCase: Decodable, Sendable, CustomTestStringConvertible {
        let photo, kind, expected: String
        let width, height: Int
        var testDescription: String { "\(kind) \(photo) to \(width)x\(height)" }
    }
    struct PresetCase: Decodable, Sendable, CustomTestStringConvertible {
        let photo, preset, layout, expected: String
        var testDescription: String { "\(preset) \(photo)" }
    }
    struct Manifest: Decodable { let geometry: [GeometryCase]; let presets: [PresetCase] }

    static let manifest: Manifest? = try? JSONDecoder().decode(
        Manifest.self, from: Data(contentsOf: Fixtures.url("manifest.json")))

    @Test(arguments: manifest?.geometry ?? [])
    func stretchAndLetterboxMatchTorchvisionAndPIL(_ c: GeometryCase) throws {
        let photo = try RGBImage(contentsOf: Fixtures.url(c.photo))
        let policy: ResizePolicy = c.kind == "stretch"
            ? .stretch(width: c.width, height: c.height)
            : .letterbox(width: c.width, height: c.height, fill: .letterboxGray)
        let result = Preprocessing(resize: policy, normalization: .identity)(photo)
        let expected = try Fixtures.rgb(c.expected)
        #expect(result.inputImage.width == expected.width && result.inputImage.height == expected.height)
        let a = result.inputImage.pixels, b = expected.pixels
        let mean = Double(zip(a, b).reduce(0) { $0 + abs(Int($1.0) - Int($1.1)) }) / Double(a.count)
        // Same thresholds as the torchvision resize-and-crop test: ≤ 0.05 levels on average, ±2 at most
        // (PIL's fixed-point bilinear rounding).
        #expect(mean <= 0.05, "mean |Δ| = \(mean) levels")
        #expect(maxDifference(a, b) <= 2)
        if c.kind == "letterbox" {
            // The pad bands are exactly where PIL puts them (round-half-to-even of half the slack).
            let p = letterboxPlacement(width: photo.width, height: photo.height, boxWidth: c.width, boxHeight: c.height)
            let padRows = (0..<c.height).filter { $0 < p.padY || $0 >= p.padY + p.height }
            let padColumns = (0..<c.width).filter { $0 < p.padX || $0 >= p.padX + p.width }
            #expect(padRows.count + padColumns.count == c.width + c.height - p.width - p.height)
            for y in padRows {
                #expect(expected[x: c.width / 2, y: y] == .letterboxGray && result.inputImage[x: c.width / 2, y: y] == .letterboxGray)
            }
            for x in padColumns {
                #expect(expected[x: x, y: c.height / 2] == .letterboxGray && result.inputImage[x: x, y: c.height / 2] == .letterboxGray)
            }
        }
    }

    @Test(arguments: manifest?.presets ?? [])
    func caffeAndInceptionMatchKerasPreprocessInput(_ c: PresetCase) throws {
        let photo = try RGBImage(contentsOf: Fixtures.url(c.photo))
        var recipe = try #require(Preprocessing.preset(named: c.preset))
        recipe.layout = c.layout == "NHWC" ? .nhwc : .nchw
        let result = recipe(photo)
        let reference = try Fixtures.tensor(c.expected)
        #expect(result.tensor.shape == reference.shape)
        let a = result.tensor.scalars, b = reference.scalars
        var sum = 0.0, worst: Float = 0
        for i in 0..<min(a.count, b.count) {
            let d = abs(a[i] - b[i])
            sum += Double(d)
            worst = max(worst, d)
        }
        // The pixels differ from PIL's by ≤ 0.05 levels on average (see above); one level is 1 in
        // caffe's 0–255 units and 1/127.5 in tf's [-1, 1].
        let level: Double = c.preset == "caffe" ? 1 : 1 / 127.5
        #expect(sum / Double(a.count) <= 0.05 * level, "mean |Δ| = \(sum / Double(a.count))")
        #expect(Double(worst) <= 2 * level + 1e-5)
    }

    @Test func resizeStrategiesKeepTheInputSize() {
        let base = Preprocessing.imagenet.adapted(toInputWidth: 128, height: 160)
        #expect(base.resizing(.stretch).resize == .stretch(width: 128, height: 160))
        #expect(base.resizing(.letterbox).resize == .letterbox(width: 128, height: 160, fill: .letterboxGray))
        #expect(base.resizing(.shorterSideCrop) == base)
        #expect(Preprocessing(resize: .stretch(width: 224, height: 224), normalization: .identity).resizing(.shorterSideCrop).resize
            == .resizeShorterSideAndCenterCrop(shorterSide: 256, cropWidth: 224, cropHeight: 224))
        #expect(Preprocessing.raw.resizing(.stretch) == .raw)     // no input size: unchanged
        // PIL's ImageOps.contain/pad placement: 640×427 in 224² → 224×149, top pad round(37.5) = 38.
        #expect(letterboxPlacement(width: 640, height: 427, boxWidth: 224, boxHeight: 224) == (224, 149, 0, 38))
        #expect(letterboxPlacement(width: 200, height: 100, boxWidth: 64, boxHeight: 64) == (64, 32, 0, 16))
    }
}
