import ONNXGraph
import TensorCore

/// FullGrad: the input-gradient map plus, for every layer with a bias, the bias-gradient map;
/// target layers are ignored.
///
/// Srinivas & Fleuret 2019, "Full-Gradient Representation for Neural Network Visualization"
/// (NeurIPS), eq. 5 (FullGrad saliency): `S = ψ(|∇ₓy ⊙ x|) + Σ_l Σ_c ψ(|b_l ⊙ ∇_{z_l}y|)` with ψ
/// a per-channel normalisation and resize. Matches pytorch-grad-cam `fullgrad_cam.py`:
/// - `|∂y/∂x ⊙ x|` and each `|b_l,c · G_l,c|` are min-max normalised **per (image, channel)**
///   (`scale_accross_batch_and_channels`, ε 1e-7) and resized to the input (OpenCV INTER_LINEAR),
///   then summed over channels; the layer maps are **summed** (not averaged) and min-max normalised
///   once (no ReLU: every term is non-negative);
/// - the reference's layers are the PyTorch modules of type exactly `Conv2d` or `BatchNorm2d` with
///   a bias (a BatchNorm's bias being `β − μγ/√(σ²+ε)`). An ONNX export folds BatchNorm into the
///   preceding Conv, so the folded **Conv bias plays the BatchNorm bias's role** and the Conv's
///   output is the BatchNorm's output: CAMKit uses every `Conv` with a constant bias and every
///   remaining `BatchNormalization` with a rank-4 output. The two sets differ when a PyTorch Conv
///   *with* its own bias is followed by a BatchNorm (the reference then counts two layers where
///   the ONNX graph has one), or when the PyTorch convolution is a `Conv2d` subclass (the
///   reference's exact-type test skips it; CAMKit cannot know it was one).
///   In the fixtures every layer pairs up (the VGG-BN model's own Conv biases are 0, so their
///   terms vanish in the reference too), and all FullGrad cases match to ~1e-4.
/// - with `eigenSmooth`: the per-layer maps are scaled to 1/8 of the input, projected on their first
///   principal component and scaled back (as the reference).
public struct FullGrad: WholeModelCAMMethod {
    public var name: String { "FullGrad" }
    /// Creates the method.
    public init() {}

    /// The biased layers of a plan: (output tensor, bias per channel, description).
    public static func biasedLayers(of model: ModelGraph, plan: ExecutionPlan) -> [(tensor: String, bias: [Float], node: String)] {
        var result: [(String, [Float], String)] = []
        for node in model.nodes {
            guard let out = node.outputs.first, let info = plan.info(ofValue: out), info.constant == nil,
                  info.shape.count == 4 else { continue }
            switch node.opType {
            case "Conv":
                guard node.inputs.count > 2, !node.inputs[2].isEmpty,
                      let b = plan.info(ofValue: node.inputs[2])?.constant else { continue }
                result.append((out, b.scalars, node.name))
            case "BatchNormalization":
                guard node.inputs.count >= 5,
                      let scale = plan.info(ofValue: node.inputs[1])?.constant?.scalars,
                      let beta = plan.info(ofValue: node.inputs[2])?.constant?.scalars,
                      let mean = plan.info(ofValue: node.inputs[3])?.constant?.scalars,
                      let variance = plan.info(ofValue: node.inputs[4])?.constant?.scalars else { continue }
                var eps: Float = 1e-5
                if case .float(let e)? = node.attributes["epsilon"] { eps = e }
                let bias = (0..<beta.count).map { c in beta[c] - mean[c] * scale[c] / (variance[c] + eps).squareRoot() }
                result.append((out, bias, node.name))
            default:
                continue
            }
        }
        return result
    }

    public func map(probe: ModelProbe, eigenSmooth: Bool) throws -> (map: Tensor, layers: [ExplainedLayer]) {
        let x = probe.input
        let nchw = probe.inputLayout == .nchw
        let (height, width) = nchw ? (x.shape[2], x.shape[3]) : (x.shape[1], x.shape[2])
        let layers = FullGrad.biasedLayers(of: probe.model, plan: probe.plan)
        let inputName = probe.model.inputs[0].name
        let (gradients, _, _) = try probe.gradients(withRespectTo: [inputName] + layers.map(\.tensor))

        // |dy/dx ⊙ x|, per (image, channel) normalised; channels first.
        var gx = gradients[inputName]!
        gx.withUnsafeMutableBufferPointer { g in
            x.withUnsafeBufferPointer { xv in for i in 0..<g.count { g[i] = abs(g[i] * xv[i]) } }
        }
        if !nchw { gx = gx.transposed(permutation: [0, 3, 1, 2]) }
        var maps: [Tensor] = [CAMPostProcessing.scaledPerChannel(gx, height: height, width: width)]
        var used: [ExplainedLayer] = []
        for layer in layers {
            var g = gradients[layer.tensor]!
            let (k, hw) = (g.shape[1], g.shape[2] * g.shape[3])
            g.withUnsafeMutableBufferPointer { p in
                for i in 0..<p.count { p[i] = abs(layer.bias[(i / hw) % k] * p[i]) }
            }
            maps.append(CAMPostProcessing.scaledPerChannel(g, height: height, width: width))
            used.append(ExplainedLayer(name: layer.node, tensor: layer.tensor, shape: g.shape, reshape: .identity))
        }
        // Channel sums per layer: (B, L, H, W).
        let b = x.shape[0]
        let perLayer = maps.map { m -> Tensor in
            CAMPostProcessing.channelSum(m).reshaped(to: [b, 1, height, width])
        }
        let stacked = concatenated(perLayer, alongAxis: 1)
        if eigenSmooth {
            let small = CAMPostProcessing.scaledPerChannel(stacked, height: max(height / 8, 1), width: max(width / 8, 1))
            let projected = EigenDecomposition.firstComponentProjection(small)
            let p = projected.reshaped(to: [b, 1, projected.shape[1], projected.shape[2]])
            return (CAMPostProcessing.scaledPerChannel(p, height: height, width: width).reshaped(to: [b, height, width]), used)
        }
        return (CAMPostProcessing.channelSum(stacked), used)
    }
}
