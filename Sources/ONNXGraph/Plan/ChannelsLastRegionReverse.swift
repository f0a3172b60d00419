import TensorCore

// Reverse passes through channels-last regions.
//
// A gradient pass to the input (Integrated Gradients, SmoothGrad, saliency) differentiates every
// step of the network. Run as plain NCHW steps, its forward part cannot use the channels-last
// regions of an inference pass, and every convolution's input gradient converts its operands to
// and from oneDNN's layout. Regions formed among the steps a reverse pass differentiates
// (``ExecutionPlan/gradientSteps(capturing:differentiating:targets:reverseRegions:)``) stay in NHWC in both
// directions instead:
//
// - forward, ``ChannelsLastRegionOperator/runChannelsLast(_:recording:)`` records on a
//   ``ChannelsLastTape`` the values the pullback reads — the output of every activation, from
//   which its derivative follows (`y > 0` exactly where `x > 0`; `lo < y < hi` exactly where
//   `lo < x < hi`, PyTorch's hardtanh backward) — and the argmax of every max pooling;
// - backward, ``ChannelsLastRegionOperator/pullback(tape:outputGradients:needed:reluRule:)``
//   converts the output gradients NCHW → NHWC once, walks the instructions in reverse (activation
//   masks in place; a residual sum hands its gradient to both operands; a convolution's input
//   gradient is oneDNN's backward-data primitive on NHWC, ``ChannelsLastConvolutionGradient``,
//   added straight into a gradient already there; max pooling sends each gradient to the recorded
//   maximum) and converts the input gradients back once.
//
// Only ReLU networks get such regions: a step with a `Clip` activation (ReLU6) stays a plain step.
// Input gradients of ReLU6 networks are ill-conditioned at the float32 level — pre-activations
// whose exact value is 0 come out as ±1e-8…3e-7 depending on the summation order, and each one
// on the other side of the kink moves the gradient. On the EfficientNet-Lite0 Captum fixture
// (lite0_cat967) the NHWC kernels put 3 of the 301,056 values of one layer on the other side of
// 0 from the NCHW kernels (and from PyTorch in float32 and float64), which moved the input
// gradient by 6e-3 (relative L2) where the plain steps are 1e-4 from PyTorch's float64 result.
// ReLU networks, where such ties are rare (resnet and VGG fixtures: ~1e-7 from Captum either
// way), take the faster path.
//
// In such a region a residual `Add` becomes a `sum` post-op only after a convolution without an
// activation of its own (ResNet's `conv → Add → Relu`): the pullback reads the mask from the one
// output the fused convolution keeps.

/// What a region formed among the steps a reverse pass differentiates needs for its pullback.
struct ChannelsLastRegionReverse: Sendable {
    /// Per convolution instruction: its input gradient and the activation whose derivative
    /// applies to its output gradient (the one after the residual sum when it accumulates).
    struct Convolution: Sendable {
        let gradient: ChannelsLastConvolutionGradient
        let activation: FusedActivation
    }
    /// Instruction index → the reverse of that convolution.
    let convolutions: [Int: Convolution]
    /// Per region input: its gradient NHWC → NCHW.
    let inputGradientConversions: [ChannelsLastConversion]
    /// Per region output: its gradient NCHW → NHWC.
    let outputGradientConversions: [ChannelsLastConversion]
    /// Instruction index → the value it writes that the pullback reads (an activation's output).
    let keptValue: [Int: Int]
}

/// The values and argmaxes a region's forward run recorded for its pullback.
struct ChannelsLastTape: Sendable {
    /// By region value (only the kept ones are set).
    var values: [Tensor?]
    /// By max-pooling instruction index.
    var argmax: [Int: ChannelsLastMaxPoolArgmax] = [:]
}

extension ChannelsLastRegionOperator {
    /// The region's forward run, recording what its pullback reads: the outputs (in the order of
    /// ``outputSlots``) and the tape, or `nil` if a oneDNN call failed.
    func runRecording(_ inputs: [Tensor?]) -> (outputs: [Tensor], tape: ChannelsLastTape)? {
        var tape: ChannelsLastTape? = ChannelsLastTape(values: [Tensor?](repeating: nil, count: valueCount))
        guard reverse != nil, let outputs = runChannelsLast(inputs, recording: &tape), let tape else { return nil }
        return (outputs, tape)
    }

