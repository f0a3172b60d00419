import TensorCore

// AveragePool — https://onnx.ai/onnx/operators/onnx__AveragePool.html
// Opsets 10, 11, 19 (dilations) (CAMKit: 11–21). Attributes auto_pad, ceil_mode, count_include_pad,
// dilations, kernel_shape, pads, strides. 1-D and 2-D windows, float32.

/// ONNX `AveragePool`.
struct AveragePoolOperator: DifferentiableOperator {
    let window: WindowAttributes
    let ceilMode: Bool
    let countIncludePad: Bool

    init(node: Node, opset: Int) throws {
        window = try WindowAttributes(node: node, kernelRequired: true)
        ceilMode = try node.int("ceil_mode", default: 0) != 0
        countIncludePad = try node.int("count_include_pad", default: 0) != 0
    }

    private func geometry(_ shape: [Int]) throws -> (WindowAttributes.Window, Bool, [Int]) {
        let win = try window.resolve(spatial: Array(shape[2...]), kernel: window.kernelShape ?? [])
        let ceil = window.autoPad == .notSet ? ceilMode : false
        let x4 = shape.count == 3 ? [shape[0], shape[1], 1, shape[2]] : shape
        let oh = poolingOutputSize(input: x4[2], kernel: win.kernel.0, stride: win.strides.0, dilation: win.dilations.0,
                                   padBegin: win.padding.top, padEnd: win.padding.bottom, ceilMode: ceil)
        let ow = poolingOutputSize(input: x4[3], kernel: win.kernel.1, stride: win.strides.1, dilation: win.dilations.1,
                                   padBegin: win.padding.left, padEnd: win.padding.right, ceilMode: ceil)
        guard oh > 0 && ow > 0 else {
            throw OperatorError("the pooling window \(window.kernelShape ?? []) is larger than the padded input \(Array(shape[2...]))")
        }
        return (win, ceil, shape.count == 3 ? [shape[0], shape[1], ow] : [shape[0], shape[1], oh, ow])
    }

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        let x = try windowedInput(try required(inputs, 0, "X"), "X")
        return [ValueInfo(shape: try geometry(x.shape).2, dtype: .float32)]
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try required(inputs, 0, "X")
        let (win, ceil, _) = try geometry(x.shape)
        let y = avgPool2D(asImageBatch(x), kernelSize: win.kernel, strides: win.strides, padding: win.padding,
                          dilations: win.dilations, ceilMode: ceil, countIncludePad: countIncludePad)
        return [restoringRank(y, rank: x.rank)]
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        guard needed.first == true, let dy = outputGradients.first ?? nil else { return [nil] }
        let x = try required(inputs, 0, "X")
        let (win, ceil, _) = try geometry(x.shape)
        let x4 = asImageBatch(x)
        let dx = avgPool2DPullback(inputShape: x4.shape, outputGradient: asImageBatch(dy), kernelSize: win.kernel,
                                   strides: win.strides, padding: win.padding, dilations: win.dilations,
                                   ceilMode: ceil, countIncludePad: countIncludePad)
        return [restoringRank(dx, rank: x.rank)]
    }
}
