import Foundation
import Synchronization
import TensorCore

// Channels-last regions: runs of consecutive convolutions executed in one layout.
//
// A ``PreparedConvolution`` converts its NCHW input to oneDNN's layout and its output back on
// every call; on EfficientNet-Lite0 those conversions cost about as much as the convolutions, and
// they are why 1×1 convolutions stayed OpenBLAS GEMMs (docs/performance.md, "oneDNN for
// convolutions"). ONNX Runtime instead keeps its blocked NCHWc layout from layer to layer. On a
// plan's first forward run (``ExecutionPlan/channelsLastSteps(before:)``),
// ``Specialiser/formChannelsLastRegions(_:before:slotInfos:outputSlots:preserved:slotNames:)`` finds
// maximal runs of consecutive steps that are convolutions with constant filters (any kind:
// 1×1, depthwise, k×k, with their fused `Pad` and `Relu`/`Clip`), residual `Add`s of two
// same-shaped values and `Relu`/`Clip`s, and runs each as one step
// (``ChannelsLastRegionOperator``): its inputs are converted NCHW → NHWC once, every convolution
// reads and writes NHWC (``ChannelsLastConvolution``: oneDNN's brgemm kernels, whose own layout
// this is), and only the values read outside the region — by a later step, as a graph output or
// because they are preserved (captures, gradient targets) — are converted back, right after they
// are computed. A residual `Add` whose one operand is a convolution's output read by nothing else
// becomes that convolution's oneDNN `sum` post-op (written in place into the other operand's
// buffer when that operand is dead afterwards), and a `Relu`/`Clip` reading only that sum becomes
// a post-op after it, as in ResNet's `conv → Add → Relu`. For Lite0 the whole network from the
// stem to the head convolution is one region: two conversions in total.
//
// A `MaxPool` may sit inside a region too (ResNet's stem: conv → Relu → MaxPool → layer1).
//
// ``ExecutionPlan/run(_:capturing:)`` (without a capture inside a region) and `profile` use the
// region steps (``ExecutionPlan/inferenceSteps``). A gradient pass
// (``ExecutionPlan/gradientSteps(capturing:differentiating:targets:reverseRegions:)``) uses
// inference regions among the steps before the first one it differentiates — Grad-CAM at the
// last feature map runs the whole backbone in them — and regions with a pullback among the steps
// it differentiates (ChannelsLastRegionReverse.swift): an attribution to the input runs forward
// and backward in NHWC. Partial runs
// (``ExecutionPlan/run(_:overriding:capturing:)``) and runs capturing a value that only exists
// inside a region use the plain step list, unchanged. A region whose oneDNN call
// fails at run time (out of memory) runs its member steps one by one instead.
//
// Off when oneDNN is (`CAMKIT_CONV_BACKEND=builtin`, or no oneDNN on the platform) and with
// `CAMKIT_NHWC_REGIONS=0` (for comparisons; `CAMKIT_NHWC_REVERSE=0` keeps only the regions with a
// pullback out). The step lists of one plan share their convolutions (``ChannelsLastConvolutionCache``):
// a gradient pass after an inference run makes only the primitives of its pullback.

/// One instruction of a region (values are indices into the region's value table).
enum ChannelsLastInstruction: Sendable {
    /// NCHW → NHWC: the region step's input `input` into value `value`.
    case enter(ChannelsLastConversion, input: Int, value: Int)
    /// A convolution of value `input` into value `output`; with `residual`, its output is added
    /// to that value (the convolution was prepared to accumulate).
    case convolution(ChannelsLastConvolution, input: Int, output: Int, residual: Int?)
    /// `output = a + b` (same shapes, elementwise: the layout does not matter).
    case add(Int, Int, output: Int)
    /// An elementwise activation.
    case activation(FusedActivation, input: Int, output: Int)
    /// Max pooling (without the ONNX `Indices` output).
    case maxPool(ChannelsLastMaxPool, input: Int, output: Int)
    /// NHWC → NCHW: value `value` into the region step's output `output`.
    case exit(ChannelsLastConversion, value: Int, output: Int)
}

/// What a profile calls one instruction of a region.
struct ChannelsLastInstructionLabel: Sendable {
    /// The node it runs, or for a layout conversion the value it converts.
    let name: String
    /// What it runs: `"Conv+Add+Relu"`, `"MaxPool"`, `"NCHW→NHWC"`, ….
    let kind: String
    /// The logical (NCHW) shape of the value it writes.
    let shape: [Int]
}

