import TensorCore

// Conv — https://onnx.ai/onnx/operators/onnx__Conv.html
// Opsets 1, 11 (CAMKit: 11–21; the operator did not change in between). Inputs X [N, C, spatial...],
// W [M, C/group, k...], optional B [M]; attributes auto_pad, dilations, group, kernel_shape, pads,
// strides. CAMKit supports 1-D (computed as 2-D with H = 1) and 2-D convolutions, float32.
// `auto_pad` SAME_UPPER / SAME_LOWER / VALID is resolved here into explicit pads.

/// ONNX `Conv`.
struct ConvOperator: DifferentiableOperator {
    let window: WindowAttributes
    let group: Int

    init(node: Node, opset: Int) throws {
        window = try WindowAttributes(node: node, kernelRequired: false)
        group = try node.int("group", default: 1)
        guard group >= 1 else { throw OperatorError("group must be at least 1, got \(group)") }
    }

    /// The resolved window and output shape for input and filter shapes.
    func geometry(input: [Int], filter: [Int]) throws -> (WindowAttributes.Window, [Int]) {
        guard filter.count == input.count else {
            throw OperatorError("W has shape \(filter), expected rank \(input.count) like X \(input)")
        }
        let c = input[1], m = filter[0]
        guard c % group == 0, m % group == 0 else {
            throw OperatorError("group \(group) must divide the input channels \(c) and the output channels \(m)")
        }
        guard filter[1] * group == c else {
            throw OperatorError("W \(filter) expects \(filter[1] * group) input channels (group \(group)), X has \(c)")
        }
        let spatial = Array(input[2...]), kernel = Array(filter[2...])
        let win = try window.resolve(spatial: spatial, kernel: kernel)
        let x4 = input.count == 3 ? [input[0], input[1], 1, input[2]] : input
        let oh = convolutionOutputSize(input: x4[2], kernel: win.kernel.0, stride: win.strides.0,
                                       dilation: win.dilations.0, padBegin: win.padding.top, padEnd: win.padding.bottom)
        let ow = convolutionOutputSize(input: x4[3], kernel: win.kernel.1, stride: win.strides.1,
                                       dilation: win.dilations.1, padBegin: win.padding.left, padEnd: win.padding.right)
        guard oh > 0 && ow > 0 else {
            throw OperatorError("the dilated kernel \(kernel) is larger than the padded input \(spatial)")
        }
        let out = input.count == 3 ? [input[0], m, ow] : [input[0], m, oh, ow]
        return (win, out)
    }

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        let x = try windowedInput(try required(inputs, 0, "X"), "X")
        let w = try required(inputs, 1, "W")
        guard w.dtype == .float32 else { throw OperatorError("W must be float32, got \(w.dtype)") }
        let (_, out) = try geometry(input: x.shape, filter: w.shape)
        if inputs.count > 2, let b = inputs[2] {
            guard b.dtype == .float32, b.shape == [w.shape[0]] else {
                throw OperatorError("B must be float32 of shape [\(w.shape[0])], got \(b.dtype) \(b.shape)")
            }
        }
        return [ValueInfo(shape: out, dtype: .float32)]
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try required(inputs, 0, "X"), w = try required(inputs, 1, "W")
        let b = inputs.count > 2 ? inputs[2] : nil
        let (win, _) = try geometry(input: x.shape, filter: w.shape)
        let y = conv2D(asImageBatch(x), filter: asImageBatch(w), bias: b, strides: win.strides,
                       padding: win.padding, dilations: win.dilations, groups: group)
        return [restoringRank(y, rank: x.rank)]
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        let x = try required(inputs, 0, "X"), w = try required(inputs, 1, "W")
        let hasBias = inputs.count > 2 && inputs[2] != nil
        guard let dy = outputGradients.first ?? nil else { return [nil, nil, nil] }
        func wants(_ i: Int) -> Bool { i < needed.count && needed[i] }
        let (win, _) = try geometry(input: x.shape, filter: w.shape)
        let grads = conv2DPullback(asImageBatch(x), filter: asImageBatch(w), outputGradient: asImageBatch(dy),
                                   strides: win.strides, padding: win.padding, dilations: win.dilations,
                                   groups: group, needInput: wants(0), needFilter: wants(1),
                                   needBias: hasBias && wants(2))
        return [grads.input.map { restoringRank($0, rank: x.rank) },
                grads.filter.map { restoringRank($0, rank: w.rank) },
                grads.bias]
    }
}
