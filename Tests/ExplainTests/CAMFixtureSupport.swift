import Explain
import Foundation
import ONNXGraph
import Synchronization
import TensorCore

/// The repository root (fixture paths in meta.json are relative to it).
let repositoryRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
/// Where `Scripts/fixtures/make_cam_fixtures.py` writes its cases.
let camFixturesDirectory = repositoryRoot.appendingPathComponent("Tests/ExplainTests/Fixtures/cam")

/// Whether the slow cases (ScoreCAM on the 224×224 EfficientNet-Lite0: 1280 forward passes) run.
let heavyTestsEnabled = ProcessInfo.processInfo.environment["CAMKIT_HEAVY_TESTS"] == "1"

/// One case of `Fixtures/cam/index.json` (pytorch-grad-cam 1.5.7 results on an ONNX fixture model).
struct CAMFixtureCase: Sendable, CustomStringConvertible {
    let name: String
    var description: String { name }
    var directory: URL { camFixturesDirectory.appendingPathComponent(name) }

    /// Every case listed in index.json (or, while the index is being written, every directory
    /// holding a meta.json).
    static func all() -> [CAMFixtureCase] {
        if let data = try? Data(contentsOf: camFixturesDirectory.appendingPathComponent("index.json")),
           let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
           let cases = json["cases"] as? [[String: Any]] {
            return cases.compactMap { $0["name"] as? String }.sorted().map(CAMFixtureCase.init(name:))
        }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: camFixturesDirectory.path)) ?? []
        return names.filter {
            FileManager.default.fileExists(atPath: camFixturesDirectory.appendingPathComponent("\($0)/meta.json").path)
        }.sorted().map(CAMFixtureCase.init(name:))
    }

    func meta() throws -> CAMFixtureMeta {
        let data = try Data(contentsOf: directory.appendingPathComponent("meta.json"))
        return try JSONDecoder().decode(CAMFixtureMeta.self, from: data)
    }
}

/// The parts of a case's meta.json the tests use.
struct CAMFixtureMeta: Decodable {
    struct Layer: Decodable {
        var module: String
        var onnxTensor: String
        var rawShape: [Int]
        var shape: [Int]
        var activations: String
        var gradients: String
    }
    struct Reshape: Decodable {
        var kind: String
        var extraTokens: Int?
    }
    struct Method: Decodable {
        var method: String
        var file: String
        var signConventionFile: String?
    }
    var name: String
    var model: String
    var input: String
    var logits: String
    var batch: Int
    var inputSize: [Int]
    var targetLayers: [Layer]
    var reshapeTransform: Reshape?
    var categories: [Int]?
    var resolvedCategories: [Int]
    var augSmooth: Bool
    var eigenSmooth: Bool
    var methods: [Method]

    var reshape: ReshapeTransform {
        switch reshapeTransform?.kind {
        case "vit"?: return .vit(extraTokens: reshapeTransform?.extraTokens)
        case "swin_nhwc"?: return .channelsLast
        default: return .automatic
        }
    }

    var targets: [CAMTarget]? { categories.map { $0.map { CAMTarget.classScore($0) } } }
}

/// Loads an `.npy` file given relative to the repository root.
func loadNPY(_ relativePath: String) throws -> Tensor {
    try NPY.read(contentsOf: repositoryRoot.appendingPathComponent(relativePath))
}

private let modelCache = Mutex<[String: ModelGraph]>([:])

/// The model at `relativePath` (loaded once per test run).
func fixtureModel(_ relativePath: String) throws -> ModelGraph {
    if let m = modelCache.withLock({ $0[relativePath] }) { return m }
    let m = try ModelGraph(contentsOf: repositoryRoot.appendingPathComponent(relativePath))
    modelCache.withLock { $0[relativePath] = m }
    return m
}

/// The method named as pytorch-grad-cam's class (the fixtures' `method`).
func camMethod(named name: String) -> (any CAMMethod)? {
    switch name {
    case "GradCAM": return GradCAM()
    case "HiResCAM": return HiResCAM()
    case "GradCAMElementWise": return GradCAMElementWise()
    case "GradCAMPlusPlus": return GradCAMPlusPlus()
    case "XGradCAM": return XGradCAM()
    case "LayerCAM": return LayerCAM()
    case "EigenCAM": return EigenCAM()
    case "EigenGradCAM": return EigenGradCAM()
    case "ScoreCAM": return ScoreCAM()
    case "AblationCAM": return AblationCAM()
    case "FullGrad": return FullGrad()
    case "CAM": return ClassicCAM()
    case "RandomCAM": return RandomCAM()
    default: return nil
    }
}

/// Pearson correlation and maximum absolute difference of two equally shaped tensors.
func compareMaps(_ a: Tensor, _ b: Tensor) -> (pearson: Double, maxAbs: Double) {
    let x = a.scalars.map(Double.init), y = b.scalars.map(Double.init)
    let n = Double(x.count)
    let mx = x.reduce(0, +) / n, my = y.reduce(0, +) / n
    var sxy = 0.0, sxx = 0.0, syy = 0.0, m = 0.0
    for i in x.indices {
        sxy += (x[i] - mx) * (y[i] - my)
        sxx += (x[i] - mx) * (x[i] - mx)
        syy += (y[i] - my) * (y[i] - my)
        m = max(m, abs(x[i] - y[i]))
    }
    let r = sxx > 0 && syy > 0 ? sxy / (sxx * syy).squareRoot() : (m == 0 ? 1 : 0)
    return (r, m)
}