/// The window of a max pooling inside a region.
struct ChannelsLastMaxPool: Sendable {
    let kernel: (Int, Int)
    let strides: (Int, Int)
    let padding: Padding2D
    let dilations: (Int, Int)
    let ceilMode: Bool
    /// The channels-last `[N, H, W, C]` input shape.
    let inputShape: [Int]
}

/// A member step of a region, kept to run the region step by step if oneDNN fails.
struct ChannelsLastRegionMember: Sendable {
    let op: any ONNXOperator
    let inputs: [Int?]
    let outputs: [Int?]
}

/// A channels-last region as one step of a plan (made by specialisation only; see the file's
/// description).
struct ChannelsLastRegionOperator: ONNXOperator {
    let instructions: [ChannelsLastInstruction]
    /// Values whose last reader is each instruction (freed after it).
    let releases: [[Int]]
    /// Whether instruction `i` (an accumulating convolution) may take its residual's buffer.
    let takesResidual: [Bool]
    let valueCount: Int
    /// The plan slots the region reads (its step's inputs) and writes (its step's outputs).
    let inputSlots: [Int]
    let outputSlots: [Int]
    /// The member steps and the constants they read, for the step-by-step fallback.
    let members: [ChannelsLastRegionMember]
    let constants: [Int: Tensor]
    /// The first and last member node names and the number of convolutions (for profiles).
    let summary: String
    /// Per instruction, what profiles call it.
    let labels: [ChannelsLastInstructionLabel]
    /// What the region's pullback needs, for a region formed among the steps a reverse pass
    /// differentiates (ChannelsLastRegionReverse.swift); `nil` for an inference region.
    let reverse: ChannelsLastRegionReverse?

    init(node: Node, opset: Int) throws {
        throw OperatorError("channels-last regions are made by specialisation only")
    }

    init(instructions: [ChannelsLastInstruction], valueCount: Int, inputSlots: [Int], outputSlots: [Int],
         members: [ChannelsLastRegionMember], constants: [Int: Tensor], summary: String,
         labels: [ChannelsLastInstructionLabel], reverse: ChannelsLastRegionReverse? = nil) {
        precondition(labels.count == instructions.count, "one label per instruction")
        self.instructions = instructions
        self.labels = labels
        self.valueCount = valueCount
        self.inputSlots = inputSlots
        self.outputSlots = outputSlots
        self.members = members
        self.constants = constants
        self.summary = summary
        self.reverse = reverse
        // Last reader of every value; a value nobody reads is freed right after it is written.
        var last = [Int](repeating: -1, count: valueCount)
        var written = [Int](repeating: -1, count: valueCount)
        for (i, instruction) in instructions.enumerated() {
            switch instruction {
            case .enter(_, _, let v): written[v] = i
            case .convolution(_, let x, let y, let r):
                last[x] = i
                if let r { last[r] = i }
                written[y] = i
            case .add(let a, let b, let y):
                last[a] = i
                last[b] = i
                written[y] = i
            case .activation(_, let x, let y), .maxPool(_, let x, let y):
                last[x] = i
                written[y] = i
            case .exit(_, let v, _): last[v] = i
            }
        }
        var releases = [[Int]](repeating: [], count: instructions.count)
        for v in 0..<valueCount {
            let at = last[v] >= 0 ? last[v] : written[v]
            if at >= 0 { releases[at].append(v) }
        }
        self.releases = releases
        takesResidual = instructions.enumerated().map { i, instruction in
            if case .convolution(_, _, _, let r?) = instruction { return last[r] == i }
            return false
        }
    }

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        throw OperatorError("channels-last regions are made by specialisation only")
    }

    /// The number of convolutions in the region.
    var convolutionCount: Int {
        instructions.reduce(0) { n, i in if case .convolution = i { return n + 1 } else { return n } }
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        var tape: ChannelsLastTape? = nil
        if let outputs = runChannelsLast(inputs, recording: &tape) { return outputs }
        return try runMembers(inputs)
    }

    /// The region in NHWC, or `nil` if a oneDNN call failed. With a `tape`, every value and
    /// argmax the pullback reads is recorded in it.
    func runChannelsLast(_ inputs: [Tensor?], recording tape: inout ChannelsLastTape?,
                         timing: ((_ instruction: Int, _ nanoseconds: UInt64) -> Void)? = nil) -> [Tensor]? {
        var values = [Tensor?](repeating: nil, count: valueCount)
        var outputs = [Tensor?](repeating: nil, count: outputSlots.count)
        for (i, instruction) in instructions.enumerated() {
            let start = timing == nil ? 0 : DispatchTime.now().uptimeNanoseconds
            defer { if let timing { timing(i, DispatchTime.now().uptimeNanoseconds - start) } }
            switch instruction {
            case .enter(let conversion, let k, let v):
                guard k < inputs.count, let x = inputs[k], let y = conversion(x) else { return nil }
                values[v] = y
            case .convolution(let conv, let xv, let yv, let rv):
                guard let x = values[xv] else { return nil }
                if let rv {
                    guard var y = values[rv] else { return nil }
                    if takesResidual[i] { values[rv] = nil }  // `y` is now its only reference: summed in place
                    guard conv(x, accumulatingInto: &y) else { return nil }
                    values[yv] = y
                } else {
                    guard let y = conv(x) else { return nil }
                    values[yv] = y
                }
            case .add(let a, let b, let yv):
                guard let x = values[a], let z = values[b] else { return nil }
                values[yv] = add(x, z)
            case .activation(let activation, let xv, let yv):
                guard let x = values[xv] else { return nil }
                switch activation {
                case .none: values[yv] = x
                case .relu: values[yv] = relu(x)
                case .clip(let lo, let hi): values[yv] = clip(x, min: lo, max: hi)
                }
            case .maxPool(let pool, let xv, let yv):
                guard let x = values[xv] else { return nil }
                let (y, argmax) = channelsLastMaxPool2D(x, kernelSize: pool.kernel, strides: pool.strides,
                                                        padding: pool.padding, dilations: pool.dilations,
                                                        ceilMode: pool.ceilMode, recordingArgmax: tape != nil)
                values[yv] = y
                if let argmax { tape?.argmax[i] = argmax }
            case .exit(let conversion, let v, let k):
                guard let x = values[v], let y = conversion(x) else { return nil }
                outputs[k] = y
            }
            if tape != nil, let reverse, let kept = reverse.keptValue[i] { tape?.values[kept] = values[kept] }
            for v in releases[i] { values[v] = nil }
        }
        let result = outputs.compactMap { $0 }
        return result.count == outputSlots.count ? result : nil
    }

    /// The member steps one by one, in NCHW (the plain plan's kernels).
    private func runMembers(_ inputs: [Tensor?]) throws -> [Tensor] {
        var slots = constants
        for (k, s) in inputSlots.enumerated() where k < inputs.count { slots[s] = inputs[k] }
        for member in members {
            let results = try member.op.run(member.inputs.map { $0.flatMap { slots[$0] } })
            for (k, s) in member.outputs.enumerated() {
                if let s, k < results.count { slots[s] = results[k] }
            }
        }
        return try outputSlots.map { s in
            guard let t = slots[s] else { throw OperatorError("channels-last region: value \(s) was not computed") }
            return t
        }
    }
}

