import Foundation
import TensorCore

/// Where the committed fixtures live (made by `Scripts/fixtures/make_onnx_fixtures.py`).
let fixturesDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

/// One case of `Fixtures/index.json`.
struct FixtureCase: Sendable, CustomStringConvertible {
    let name: String
    let kind: String
    var directory: URL { fixturesDirectory.appendingPathComponent(name) }
    var description: String { name }

    /// All cases, or an empty list when the fixtures are absent.
    static func all(kind: String? = nil) -> [FixtureCase] {
        guard let data = try? Data(contentsOf: fixturesDirectory.appendingPathComponent("index.json")),
              let json = try? JSONSerialization.jsonObject(with: data)
        else { return [] }
        let entries: [[String: Any]]
        if let list = json as? [[String: Any]] {
            entries = list
        } else if let dict = json as? [String: Any], let list = dict["cases"] as? [[String: Any]] {
            entries = list
        } else {
            return []
        }
        return entries.compactMap { e in
            guard let name = e["name"] as? String else { return nil }
            let k = e["kind"] as? String ?? "op"
            return kind == nil || kind == k ? FixtureCase(name: name, kind: k) : nil
        }.sorted { $0.name < $1.name }
    }

    /// The `.npy` files named `<prefix>_<i>.npy`, in order.
    func tensors(_ prefix: String) throws -> [Tensor] {
        var result: [Tensor] = []
        var i = 0
        while true {
            let url = directory.appendingPathComponent("\(prefix)_\(i).npy")
            guard FileManager.default.fileExists(atPath: url.path) else { return result }
            result.append(try NPY.read(contentsOf: url))
            i += 1
        }
    }
}