    /// The gradients with respect to the region's inputs (NCHW, in the order of ``inputSlots``;
    /// `nil` where not `needed` or where no gradient reaches), given the gradients of its outputs
    /// (NCHW, `nil`: zero), or `nil` if a oneDNN call failed.
    func pullback(tape: ChannelsLastTape, outputGradients: [Tensor?], needed: [Bool],
                  reluRule: ReLUGradientRule) -> [Tensor?]? {
        guard let reverse else { return nil }
        var tape = tape
        // Values that depend on a needed input: only their gradients are formed.
        var dependent = [Bool](repeating: false, count: valueCount)
        for instruction in instructions {
            switch instruction {
            case .enter(_, let k, let v): dependent[v] = k < needed.count && needed[k]
            case .convolution(_, let x, let y, let r): dependent[y] = dependent[x] || r.map { dependent[$0] } ?? false
            case .add(let a, let b, let y): dependent[y] = dependent[a] || dependent[b]
            case .activation(_, let x, let y), .maxPool(_, let x, let y): dependent[y] = dependent[x]
            case .exit: break
            }
        }
        var grads = [Tensor?](repeating: nil, count: valueCount)
        var inputGradients = [Tensor?](repeating: nil, count: inputSlots.count)
        /// The gradient of `v`, removed from `grads` (so that it is the only reference).
        func take(_ v: Int) -> Tensor? {
            defer { grads[v] = nil }
            return grads[v]
        }
        func mask(_ g: inout Tensor, _ v: Int, _ activation: FusedActivation) -> Bool {
            if activation == .none { return true }
            guard let y = tape.values[v] else { return false }
            tape.values[v] = nil
            activationPullback(&g, output: y, activation: activation, reluRule: reluRule)
            return true
        }
        for i in instructions.indices.reversed() {
            switch instructions[i] {
            case .exit(_, let v, let k):
                guard dependent[v], k < outputGradients.count, let g = outputGradients[k] else { continue }
                guard let converted = reverse.outputGradientConversions[k](g) else { return nil }
                accumulate(converted, into: &grads[v])
            case .activation(let activation, let x, let y):
                guard var g = take(y), dependent[x] else { continue }
                guard mask(&g, y, activation) else { return nil }
                accumulate(g, into: &grads[x])
            case .add(let a, let b, let y):
                guard let g = take(y) else { continue }
                if dependent[a] { accumulate(g, into: &grads[a]) }
                if dependent[b] { accumulate(g, into: &grads[b]) }
            case .convolution(_, let x, let y, let r):
                guard var g = take(y), let conv = reverse.convolutions[i] else { continue }
                guard mask(&g, y, conv.activation) else { return nil }
                if let r, dependent[r] { accumulate(g, into: &grads[r]) }
                guard dependent[x] else { continue }
                if var total = take(x) {
                    guard conv.gradient(g, accumulatingInto: &total) else { return nil }
                    grads[x] = total
                } else {
                    guard let dx = conv.gradient(g) else { return nil }
                    grads[x] = dx
                }
            case .maxPool(let pool, let x, let y):
                guard let g = take(y), dependent[x] else { continue }
                guard let argmax = tape.argmax.removeValue(forKey: i) else { return nil }
                accumulate(channelsLastMaxPool2DPullback(outputGradient: g, argmax: argmax, inputShape: pool.inputShape),
                           into: &grads[x])
            case .enter(_, let k, let v):
                guard let g = take(v), k < needed.count, needed[k] else { continue }
                guard let converted = reverse.inputGradientConversions[k](g) else { return nil }
                inputGradients[k] = converted
            }
        }
        return inputGradients
    }
}

extension ReLUGradientRule {
    /// The TensorCore rule for a reverse pass's ``ActivationGradientRule``.
    init(_ rule: ActivationGradientRule) {
        switch rule {
        case .standard: self = .standard
        case .guided: self = .guided
        case .deconvnet: self = .deconvnet
        }
    }
}