extension Specialiser {
    /// Whether specialisation forms channels-last regions (`CAMKIT_NHWC_REGIONS=0` turns them off;
    /// they also need oneDNN: ``ChannelsLastConvolution/isAvailable``).
    static var channelsLastRegionsEnabled: Bool {
        ProcessInfo.processInfo.environment["CAMKIT_NHWC_REGIONS"] != "0" && ChannelsLastConvolution.isAvailable
    }

    /// Whether gradient passes form regions with a pullback among the steps they differentiate
    /// (`CAMKIT_NHWC_REVERSE=0` turns them off, for comparisons).
    static var channelsLastReverseEnabled: Bool {
        ProcessInfo.processInfo.environment["CAMKIT_NHWC_REVERSE"] != "0"
    }

    /// What a step can be inside a region.
    private enum RegionRole {
        case convolution(FusedConvOperator, x: Int, filter: Tensor, bias: Tensor?)
        case add(Int, Int)
        case activation(FusedActivation, x: Int)
        case maxPool(ChannelsLastMaxPool, x: Int)
    }

    /// Replaces runs of convolutions (and the residual `Add`s and activations between them) by
    /// ``ChannelsLastRegionOperator`` steps; see this file's description.
    ///
    /// - Parameters:
    ///   - limit: steps before this index may join inference regions.
    ///   - onPath: for a gradient pass, the steps it differentiates (none before `limit`): they may
    ///     join regions with a pullback (ChannelsLastRegionReverse.swift), except those that
    ///     compute one of the `targets`. No region mixes the two kinds.
    ///   - convolutions: where the regions' convolutions are made or found (the plan's, shared
    ///     between its step lists).
    /// - Returns: the new step list, and the slots computed inside regions that are not visible
    ///   outside them (a run capturing one of them must use the plain step list).
    func formChannelsLastRegions(_ steps: [RawStep], before limit: Int, differentiating onPath: [Bool]? = nil,
                                 targets: Set<Int> = [], slotInfos: [ValueInfo], outputSlots: Set<Int>,
                                 preserved: Set<String>, slotNames: [String],
                                 convolutions: ChannelsLastConvolutionCache)
        -> (steps: [RawStep], hidden: Set<Int>) {
        guard Specialiser.channelsLastRegionsEnabled else { return (steps, []) }
        var readers: [Int: Int] = [:]
        for step in steps { for case let s? in step.inputs { readers[s, default: 0] += 1 } }
        func isActivation4D(_ s: Int?) -> Bool {
            guard let s else { return false }
            return slotInfos[s].shape.count == 4 && slotInfos[s].dtype == .float32 && slotInfos[s].constant == nil
        }
        func role(_ step: RawStep) -> RegionRole? {
            guard step.outputs.count >= 1, isActivation4D(step.outputs[0]) else { return nil }
            var fused: FusedConvOperator? = step.op as? FusedConvOperator
            if fused == nil, let conv = step.op as? ConvOperator {
                fused = FusedConvOperator(conv: conv, extraPadding: .zero, activation: .none)
            }
            if let fused {
                guard step.inputs.count >= 2, isActivation4D(step.inputs[0]), let x = step.inputs[0],
                      let w = step.inputs[1], let filter = slotInfos[w].constant, filter.rank == 4,
                      filter.dtype == .float32 else { return nil }
                var bias: Tensor? = nil
                if step.inputs.count > 2, let b = step.inputs[2] {
                    guard let value = slotInfos[b].constant, value.dtype == .float32 else { return nil }
                    bias = value
                }
                return .convolution(fused, x: x, filter: filter, bias: bias)
            }
            if step.op is AddOperator {
                guard step.inputs.count == 2, isActivation4D(step.inputs[0]), isActivation4D(step.inputs[1]),
                      let a = step.inputs[0], let b = step.inputs[1], let y = step.outputs[0],
                      slotInfos[a].shape == slotInfos[y].shape, slotInfos[b].shape == slotInfos[y].shape
                else { return nil }
                return .add(a, b)
            }
            if step.op is ReluOperator || step.op is ClipOperator {
                guard let x = step.inputs.first ?? nil, isActivation4D(x),
                      let a = activationOf(step, slotInfos: slotInfos) else { return nil }
                return .activation(a, x: x)
            }
            if let pool = step.op as? MaxPoolOperator, !pool.wantsIndices {
                guard let x = step.inputs.first ?? nil, isActivation4D(x),
                      let (window, ceil, _) = try? pool.geometry(slotInfos[x].shape) else { return nil }
                return .maxPool(ChannelsLastMaxPool(
                    kernel: window.kernel, strides: window.strides, padding: window.padding, dilations: window.dilations,
                    ceilMode: ceil, inputShape: ChannelsLastConvolution.channelsLastShape(slotInfos[x].shape)), x: x)
            }
            return nil
        }
        let roles = steps.indices.map { i -> RegionRole? in
            if i < limit { return role(steps[i]) }
            guard let onPath, onPath[i],
                  !steps[i].outputs.contains(where: { $0.map(targets.contains) ?? false }) else { return nil }
            // Regions with a pullback take ReLU networks only: see ChannelsLastRegionReverse.swift
            // for why Clip (ReLU6) activations keep the plain reverse pass.
            switch role(steps[i]) {
            case .convolution(let fused, _, _, _) where fused.activation != .none && fused.activation != .relu: return nil
            case .activation(let activation, _) where activation != .relu: return nil
            case let r: return r
            }
        }

        // Maximal runs of steps with a role, starting at a convolution; a run that fails to build
        // at a convolution is split there and its two sides tried again.
        var pending: [Range<Int>] = []
        var i = 0
        while i < steps.count {
            guard roles[i] != nil else { i += 1; continue }
            var j = i
            while j < steps.count, roles[j] != nil, (j < limit) == (i < limit) { j += 1 }
            pending.append(i..<j)
            i = j
        }
        var built: [(range: Range<Int>, step: RawStep, hidden: Set<Int>)] = []
        var refused = Set<Int>()  // convolution steps oneDNN refused
        while let run = pending.popLast() {
            // Start at the first convolution; a region needs two.
            guard let first = run.first(where: { if case .convolution = roles[$0] { return !refused.contains($0) } else { return false } })
            else { continue }
            let range = first..<run.upperBound
            let convCount = range.filter { if case .convolution = roles[$0] { return true } else { return false } }.count
            guard convCount >= 2 else { continue }
            switch buildRegion(range, steps: steps, roles: roles, readers: readers, slotInfos: slotInfos,
                               outputSlots: outputSlots, preserved: preserved, slotNames: slotNames,
                               differentiable: range.lowerBound >= limit, convolutions: convolutions) {
            case .success(let region):
                built.append((range, region.step, region.hidden))
            case .failure(let refusal):
                refused.insert(refusal.step)
                if range.lowerBound < refusal.step { pending.append(range.lowerBound..<refusal.step) }
                if refusal.step + 1 < range.upperBound { pending.append((refusal.step + 1)..<range.upperBound) }
            }
        }
        guard !built.isEmpty else { return (steps, []) }
        built.sort { $0.range.lowerBound < $1.range.lowerBound }
        var result: [RawStep] = []
        var hidden = Set<Int>()
        var next = 0
        for region in built {
            result.append(contentsOf: steps[next..<region.range.lowerBound])
            result.append(region.step)
            hidden.formUnion(region.hidden)
            next = region.range.upperBound
        }
        result.append(contentsOf: steps[next...])
        return (result, hidden)
    }

