// Loading the fixtures written by Scripts/fixtures/make_imaging_fixtures.py (paths relative to
// this file, not SwiftPM resources).

import Foundation
import TensorCore
@testable import Imaging

enum Fixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func url(_ name: String) -> URL { directory.appendingPathComponent(name) }

    static func bytes(_ name: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: url(name))) }

    static func floats(_ name: String) throws -> [Float] {
        let b = try bytes(name)
        return b.withUnsafeBytes { raw in (0..<(b.count / 4)).map { raw.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) } }
    }

    struct DecodeCase: Decodable { let file, expected, kind: String; let width, height, tolerance: Int }
    struct ErrorCase: Decodable { let file, kind: String }
    struct ResizeCase: Decodable { let file: String; let width, height: Int }
    struct Photo: Decodable { let file, crop: String; let width, height: Int; let tensor: String? }
    struct Array: Decodable { let shape: [Int]; let dtype: String }
    struct Manifest: Decodable {
        let decode: [DecodeCase]
        let errors: [ErrorCase]
        let pil_resize: [ResizeCase]
        let photos: [Photo]
        let arrays: [String: Array]
    }

    static let manifest: Manifest = {
        do {
            return try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: url("manifest.json")))
        } catch {
            preconditionFailure("cannot read Fixtures/manifest.json (\(error)); run Scripts/fixtures/make_imaging_fixtures.py")
        }
    }()

    static func tensor(_ name: String) throws -> Tensor {
        let shape = manifest.arrays[name]?.shape ?? []
        return Tensor(shape: shape, scalars: try floats(name))
    }

    static func rgb(_ name: String) throws -> RGBImage {
        let shape = manifest.arrays[name]?.shape ?? []
        return RGBImage(width: shape[1], height: shape[0], pixels: try bytes(name))
    }
}

/// Largest absolute difference between two byte arrays of equal length (Int.max if lengths differ).
func maxDifference(_ a: [UInt8], _ b: [UInt8]) -> Int {
    guard a.count == b.count else { return Int.max }
    var m = 0
    for i in 0..<a.count { m = max(m, abs(Int(a[i]) - Int(b[i]))) }
    return m
}
