import ONNXGraph
import TensorCore

/// The target layer CAMKit explains when none is named, found from the graph's structure.
///
/// Rules, in order (MMPretrain `vis_cam.py` picks the last normalisation layer of a CNN backbone,
/// which after ONNX export — BatchNorm folded into Conv — is the map that feeds global pooling):
/// 1. **CNNs**: the input of the last global pooling node (`GlobalAveragePool`, `GlobalMaxPool`,
///    `ReduceMean` over the two spatial axes, `AveragePool` whose kernel is the whole map). The
///    walk goes back through a `Transpose` to NCHW and, for a channels-last model, the final
///    `LayerNormalization` too: a **Swin** model gives its last stage output (channels-last). If
///    the map found is 1×1, the walk continues back to the last map larger than 1×1.
/// 2. **ViT-like** models (no global pooling, rank-3 `LayerNormalization` outputs): the first norm
///    of the last block, i.e. the third `LayerNormalization` from the end (last block's `ln_1`,
///    its `ln_2`, the final norm) — MMPretrain's `norm_layers[-3]`, because the class token of
///    the last block does not depend on the other tokens' last-layer values.
/// 3. Otherwise (a CNN without global pooling, e.g. VGG's flatten head): the last rank-4 map with
///    height and width > 1.
public struct DefaultTargetLayer: Sendable, Equatable {
    /// The ONNX tensor name.
    public var tensor: String
    /// The layer's module path when the exporter recorded one, else the tensor name.
    public var name: String
    /// Which rule chose it, in words.
    public var rule: String
    /// The reshape transform the rule implies (`.automatic` for NCHW maps).
    public var reshape: ReshapeTransform

    /// Finds the default target layer of `model` for the input shapes of `plan`.
    /// - Throws: ``ExplainError/noDefaultTargetLayer(reason:)``.
    public static func find(in model: ModelGraph, plan: ExecutionPlan) throws -> DefaultTargetLayer {
        let nodes = model.nodes
        var producer: [String: Int] = [:]
        for (i, n) in nodes.enumerated() { for o in n.outputs where !o.isEmpty { producer[o] = i } }
        func computed(_ name: String) -> ValueInfo? {
            guard let info = plan.info(ofValue: name), info.constant == nil else { return nil }
            return info
        }
        func shape(_ name: String) -> [Int]? { computed(name)?.shape }

        // Rule 1: global pooling.
        if let (poolIndex, channelsLastPool) = nodes.indices.reversed().lazy.compactMap({ i -> (Int, Bool)? in
            guard let kind = globalPoolKind(nodes[i], plan: plan) else { return nil }
            return (i, kind)
        }).first {
            var t = nodes[poolIndex].inputs[0]
            var channelsLast = channelsLastPool
            var passedNorm = false
            for _ in 0..<8 {
                guard let p = producer[t] else { break }
                let node = nodes[p]
                if node.opType == "Transpose", case .ints(let perm)? = node.attributes["perm"], perm == [0, 3, 1, 2] {
                    t = node.inputs[0]
                    channelsLast = true
                    continue
                }
                if channelsLast && !passedNorm && node.opType == "LayerNormalization" {
                    t = node.inputs[0]
                    passedNorm = true
                    continue
                }
                break
            }
            // Walk back past 1×1 maps.
            func spatial(_ s: [Int]) -> (Int, Int)? {
                guard s.count == 4 else { return nil }
                return channelsLast ? (s[1], s[2]) : (s[2], s[3])
            }
            var steps = 0
            while let s = shape(t), let (h, w) = spatial(s), h * w <= 1, steps < 64, let p = producer[t] {
                guard let next = nodes[p].inputs.first(where: { !$0.isEmpty && computed($0) != nil }) else { break }
                t = next
                steps += 1
            }
            if let s = shape(t), let (h, w) = spatial(s), h * w > 1 {
                return DefaultTargetLayer(
                    tensor: t, name: displayName(of: t, model: model, plan: plan),
                    rule: channelsLast ? "last stage output before the final norm and global pooling (channels-last)"
                                       : "the feature map that feeds global pooling",
                    reshape: channelsLast ? .channelsLast : .automatic)
            }
        }

        // Rule 2: ViT-like.
        let norms = nodes.filter { $0.opType == "LayerNormalization" && (shape($0.outputs[0])?.count ?? 0) == 3 }
        if !norms.isEmpty {
            let chosen = norms[max(0, norms.count - 3)].outputs[0]
            return DefaultTargetLayer(tensor: chosen, name: displayName(of: chosen, model: model, plan: plan),
                                      rule: "first LayerNorm of the last transformer block (MMPretrain norm_layers[-3])",
                                      reshape: .vit(extraTokens: nil))
        }

        // Rule 3: the last spatial map.
        for node in nodes.reversed() {
            guard let out = node.outputs.first, let s = shape(out), s.count == 4, s[2] > 1, s[3] > 1 else { continue }
            return DefaultTargetLayer(tensor: out, name: displayName(of: out, model: model, plan: plan),
                                      rule: "the last 4-D feature map (no global pooling found)", reshape: .automatic)
        }
        throw ExplainError.noDefaultTargetLayer(
            reason: "the model has no global pooling, no transformer LayerNorm and no 4-D feature map")
    }

    /// Whether `node` pools a whole rank-4 map: `false` for NCHW pooling, `true` for channels-last
    /// (`ReduceMean` over axes 1 and 2), `nil` when it is not a global pooling.
    static func globalPoolKind(_ node: Node, plan: ExecutionPlan) -> Bool? {
        guard let input = node.inputs.first, let info = plan.info(ofValue: input), info.constant == nil,
              info.shape.count == 4 else { return nil }
        let s = info.shape
        switch node.opType {
        case "GlobalAveragePool", "GlobalMaxPool":
            return false
        case "AveragePool":
            guard case .ints(let k)? = node.attributes["kernel_shape"], k == [s[2], s[3]] else { return nil }
            return false
        case "ReduceMean":
            var axes: [Int]?
            if case .ints(let a)? = node.attributes["axes"] { axes = a }
            if axes == nil, node.inputs.count > 1, !node.inputs[1].isEmpty,
               let c = plan.info(ofValue: node.inputs[1])?.constant {
                axes = c.int64s.map { Int($0) }
            }
            guard let a = axes else { return nil }
            let normalised = Set(a.map { $0 < 0 ? $0 + 4 : $0 })
            if normalised == [2, 3] { return false }
            if normalised == [1, 2] { return true }
            return nil
        default:
            return nil
        }
    }

    /// The shortest module path whose output is `tensor`, else the tensor name.
    static func displayName(of tensor: String, model: ModelGraph, plan: ExecutionPlan) -> String {
        guard let layers = try? model.layers(forInputShapes: plan.inputShapes) else { return tensor }
        return layers.filter { $0.tensor == tensor }.map(\.path).min { $0.count < $1.count } ?? tensor
    }
}