    private struct RegionRefusal: Error { let step: Int }

    /// Builds the region of `range` (steps with roles, the first a convolution), or names the
    /// convolution oneDNN refused. A `differentiable` region also gets what its pullback needs.
    private func buildRegion(_ range: Range<Int>, steps: [RawStep], roles: [RegionRole?], readers: [Int: Int],
                             slotInfos: [ValueInfo], outputSlots: Set<Int>, preserved: Set<String>,
                             slotNames: [String], differentiable: Bool,
                             convolutions: ChannelsLastConvolutionCache) -> Swift.Result<(step: RawStep, hidden: Set<Int>), RegionRefusal> {
        var producerIndex: [Int: Int] = [:]  // slot → step index, for the members' outputs
        for k in range { for case let s? in steps[k].outputs { producerIndex[s] = k } }
        // Values read outside the region (or kept observable) must be converted back.
        var readOutside = Set<Int>()
        for (k, step) in steps.enumerated() where !range.contains(k) {
            for case let s? in step.inputs where producerIndex[s] != nil { readOutside.insert(s) }
        }
        func visible(_ s: Int) -> Bool {
            readOutside.contains(s) || outputSlots.contains(s) || preserved.contains(slotNames[s])
        }
        func fusible(_ s: Int) -> Bool { readers[s] == 1 && !visible(s) }

        // Residual sums: an Add whose operand v is the output of a member convolution c read by
        // this Add alone, the other operand u ready before c; the later such c wins. A Relu/Clip
        // that alone reads the sum follows it as a post-op.
        struct Sum { var residual: Int; var output: Int; var post: FusedActivation }
        var sums: [Int: Sum] = [:]        // convolution step → its sum
        var absorbed = Set<Int>()         // Add / activation steps folded into a convolution
        for k in range {
            guard case .add(let a, let b) = roles[k], let y = steps[k].outputs[0] else { continue }
            var best: (conv: Int, residual: Int)? = nil
            for (v, u) in [(a, b), (b, a)] {
                // With a pullback, only after a convolution without its own activation (whose
                // derivative would need the value before the sum).
                guard let c = producerIndex[v], case .convolution(let fused, _, _, _) = roles[c],
                      !(differentiable && fused.activation != .none), sums[c] == nil, fusible(v) else { continue }
                if let pu = producerIndex[u], pu >= c { continue }
                if best.map({ c > $0.conv }) ?? true { best = (c, u) }
            }
            guard let best else { continue }
            var sum = Sum(residual: best.residual, output: y, post: .none)
            absorbed.insert(k)
            if fusible(y), let next = range.first(where: { $0 > k && steps[$0].inputs.contains(y) }),
               case .activation(let activation, _) = roles[next], let z = steps[next].outputs[0] {
                sum.post = activation
                sum.output = z
                absorbed.insert(next)
            }
            sums[best.conv] = sum
        }

        // Values: region inputs first (in order of first use), then every member output.
        var valueOf: [Int: Int] = [:]
        var inputSlots: [Int] = []
        var instructions: [ChannelsLastInstruction] = []
        func value(_ s: Int) -> Int {
            if let v = valueOf[s] { return v }
            let v = valueOf.count
            valueOf[s] = v
            return v
        }
        var outputSlotsOfRegion: [Int] = []
        var entries: [ChannelsLastInstruction] = []
        var entryLabels: [ChannelsLastInstructionLabel] = []
        var labels: [ChannelsLastInstructionLabel] = []
        // The pullback's parts, by index into `instructions` (offset by the entries at the end).
        var reverseConvolutions: [Int: ChannelsLastRegionReverse.Convolution] = [:]
        var keptValue: [Int: Int] = [:]
        func read(_ s: Int) -> Int? {
            if valueOf[s] == nil && producerIndex[s] == nil {
                guard let conversion = ChannelsLastConversion(shape: slotInfos[s].shape, toChannelsLast: true) else { return nil }
                entries.append(.enter(conversion, input: inputSlots.count, value: value(s)))
                entryLabels.append(.init(name: slotNames[s], kind: "NCHW→NHWC", shape: slotInfos[s].shape))
                inputSlots.append(s)
            }
            return value(s)
        }
        func wrote(_ s: Int) -> Bool {
            _ = value(s)
            if visible(s) {
                guard let conversion = ChannelsLastConversion(shape: slotInfos[s].shape, toChannelsLast: false) else { return false }
                instructions.append(.exit(conversion, value: value(s), output: outputSlotsOfRegion.count))
                labels.append(.init(name: slotNames[s], kind: "NHWC→NCHW", shape: slotInfos[s].shape))
                outputSlotsOfRegion.append(s)
            }
            return true
        }
        for k in range where !absorbed.contains(k) {
            let step = steps[k]
            let name = graph.nodes[step.nodeIndex].name
            guard let y = step.outputs[0], let role = roles[k] else { return .failure(RegionRefusal(step: k)) }
            switch role {
            case .convolution(let fused, let xs, let filter, let bias):
                let sum = sums[k]
                let inputShape = slotInfos[xs].shape
                let key = ChannelsLastConvolutionCache.Key(step: k, activation: fused.activation, accumulating: sum != nil,
                                                           activationAfterSum: sum?.post ?? .none)
                guard let window = try? fused.window(inputShape: inputShape, filterShape: filter.shape),
                      let conv = convolutions.convolution(key, make: {
                          ChannelsLastConvolution(
                            inputShape: inputShape, filter: filter, bias: bias, strides: window.strides,
                            padding: window.padding, dilations: window.dilations, groups: fused.conv.group,
                            activation: fused.activation, accumulating: sum != nil,
                            activationAfterSum: sum?.post ?? FusedActivation.none)
                      }),
                      let x = read(xs)
                else { return .failure(RegionRefusal(step: k)) }
                var r: Int? = nil
                if let sum {
                    guard let rv = read(sum.residual) else { return .failure(RegionRefusal(step: k)) }
                    r = rv
                }
                let out = sum?.output ?? y
                if differentiable {
                    guard let gradient = ChannelsLastConvolutionGradient(
                        inputShape: inputShape, filter: filter, strides: window.strides, padding: window.padding,
                        dilations: window.dilations, groups: fused.conv.group)
                    else { return .failure(RegionRefusal(step: k)) }
                    let activation = sum?.post ?? fused.activation
                    reverseConvolutions[instructions.count] = .init(gradient: gradient, activation: activation)
                    if activation != .none { keptValue[instructions.count] = value(out) }
                }
                instructions.append(.convolution(conv, input: x, output: value(out), residual: r))
                labels.append(.init(name: name, kind: "Conv" + fused.activation.profileSuffix
                                        + (sum.map { "+Add" + $0.post.profileSuffix } ?? ""), shape: slotInfos[out].shape))
                guard wrote(out) else { return .failure(RegionRefusal(step: k)) }
            case .add(let a, let b):
                guard let av = read(a), let bv = read(b) else { return .failure(RegionRefusal(step: k)) }
                instructions.append(.add(av, bv, output: value(y)))
                labels.append(.init(name: name, kind: "Add", shape: slotInfos[y].shape))
                guard wrote(y) else { return .failure(RegionRefusal(step: k)) }
            case .activation(let activation, let xs):
                guard let x = read(xs) else { return .failure(RegionRefusal(step: k)) }
                if differentiable && activation != .none { keptValue[instructions.count] = value(y) }
                instructions.append(.activation(activation, input: x, output: value(y)))
                labels.append(.init(name: name, kind: activation == .none ? "Identity" : String(activation.profileSuffix.dropFirst()),
                                    shape: slotInfos[y].shape))
                guard wrote(y) else { return .failure(RegionRefusal(step: k)) }
            case .maxPool(let pool, let xs):
                guard let x = read(xs) else { return .failure(RegionRefusal(step: k)) }
                instructions.append(.maxPool(pool, input: x, output: value(y)))
                labels.append(.init(name: name, kind: "MaxPool", shape: slotInfos[y].shape))
                guard wrote(y) else { return .failure(RegionRefusal(step: k)) }
            }
        }
        // Member outputs not converted back exist only inside the region (absorbed sums included).
        var hidden = Set<Int>()
        for k in range { for case let s? in steps[k].outputs where !outputSlotsOfRegion.contains(s) { hidden.insert(s) } }

        var constants: [Int: Tensor] = [:]
        for k in range { for case let s? in steps[k].inputs { if let c = slotInfos[s].constant { constants[s] = c } } }
        let members = range.map { ChannelsLastRegionMember(op: steps[$0].op, inputs: steps[$0].inputs, outputs: steps[$0].outputs) }
        let convolutions = range.filter { if case .convolution = roles[$0] { return true } else { return false } }.count
        let firstName = graph.nodes[steps[range.lowerBound].nodeIndex].name
        let lastName = graph.nodes[steps[range.upperBound - 1].nodeIndex].name
        var reverse: ChannelsLastRegionReverse? = nil
        if differentiable {
            let shift = entries.count
            let inputConversions = inputSlots.compactMap { ChannelsLastConversion(shape: slotInfos[$0].shape, toChannelsLast: false) }
            let outputConversions = outputSlotsOfRegion.compactMap { ChannelsLastConversion(shape: slotInfos[$0].shape, toChannelsLast: true) }
            guard inputConversions.count == inputSlots.count, outputConversions.count == outputSlotsOfRegion.count
            else { return .failure(RegionRefusal(step: range.lowerBound)) }
            reverse = ChannelsLastRegionReverse(
                convolutions: Dictionary(uniqueKeysWithValues: reverseConvolutions.map { ($0.key + shift, $0.value) }),
                inputGradientConversions: inputConversions, outputGradientConversions: outputConversions,
                keptValue: Dictionary(uniqueKeysWithValues: keptValue.map { ($0.key + shift, $0.value) }))
        }
        let op = ChannelsLastRegionOperator(
            instructions: entries + instructions, valueCount: valueOf.count, inputSlots: inputSlots,
            outputSlots: outputSlotsOfRegion, members: members, constants: constants,
            summary: "\(firstName) … \(lastName) (\(convolutions) convolutions, \(range.count) steps)",
            labels: entryLabels + labels, reverse: reverse)
        let step: RawStep = (steps[range.lowerBound].nodeIndex, op, inputSlots.map { Optional($0) }, outputSlotsOfRegion.map { Optional($0) })
        return .success((step, hidden))
    }
}

