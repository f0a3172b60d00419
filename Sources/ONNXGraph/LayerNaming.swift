/// Recovers PyTorch module paths from exported node names, so that users can name a layer the
/// way they would in Python (`"layer4.2"`, `"features.7"`, `"encoder.layers.encoder_layer_11.ln_1"`).
///
/// Two exporter conventions are understood (see `shared/TOOLCHAIN.md`):
/// - TorchScript exporter: node names are scopes, `/layer4/layer4.2/conv2/Conv`. A segment with
///   dots qualifies itself relative to its parent (`layer4` → `layer4.2`; `features.3/conv` →
///   `conv.0` → `conv.0.0` gives `features.3.conv.0.0`).
/// - Dynamo exporter: the node's metadata `pkg.torch.onnx.name_scopes` lists the full module paths,
///   `['', 'layer4', 'layer4.2', 'layer4.2.relu', 'relu_48']`; the last entry is the node itself.
///
/// A module's output is the first output of the **last** node inside its scope (in graph order).
enum LayerNaming {
    /// The module path of a node, or `nil` when the exporter recorded none.
    static func modulePath(of node: Node) -> String? {
        if let scopes = node.metadata["pkg.torch.onnx.name_scopes"] {
            let entries = parsePythonList(scopes)
            guard entries.count >= 2 else { return nil }
            let path = entries[entries.count - 2]
            return path.isEmpty ? nil : path
        }
        guard node.name.hasPrefix("/") else { return nil }
        let segments = node.name.split(separator: "/").dropLast().map(String.init)
        guard !segments.isEmpty else { return nil }
        var path = ""
        for segment in segments {
            path = append(segment, to: path)
        }
        return path.isEmpty ? nil : path
    }

    /// Extends a module path by one TorchScript scope segment.
    static func append(_ segment: String, to path: String) -> String {
        if path.isEmpty { return segment }
        if let dot = segment.lastIndex(of: ".") {
            let qualifier = String(segment[..<dot])
            let last = String(segment[segment.index(after: dot)...])
            if path == qualifier || path.hasSuffix("." + qualifier) { return path + "." + last }
        }
        return path + "." + segment
    }

    /// Every module path and its ancestors, each mapped to the output tensor of its last node.
    static func moduleOutputs(of nodes: [Node]) -> [String: (tensor: String, nodeIndex: Int)] {
        var result: [String: (tensor: String, nodeIndex: Int)] = [:]
        for (i, node) in nodes.enumerated() {
            guard let path = modulePath(of: node), let output = node.outputs.first, !output.isEmpty else { continue }
            var prefix = ""
            for component in path.split(separator: ".") {
                prefix = prefix.isEmpty ? String(component) : prefix + "." + component
                result[prefix] = (output, i)
            }
        }
        return result
    }

    /// Parses a Python list literal of strings, e.g. `['', 'layer4', "a.b"]`.
    static func parsePythonList(_ text: String) -> [String] {
        var items: [String] = []
        var current = ""
        var quote: Character?
        for c in text {
            if let q = quote {
                if c == q {
                    items.append(current)
                    current = ""
                    quote = nil
                } else {
                    current.append(c)
                }
            } else if c == "'" || c == "\"" {
                quote = c
            }
        }
        return items
    }
}
