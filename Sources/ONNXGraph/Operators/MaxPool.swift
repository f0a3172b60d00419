import TensorCore

// MaxPool — https://onnx.ai/onnx/operators/onnx__MaxPool.html
// Opsets 8, 10 (ceil_mode, dilations), 11, 12 (CAMKit: 11–21). Attributes auto_pad, ceil_mode,
// dilations, kernel_shape, pads, storage_order, strides. 1-D and 2-D windows, float32.
// The optional second output `Indices` (int64, index into the flattened input, `storage_order`
// 0 = row-major, 1 = column-major within a plane; first maximum on ties) is computed when the node
// names it; it has no gradient.
// Gradient: to the first maximal element of each window (see `maxPool2DPullback`).

/// ONNX `MaxPool`.
struct MaxPoolOperator: DifferentiableOperator {
    let window: WindowAttributes
    let ceilMode: Bool
    let wantsIndices: Bool
    let columnMajor: Bool

    init(node: Node, opset: Int) throws {
        window = try WindowAttributes(node: node, kernelRequired: true)
        ceilMode = try node.int("ceil_mode", default: 0) != 0
        wantsIndices = node.outputs.count > 1 && !node.outputs[1].isEmpty
        let order = try node.int("storage_order", default: 0)
        guard order == 0 || order == 1 else { throw OperatorError("storage_order must be 0 or 1, got \(order)") }
        columnMajor = order == 1
    }

    /// The resolved window, the effective ceil mode and the output shape for an input shape.
    func geometry(_ shape: [Int]) throws -> (WindowAttributes.Window, Bool, [Int]) {
        let win = try window.resolve(spatial: Array(shape[2...]), kernel: window.kernelShape ?? [])
        // With SAME padding the output size is ceil(input / stride) whatever ceil_mode says.
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
        let shape = try geometry(x.shape).2
        let y = ValueInfo(shape: shape, dtype: .float32)
        return wantsIndices ? [y, ValueInfo(shape: shape, dtype: .int64)] : [y]
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try required(inputs, 0, "X")
        let (win, ceil, _) = try geometry(x.shape)
        let y = maxPool2D(asImageBatch(x), kernelSize: win.kernel, strides: win.strides, padding: win.padding,
                          dilations: win.dilations, ceilMode: ceil)
        guard wantsIndices else { return [restoringRank(y, rank: x.rank)] }
        let indices = maxPool2DIndices(asImageBatch(x), kernelSize: win.kernel, strides: win.strides,
                                       padding: win.padding, dilations: win.dilations, ceilMode: ceil,
                                       columnMajor: columnMajor)
        let outShape = x.rank == 3 ? [indices.shape[0], indices.shape[1], indices.shape[3]] : indices.shape
        return [restoringRank(y, rank: x.rank), indices.reshaped(to: outShape)]
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        guard needed.first == true, let dy = outputGradients.first ?? nil else { return [nil] }
        let x = try required(inputs, 0, "X")
        let (win, ceil, _) = try geometry(x.shape)
        // The Indices output is integer: it contributes no gradient.
        let dx = maxPool2DPullback(asImageBatch(x), outputGradient: asImageBatch(dy), kernelSize: win.kernel,
                                   strides: win.strides, padding: win.padding, dilations: win.dilations, ceilMode: ceil)
        return [restoringRank(dx, rank: x.rank)]
    }
}