extension Specialiser {
    /// Plan steps for `raw` with their release lists: a slot computed by one of the steps is
    /// released after its last reader unless it is in `kept` (the graph outputs).
    static func steps(_ raw: [RawStep], keeping kept: Set<Int>) -> [ExecutionPlan.Step] {
        var produced = Set<Int>()
        for step in raw { for case let s? in step.outputs { produced.insert(s) } }
        var lastReader: [Int: Int] = [:]
        for (i, step) in raw.enumerated() { for case let s? in step.inputs { lastReader[s] = i } }
        var releases = [[Int]](repeating: [], count: raw.count)
        for (s, i) in lastReader where produced.contains(s) && !kept.contains(s) { releases[i].append(s) }
        return raw.enumerated().map { i, step in
            ExecutionPlan.Step(nodeIndex: step.nodeIndex, op: step.op, inputs: step.inputs, outputs: step.outputs,
                               releases: releases[i])
        }
    }
}

/// A plan's step list with channels-last regions, and the slots only its regions compute.
struct ChannelsLastSteps: Sendable {
    let steps: [ExecutionPlan.Step]
    let hidden: Set<Int>
}

/// The convolutions of a plan's regions, shared between its step lists: the inference regions
/// and those of a gradient pass run most convolutions with the same settings, and each
/// ``ChannelsLastConvolution`` holds oneDNN primitives (JIT-compiled when made) and a copy of its
/// filter in oneDNN's layout (~100 MB for ResNet-50).
final class ChannelsLastConvolutionCache: Sendable {
    /// A convolution step of the plan (its index in the plain step list) and how it is fused.
    struct Key: Hashable, Sendable {
        let step: Int
        let activation: FusedActivation
        let accumulating: Bool
        let activationAfterSum: FusedActivation
    }
    private let made = Mutex<[Key: ChannelsLastConvolution]>([:])

