import TensorCore

/// Occlusion: slide a window over the input, replace it by a baseline value, and attribute to each
/// element the mean drop of the target score over the windows that cover it.
///
/// Zeiler & Fergus 2014, "Visualizing and Understanding Convolutional Networks", §4.2 (occlusion
/// sensitivity). Matches Captum `captum/attr/_core/occlusion.py` (on `feature_ablation.py`):
/// - the window and the strides cover every non-batch axis (C, H, W in the input's own layout);
/// - along an axis of size `n`, window `w`, stride `s`, windows start at `0, s, 2s, …` and there
///   are `⌈(n − w)/s⌉ + 1` of them; the last one is clipped at the edge when `(n − w)` is not a
///   multiple of `s` (Captum pads the window with a negative padding);
/// - each occluded copy scores `Δ = F(x) − F(x with the window set to the baseline)`; an element's
///   attribution is the sum of `Δ` over the windows covering it divided by their number.
/// As in Captum, `s ≤ w` is required on every axis that has more than one window position, so every
/// element is covered. The occluded copies go through the network in batches of
/// ``AttributionOptions/batchSize`` (Captum's `perturbations_per_eval`).
public struct Occlusion: AttributionMethod {
    public var name: String { "Occlusion" }
    /// The window's extent along each non-batch axis (C, H, W for NCHW), or 2 values (H, W) for
    /// a window covering every channel of an NCHW input.
    public var window: [Int]
    /// The step between windows along each axis (same length as ``window``).
    public var strides: [Int]
    /// The value occluded elements are set to (Captum's scalar `baselines`, default 0).
    public var baseline: Float

    /// Creates the method with explicit per-axis windows and strides (Captum's
    /// `sliding_window_shapes` and `strides`).
    public init(window: [Int], strides: [Int], baseline: Float = 0) {
        self.window = window
        self.strides = strides
        self.baseline = baseline
    }

    /// A square `size × size` window over every channel, moved by `stride` along height and width
    /// (`sliding_window_shapes=(C, size, size)`, `strides=(C, stride, stride)` for NCHW).
    public init(window size: Int, stride: Int, baseline: Float = 0) {
        self.window = [size, size]
        self.strides = [stride, stride]
        self.baseline = baseline
    }

    /// The per-axis window and strides for one sample shape (expanding a 2-value (H, W) window).
    func geometry(sampleShape: [Int], layout: InputLayout) throws -> (window: [Int], strides: [Int]) {
        var window = self.window, strides = self.strides
        if window.count == 2 && strides.count == 2 && sampleShape.count == 3 {
            let channels = layout == .nchw ? sampleShape[0] : sampleShape[2]
            if layout == .nchw {
                window = [channels] + window
                strides = [channels] + strides
            } else {
                window = window + [channels]
                strides = strides + [channels]
            }
        }
        guard window.count == sampleShape.count, strides.count == sampleShape.count else {
            throw ExplainError.invalidOption(name: "occlusion window", value: "\(self.window) with strides \(self.strides)",
                                             reason: "give one extent and one stride per non-batch axis of the input \(sampleShape) (or 2 values for height and width)")
        }
        for d in 0..<window.count {
            guard window[d] >= 1, strides[d] >= 1 else {
                throw ExplainError.invalidOption(name: "occlusion window", value: "\(window) with strides \(strides)",
                                                 reason: "every window extent and stride must be at least 1")
            }
            guard window[d] <= sampleShape[d] else {
                throw ExplainError.invalidOption(name: "occlusion window", value: "\(window)",
                                                 reason: "it is larger than the input sample \(sampleShape) along axis \(d + 1); use a window of at most \(sampleShape[d])")
            }
            guard window[d] == sampleShape[d] || strides[d] <= window[d] else {
                throw ExplainError.invalidOption(name: "occlusion stride", value: "\(strides)",
                                                 reason: "stride \(strides[d]) along axis \(d + 1) is larger than the window \(window[d]): some elements would never be occluded")
            }
        }
        return (window, strides)
    }

    public func attributions(of images: Tensor, context: AttributionContext) throws -> MethodAttributions {
        guard baseline.isFinite else {
            throw ExplainError.invalidOption(name: "occlusion baseline", value: "\(baseline)", reason: "must be a finite number")
        }
        let count = images.shape[0]
        let sampleShape = Array(images.shape.dropFirst())
        let rank = sampleShape.count
        let n = sampleShape.reduce(1, *)
        let (window, strides) = try geometry(sampleShape: sampleShape, layout: context.inputLayout)
        var positions = [Int](repeating: 1, count: rank)
        for d in 0..<rank {
            let span: Int = sampleShape[d] - window[d]
            positions[d] = (span + strides[d] - 1) / strides[d] + 1
        }
        let windowCount = positions.reduce(1, *)
        // Row-major element strides of a sample.
        var elementStrides = [Int](repeating: 1, count: rank)
        for d in stride(from: rank - 2, through: 0, by: -1) { elementStrides[d] = elementStrides[d + 1] * sampleShape[d + 1] }

        /// The [start, end) range of window `k` along each axis (axis 0 varies fastest, as Captum).
        func ranges(_ k: Int) -> [(Int, Int)] {
            var rest = k
            return (0..<rank).map { d in
                let i = rest % positions[d]
                rest /= positions[d]
                let start = i * strides[d]
                return (start, min(start + window[d], sampleShape[d]))
            }
        }
        /// Calls `body` with the flat offset of every element of window `k`.
        func forEachElement(of k: Int, _ body: (Int) -> Void) {
            let r = ranges(k)
            var index = r.map(\.0)
            while true {
                var offset = 0
                for d in 0..<rank { offset += index[d] * elementStrides[d] }
                body(offset)
                var d = rank - 1
                while d >= 0 {
                    index[d] += 1
                    if index[d] < r[d].1 { break }
                    index[d] = r[d].0
                    d -= 1
                }
                if d < 0 { return }
            }
        }

        // Rows: for each image, the clean copy then one occluded copy per window.
        let perImage = windowCount + 1
        let value = baseline
        let scores = try images.withUnsafeBufferPointer { x in
            try context.scores(rowCount: count * perImage, sampleShape: sampleShape, imageOfRow: { $0 / perImage }) { row, sample in
                let (j, k) = (row / perImage, row % perImage - 1)
                for i in 0..<n { sample[i] = x[j * n + i] }
                if k >= 0 { forEachElement(of: k) { sample[$0] = value } }
            }
        }
        var total = [Double](repeating: 0, count: n)
        var covered = [Int](repeating: 0, count: n)
        var out = Tensor(zeros: images.shape)
        out.withUnsafeMutableBufferPointer { o in
            for j in 0..<count {
                for i in 0..<n { total[i] = 0; covered[i] = 0 }
                let clean = Double(scores[j * perImage])
                for k in 0..<windowCount {
                    let delta = clean - Double(scores[j * perImage + 1 + k])
                    forEachElement(of: k) { total[$0] += delta; covered[$0] += 1 }
                }
                for i in 0..<n where covered[i] > 0 { o[j * n + i] = Float(total[i] / Double(covered[i])) }
            }
        }
        return MethodAttributions(attributions: out)
    }
}
