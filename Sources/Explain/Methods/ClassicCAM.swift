import ONNXGraph
import TensorCore

/// Classic CAM: for a network ending in global average pooling → (flatten) → fully connected
/// layer, the target class's row of the fully connected weights weighs the pooled feature map.
/// No gradient and no extra forward pass.
///
/// Zhou et al. 2016, "Learning Deep Features for Discriminative Localization" (CVPR), eq. 2:
/// `M_c(x, y) = Σ_k w_k^c f_k(x, y)`. pytorch-grad-cam has no CAM class; the numbers match its
/// `BaseCAM` post-processing applied to these weights (the fixtures' `cam_CAM.npy`, written by
/// `Scripts/fixtures/make_cam_fixtures.py`), and equal GradCAM's at the same layer up to rounding
/// (there `∂y_c/∂A_k = w_k^c / (h·w)` everywhere). TorchCAM's `CAM` returns the low-resolution map
/// without the ReLU.
///
/// The head is found by walking the graph from the target layer: it must feed a
/// `GlobalAveragePool` (or `ReduceMean` over H, W), then optionally `Flatten`/`Reshape`/`Squeeze`,
/// then a `Gemm` or `MatMul` whose weight is a constant. With no target layer given, the default
/// layer (the map feeding global pooling) is used. The FC bias is not used.
public struct ClassicCAM: GradientFreeCAMMethod {
    public var name: String { "CAM" }
    /// Creates the method.
    public init() {}

    /// The fully connected weights (classes × K) that the pooled `layer` feeds.
    /// - Throws: ``ExplainError/noClassifierHead(layer:reason:)``.
    public static func classifierWeights(model: ModelGraph, layer: String, tensor: String, inputShape: [Int]) throws -> (weights: [Float], classes: Int, channels: Int) {
        let plan = try model.plan(forInputShapes: [inputShape])
        let nodes = model.nodes
        func consumers(_ t: String) -> [Node] { nodes.filter { $0.inputs.contains(t) && plan.info(ofValue: $0.outputs.first ?? "") != nil } }
        guard let pool = consumers(tensor).first(where: { DefaultTargetLayer.globalPoolKind($0, plan: plan) == false && $0.opType != "GlobalMaxPool" }) else {
            throw ExplainError.noClassifierHead(layer: layer, reason: "it does not feed a global average pooling")
        }
        var t = pool.outputs[0]
        for _ in 0..<6 {
            let next = consumers(t)
            guard next.count == 1 else {
                throw ExplainError.noClassifierHead(layer: layer, reason: "the pooled features feed \(next.count) nodes")
            }
            let node = next[0]
            switch node.opType {
            case "Flatten", "Reshape", "Squeeze", "Identity":
                t = node.outputs[0]
            case "Gemm":
                guard node.inputs[0] == t, let w = plan.info(ofValue: node.inputs[1])?.constant, w.rank == 2 else {
                    throw ExplainError.noClassifierHead(layer: layer, reason: "the Gemm '\(node.name)' has no constant weight")
                }
                var transA = 0, transB = 0
                var alpha: Float = 1
                if case .int(let v)? = node.attributes["transA"] { transA = v }
                if case .int(let v)? = node.attributes["transB"] { transB = v }
                if case .float(let v)? = node.attributes["alpha"] { alpha = v }
                guard transA == 0 else {
                    throw ExplainError.noClassifierHead(layer: layer, reason: "the Gemm '\(node.name)' transposes its input")
                }
                return rows(w, transposed: transB == 1, alpha: alpha)
            case "MatMul":
                guard node.inputs[0] == t, let w = plan.info(ofValue: node.inputs[1])?.constant, w.rank == 2 else {
                    throw ExplainError.noClassifierHead(layer: layer, reason: "the MatMul '\(node.name)' has no constant weight")
                }
                return rows(w, transposed: false, alpha: 1)
            default:
                throw ExplainError.noClassifierHead(layer: layer, reason: "the pooled features go through \(node.opType) '\(node.name)'")
            }
        }
        throw ExplainError.noClassifierHead(layer: layer, reason: "no fully connected layer follows the pooling")
    }

    /// (classes × K) rows from a (K × classes) weight, or from (classes × K) when `transposed`.
    static func rows(_ w: Tensor, transposed: Bool, alpha: Float) -> (weights: [Float], classes: Int, channels: Int) {
        let v = w.scalars
        if transposed { return (v.map { $0 * alpha }, w.shape[0], w.shape[1]) }
        let (k, n) = (w.shape[0], w.shape[1])
        var out = [Float](repeating: 0, count: k * n)
        for i in 0..<k { for c in 0..<n { out[c * k + i] = alpha * v[i * n + c] } }
        return (out, n, k)
    }

    public func contribution(activations: Tensor, probe: LayerProbe) throws -> LayerContribution {
        guard probe.reshape == .identity else {
            throw ExplainError.noClassifierHead(layer: probe.layer.name, reason: "its output is not an NCHW feature map")
        }
        let (w, classes, channels) = try ClassicCAM.classifierWeights(
            model: probe.model, layer: probe.layer.name, tensor: probe.layer.tensor, inputShape: probe.input.shape)
        let (b, k) = (activations.shape[0], activations.shape[1])
        guard channels == k else {
            throw ExplainError.noClassifierHead(layer: probe.layer.name,
                                                reason: "the fully connected layer takes \(channels) features, the layer has \(k) channels")
        }
        var weights = [Float](repeating: 0, count: b * k)
        for image in 0..<b {
            guard let c = probe.targetClasses[image] else {
                throw ExplainError.unsupportedTarget(method: name, target: "a custom score")
            }
            guard c < classes else { throw ExplainError.classOutOfRange(classIndex: c, classCount: classes) }
            for i in 0..<k { weights[image * k + i] = w[c * k + i] }
        }
        return .channelWeights(Tensor(shape: [b, k], scalars: weights))
    }
}