    /// The convolution for `key`, made by `make` on first use (a `nil` from `make` is not kept).
    func convolution(_ key: Key, make: () -> ChannelsLastConvolution?) -> ChannelsLastConvolution? {
        if let conv = made.withLock({ $0[key] }) { return conv }
        guard let conv = make() else { return nil }
        return made.withLock { cache in
            if let earlier = cache[key] { return earlier }
            cache[key] = conv
            return conv
        }
    }
}

/// What a channels-last step list was made for: inference regions among the steps before
/// `limit`, and for a gradient pass regions with a pullback among the differentiated steps.
struct ChannelsLastKey: Hashable, Sendable {
    let limit: Int
    let onPath: [Bool]?
    let targets: [Int]
}

extension ExecutionPlan {
    /// The step list with channels-last regions formed among the steps before `limit`
    /// (``steps`` itself when none formed), made on first use for each limit: partial runs never
    /// need one, so they do not pay for its oneDNN primitives (JIT compilation, a second copy of
    /// the filters).
    func channelsLastSteps(before limit: Int) -> ChannelsLastSteps {
        channelsLastSteps(ChannelsLastKey(limit: limit, onPath: nil, targets: []))
    }

    /// The step list for `key`, made on first use.
    private func channelsLastSteps(_ key: ChannelsLastKey) -> ChannelsLastSteps {
        channelsLastState.withLock { cache in
            if let made = cache[key] { return made }
            let raw: [Specialiser.RawStep] = steps.map { ($0.nodeIndex, $0.op, $0.inputs, $0.outputs) }
            let specialiser = Specialiser(graph: graph, inputShapes: inputShapes, preserved: preserved)
            let regions = specialiser.formChannelsLastRegions(raw, before: key.limit, differentiating: key.onPath,
                                                              targets: Set(key.targets), slotInfos: slotInfos,
                                                              outputSlots: Set(outputSlots), preserved: preserved,
                                                              slotNames: slotNames, convolutions: channelsLastConvolutions)
            let made = regions.hidden.isEmpty && regions.steps.count == raw.count
                ? ChannelsLastSteps(steps: steps, hidden: [])
                : ChannelsLastSteps(steps: Specialiser.steps(regions.steps, keeping: Set(outputSlots)), hidden: regions.hidden)
            cache[key] = made
            return made
        }
    }

