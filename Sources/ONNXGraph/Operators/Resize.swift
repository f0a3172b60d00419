import TensorCore

// Resize — https://onnx.ai/onnx/operators/onnx__Resize.html
// Opsets 10 (inputs X, scales), 11 (X, roi, scales, sizes; coordinate_transformation_mode,
// nearest_mode), 13, 18 (axes, keep_aspect_ratio_policy, antialias), 19 (half_pixel_symmetric)
// (CAMKit: 11–21). Modes nearest (any dtype) and linear (float32, every resized axis; PyTorch's
// bilinear exports resize the last two). Supported coordinate modes: half_pixel,
// pytorch_half_pixel, align_corners, asymmetric, half_pixel_symmetric; antialias = 1 for linear
// (ONNX Runtime's Pillow-style filter). Not supported: cubic, tf_crop_and_resize (the roi input).
// scales/sizes must be constant; exactly one is given.

/// ONNX `Resize`.
struct ResizeOperator: DifferentiableOperator {
    /// Nearest (with rounding) or linear.
    let mode: ResizeMode
    /// The coordinate transformation.
    let transformation: ResizeCoordinateTransformation
    /// The axes scales/sizes refer to (opset 18), or `nil` for all.
    let axes: [Int]?
    /// `stretch`, `not_larger` or `not_smaller` (opset 18).
    let keepAspectRatioPolicy: String
    /// Whether linear resizing widens its filter when downscaling (opset 18 `antialias`).
    let antialias: Bool
    /// Whether inputs follow the opset-11 layout (X, roi, scales, sizes) rather than (X, scales).
    let hasROIInput: Bool

    init(node: Node, opset: Int) throws {
        let modeName = try node.string("mode", default: "nearest")
        switch modeName {
        case "nearest":
            let rounding = try node.string("nearest_mode", default: "round_prefer_floor")
            guard let r = NearestRounding(rawValue: rounding) else {
                throw OperatorError("nearest_mode '\(rounding)' is not supported")
            }
            mode = .nearest(r)
        case "linear":
            mode = .linear
        default:
            throw OperatorError("Resize mode '\(modeName)' is not supported (supported: nearest, linear)")
        }
        let ctName = try node.string("coordinate_transformation_mode", default: opset >= 11 ? "half_pixel" : "asymmetric")
        guard let ct = ResizeCoordinateTransformation(rawValue: ctName) else {
            throw OperatorError("coordinate_transformation_mode '\(ctName)' is not supported (supported: "
                                + ResizeCoordinateTransformation.allCases.map(\.rawValue).joined(separator: ", ") + ")")
        }
        transformation = ct
        antialias = try node.int("antialias", default: 0) != 0
        axes = try node.ints("axes")
        keepAspectRatioPolicy = try node.string("keep_aspect_ratio_policy", default: "stretch")
        guard ["stretch", "not_larger", "not_smaller"].contains(keepAspectRatioPolicy) else {
            throw OperatorError("keep_aspect_ratio_policy '\(keepAspectRatioPolicy)' is not valid")
        }
        hasROIInput = opset >= 11
    }

    /// The output shape and the per-dim scales for the coordinate transformation.
    private func plan(shape: [Int], dtype: DType, scales: Tensor?, sizes: Tensor?) throws -> (shape: [Int], scales: [Float]) {
        let rank = shape.count
        if mode == .linear && dtype != .float32 {
            throw OperatorError("linear Resize of a \(dtype) tensor is not supported")
        }
        let axes = try ShapingSupport.axes(self.axes ?? Array(0..<rank), rank: rank)
        var outShape = shape
        var outScales = [Float](repeating: 1, count: rank)
        if let s = scales, ShapingSupport.isPresent(s) {
            guard s.dtype == .float32 else { throw OperatorError("scales must be float32, got \(s.dtype)") }
            let values = s.scalars
            guard values.count == axes.count else {
                throw OperatorError("scales \(values) must have \(axes.count) entries")
            }
            guard values.allSatisfy({ $0 > 0 && $0.isFinite }) else { throw OperatorError("scales \(values) must be positive") }
            for (i, a) in axes.enumerated() {
                outScales[a] = values[i]
                outShape[a] = Int((values[i] * Float(shape[a])).rounded(.down))
            }
        } else if let z = sizes, ShapingSupport.isPresent(z) {
            let values = try ShapingSupport.ints(z, "sizes")
            guard values.count == axes.count else {
                throw OperatorError("sizes \(values) must have \(axes.count) entries")
            }
            guard values.allSatisfy({ $0 > 0 }) else { throw OperatorError("sizes \(values) must be positive") }
            guard axes.allSatisfy({ shape[$0] > 0 }) else { throw OperatorError("cannot resize the empty input \(shape)") }
            if keepAspectRatioPolicy == "stretch" {
                for (i, a) in axes.enumerated() {
                    outShape[a] = values[i]
                    outScales[a] = Float(values[i]) / Float(shape[a])
                }
            } else {
                let ratios = axes.enumerated().map { Float(values[$0.offset]) / Float(shape[$0.element]) }
                let scale = keepAspectRatioPolicy == "not_larger" ? ratios.min() ?? 1 : ratios.max() ?? 1
                for a in axes {
                    outScales[a] = scale
                    outShape[a] = Int((scale * Float(shape[a])).rounded(.toNearestOrAwayFromZero))
                }
            }
        } else {
            throw OperatorError("Resize needs either scales or sizes")
        }
        for d in 0..<rank where shape[d] == 0 && outShape[d] != 0 {
            throw OperatorError("cannot resize the empty dim \(d) of \(shape) to \(outShape[d])")
        }
        return (outShape, outScales)
    }

    private var scalesIndex: Int { hasROIInput ? 2 : 1 }

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        let x = try required(inputs, 0, "X")
        if hasROIInput, ShapingSupport.isPresent(ShapingSupport.optional(inputs, 1)) {
            // roi only matters for tf_crop_and_resize, which is rejected at init.
        }
        let scales = ShapingSupport.isPresent(ShapingSupport.optional(inputs, scalesIndex))
            ? try constant(inputs, scalesIndex, "scales") : nil
        let sizes = hasROIInput && ShapingSupport.isPresent(ShapingSupport.optional(inputs, 3))
            ? try constant(inputs, 3, "sizes") : nil
        if scales != nil && sizes != nil { throw OperatorError("Resize takes scales or sizes, not both") }
        let p = try plan(shape: x.shape, dtype: x.dtype, scales: scales, sizes: sizes)
        return [ValueInfo(shape: p.shape, dtype: x.dtype)]
    }

    private func plan(_ inputs: [Tensor?], _ x: Tensor) throws -> (shape: [Int], scales: [Float]) {
        try plan(shape: x.shape, dtype: x.dtype, scales: ShapingSupport.optional(inputs, scalesIndex),
                 sizes: hasROIInput ? ShapingSupport.optional(inputs, 3) : nil)
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try required(inputs, 0, "X")
        let p = try plan(inputs, x)
        return [resized(x, toShape: p.shape, scales: p.scales, mode: mode, coordinateTransformation: transformation,
                        antialias: antialias)]
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        var result: [Tensor?] = inputs.map { _ in nil }
        guard let g = ShapingSupport.gradient(outputGradients), ShapingSupport.wants(needed, inputs, 0),
              let x = inputs[0] else { return result }
        let p = try plan(inputs, x)
        result[0] = resizePullback(g, inputShape: x.shape, scales: p.scales, mode: mode,
                                   coordinateTransformation: transformation, antialias: antialias)
        return result
    }
}
