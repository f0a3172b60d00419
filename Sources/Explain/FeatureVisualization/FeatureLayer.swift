// Shared by the feature visualisations: a user's layer name → the checked layer of a plan, and
// the per-channel min–max normalisation every tile view uses.

import ONNXGraph
import TensorCore

/// Resolves `name` (module path, node or tensor name) in `plan` and chooses its rearrangement to
/// (B, K, H, W), with the same checks as the CAM explainer (the value must depend on the input,
/// be Float32 and have a spatial layout).
/// - Throws: ``ONNXGraph/ONNXGraphError/unknownLayer(_:suggestions:)``,
///   ``ExplainError/layerNotOnPath(layer:reason:)``, ``ExplainError/noSpatialStructure(layer:shape:reason:)``.
func featureLayer(_ name: String, tensor: String, in model: ModelGraph, plan: ExecutionPlan,
                  reshape: ReshapeTransform) throws -> ExplainedLayer {
    guard let info = plan.info(ofValue: tensor) else {
        throw ExplainError.layerNotOnPath(layer: name, reason: "the model's outputs do not depend on it")
    }
    guard info.constant == nil else {
        throw ExplainError.layerNotOnPath(layer: name, reason: "its value does not depend on the input")
    }
    guard info.dtype == .float32 else {
        throw ExplainError.noSpatialStructure(layer: name, shape: info.shape, reason: "its values are \(info.dtype)")
    }
    let hasLayerNorm = model.nodes.contains { $0.opType == "LayerNormalization" }
    let applied = try reshape.resolve(shape: info.shape, layer: name, modelHasLayerNorm: hasLayerNorm)
    return ExplainedLayer(name: name, tensor: tensor, shape: info.shape, reshape: applied)
}

/// Checks that `input` is a batch with an image `image`.
/// - Throws: ``ExplainError/invalidOption(name:value:reason:)``.
func checkImageIndex(_ image: Int, of input: Tensor) throws {
    guard input.rank >= 1, image >= 0, image < input.shape[0] else {
        throw ExplainError.invalidOption(name: "image index", value: "\(image)",
                                         reason: "the input batch holds \(input.rank >= 1 ? input.shape[0] : 0) images; "
                                             + "choose one in 0..<\(input.rank >= 1 ? input.shape[0] : 0)")
    }
}

/// Min–max normalises `count` values at `source` into `destination`:
/// `(x − min) / (max − min)` in Float32 (NumPy's `(a - a.min()) / (a.max() - a.min())` on a
/// float32 array, operation for operation); a flat block (max == min) becomes zeros.
func minMaxNormalize(_ source: UnsafePointer<Float>, count: Int, into destination: UnsafeMutablePointer<Float>) {
    guard count > 0 else { return }
    var lo = source[0], hi = source[0]
    for i in 1..<count {
        lo = min(lo, source[i])
        hi = max(hi, source[i])
    }
    let range = hi - lo
    guard range > 0 else {
        destination.update(repeating: 0, count: count)
        return
    }
    for i in 0..<count { destination[i] = (source[i] - lo) / range }
}

/// `t` reshaped to (blocks, n) and min–max normalised per row (see ``minMaxNormalize(_:count:into:)``).
func minMaxNormalizedBlocks(_ t: Tensor, blockSize n: Int) -> Tensor {
    var out = Tensor(uninitializedShape: t.shape)
    t.withUnsafeBufferPointer { src in
        out.withUnsafeMutableBufferPointer { dst in
            guard let s = src.baseAddress, let d = dst.baseAddress, n > 0 else { return }
            for b in 0..<(src.count / n) { minMaxNormalize(s + b * n, count: n, into: d + b * n) }
        }
    }
    return out
}