    /// The steps ``run(_:capturing:)`` executes when no capture lies inside a region.
    var inferenceSteps: [Step] { channelsLastSteps(before: steps.count).steps }

    /// The step list a forward pass runs: the one with channels-last regions unless a captured
    /// value lies inside a region.
    func forwardSteps(capturing captureSlots: [Int]) -> [Step] {
        let regions = channelsLastSteps(before: steps.count)
        return captureSlots.contains(where: regions.hidden.contains) ? steps : regions.steps
    }

    /// The step list a gradient pass runs and the steps of it that the reverse pass
    /// differentiates. `onPath` marks the plain steps differentiated for `targets`. Inference
    /// regions form among the steps before the first differentiated one (values read after a
    /// region are converted back by it, as for any reader outside), regions with a pullback
    /// among the differentiated steps (ChannelsLastRegionReverse.swift) unless `reverseRegions`
    /// is false, a target is a constant (a weight), or `CAMKIT_NHWC_REVERSE=0`. The plain list is
    /// kept when a captured value lies inside a region.
    func gradientSteps(capturing captureSlots: [Int], differentiating onPath: [Bool], targets: [Int],
                       reverseRegions: Bool) -> (steps: [Step], onPath: [Bool]) {
        let limit = onPath.firstIndex(of: true) ?? steps.count
        let withReverse = reverseRegions && Specialiser.channelsLastReverseEnabled
            && !targets.contains { slotInfos[$0].constant != nil }
        let regions = channelsLastSteps(ChannelsLastKey(limit: limit, onPath: withReverse ? onPath : nil,
                                                        targets: withReverse ? targets.sorted() : []))
        guard !captureSlots.contains(where: regions.hidden.contains) else { return (steps, onPath) }
        if regions.steps.count == steps.count { return (steps, onPath) }
        var dependent = Set(targets)
        let path = regions.steps.map { step -> Bool in
            guard step.inputs.contains(where: { $0.map(dependent.contains) ?? false }) else { return false }
            for case let s? in step.outputs { dependent.insert(s) }
            return true
        }
        return (regions.steps, path)
    }
}

extension FusedActivation {
    /// `"+Relu"`, `"+Clip"`, or empty (instruction kinds in profiles).
    var profileSuffix: String {
        switch self {
        case .none: return ""
        case .relu: return "+Relu"
        case .clip: return "+Clip"
        }
    }
}
