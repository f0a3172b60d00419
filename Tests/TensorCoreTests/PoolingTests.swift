import Testing
@testable import TensorCore

// Tests of Pooling.swift: max / average pooling against naive references (padding, dilation,
// ceil mode, count_include_pad), closed-form cases, the first-max tie rule of the max pullback,
// and every pullback against central finite differences.

private func randomTensor(_ shape: [Int], _ rng: inout TestRNG) -> Tensor {
    Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in Float.random(in: -1...1, using: &rng) })
}

/// Distinct values spaced 0.01 apart (a shuffled ramp), so that a perturbation of ±1e-3 never
/// changes which element wins a max.
private func distinctTensor(_ shape: [Int], _ rng: inout TestRNG) -> Tensor {
    let n = shape.reduce(1, *)
    return Tensor(shape: shape, scalars: (0..<n).map { Float($0) * 0.01 }.shuffled(using: &rng))
}

private struct PoolCase: CustomStringConvertible {
    var shape = [2, 3, 7, 8]
    var kernel = (3, 3), strides = (2, 2), dilations = (1, 1)
    var padding = Padding2D.zero
    var ceilMode = false
    var countIncludePad = false
    var description: String { "\(shape) k\(kernel) s\(strides) d\(dilations) \(padding) ceil \(ceilMode) cip \(countIncludePad)" }
}

private let poolCases: [PoolCase] = [
    PoolCase(),
    PoolCase(shape: [1, 2, 8, 8], kernel: (2, 2)),
    PoolCase(shape: [1, 2, 9, 10], padding: .symmetric(height: 1, width: 1)),
    PoolCase(shape: [1, 2, 9, 10], padding: .symmetric(height: 1, width: 1), countIncludePad: true),
    PoolCase(shape: [1, 3, 6, 7], kernel: (3, 2), strides: (2, 2), ceilMode: true),
    PoolCase(shape: [1, 3, 6, 7], kernel: (3, 2), strides: (2, 2), padding: Padding2D(top: 1, left: 0, bottom: 0, right: 1),
             ceilMode: true, countIncludePad: true),
    PoolCase(shape: [1, 2, 11, 9], kernel: (2, 3), strides: (1, 2), dilations: (2, 2),
             padding: Padding2D(top: 0, left: 1, bottom: 2, right: 1)),
    PoolCase(shape: [2, 1, 1, 13], kernel: (1, 4), strides: (1, 3), ceilMode: true),
]

/// The window taps of `(oy, ox)` inside the input, and the divisor of the average.
private func windows(_ cs: PoolCase) -> (oh: Int, ow: Int, taps: (Int, Int) -> [(Int, Int)], divisor: (Int, Int) -> Int) {
    let h = cs.shape[2], w = cs.shape[3]
    let oh = poolingOutputSize(input: h, kernel: cs.kernel.0, stride: cs.strides.0, dilation: cs.dilations.0,
                               padBegin: cs.padding.top, padEnd: cs.padding.bottom, ceilMode: cs.ceilMode)
    let ow = poolingOutputSize(input: w, kernel: cs.kernel.1, stride: cs.strides.1, dilation: cs.dilations.1,
                               padBegin: cs.padding.left, padEnd: cs.padding.right, ceilMode: cs.ceilMode)
    let taps = { (oy: Int, ox: Int) -> [(Int, Int)] in
        var t: [(Int, Int)] = []
        for ki in 0..<cs.kernel.0 {
            for kj in 0..<cs.kernel.1 {
                let iy = oy * cs.strides.0 - cs.padding.top + ki * cs.dilations.0
                let ix = ox * cs.strides.1 - cs.padding.left + kj * cs.dilations.1
                if iy >= 0 && iy < h && ix >= 0 && ix < w { t.append((iy, ix)) }
            }
        }
        return t
    }
    let divisor = { (oy: Int, ox: Int) -> Int in
        if !cs.countIncludePad { return taps(oy, ox).count }
        var count = 0
        for ki in 0..<cs.kernel.0 {
            for kj in 0..<cs.kernel.1 {
                let iy = oy * cs.strides.0 - cs.padding.top + ki * cs.dilations.0
                let ix = ox * cs.strides.1 - cs.padding.left + kj * cs.dilations.1
                if iy >= -cs.padding.top && iy < h + cs.padding.bottom && ix >= -cs.padding.left && ix < w + cs.padding.right {
                    count += 1
                }
            }
        }
        return count
    }
    return (oh, ow, taps, divisor)
}

private func naivePool(_ x: Tensor, _ cs: PoolCase, max isMax: Bool) -> Tensor {
    let (oh, ow, taps, divisor) = windows(cs)
    let xs = x.scalars, planes = cs.shape[0] * cs.shape[1], h = cs.shape[2], w = cs.shape[3]
    var out: [Float] = []
    for p in 0..<planes {
        for oy in 0..<oh {
            for ox in 0..<ow {
                let values = taps(oy, ox).map { xs[(p * h + $0.0) * w + $0.1] }
                if isMax {
                    out.append(values.max() ?? -Float.greatestFiniteMagnitude)
                } else {
                    let d = divisor(oy, ox)
                    out.append(d > 0 ? Float(values.reduce(0.0) { $0 + Double($1) } / Double(d)) : 0)
                }
            }
        }
    }
    return Tensor(shape: [cs.shape[0], cs.shape[1], oh, ow], scalars: out)
}

@Test("Output sizes follow ONNX / PyTorch, including ceil mode's dropped last window")
func poolOutputSizes() {
    #expect(poolingOutputSize(input: 5, kernel: 2, stride: 2, dilation: 1, padBegin: 0, padEnd: 0, ceilMode: false) == 2)
    #expect(poolingOutputSize(input: 5, kernel: 2, stride: 2, dilation: 1, padBegin: 0, padEnd: 0, ceilMode: true) == 3)
    // ceil((6 + 1 − 3) / 2) + 1 = 3, but the third window would start at 4 − 1 ... still inside: 3.
    #expect(poolingOutputSize(input: 6, kernel: 3, stride: 2, dilation: 1, padBegin: 1, padEnd: 0, ceilMode: true) == 3)
    // 112 → 56 for ResNet's 3×3 stride-2 pad-1 max pool.
    #expect(poolingOutputSize(input: 112, kernel: 3, stride: 2, dilation: 1, padBegin: 1, padEnd: 1, ceilMode: false) == 56)
    // A window starting in the end padding is dropped: input 4, k 2, s 2, pad end 1 → ceil(3/2)+1 = 3,
    // window 2 starts at 4 = input + padBegin → dropped → 2.
    #expect(poolingOutputSize(input: 4, kernel: 2, stride: 2, dilation: 1, padBegin: 0, padEnd: 1, ceilMode: true) == 2)
}

@Test("Pooling matches the naive definition", arguments: poolCases.indices)
func poolingMatchesReference(index: Int) {
    let cs = poolCases[index]
    var rng = TestRNG(seed: UInt64(10 + index))
    let x = randomTensor(cs.shape, &rng)
    let mp = maxPool2D(x, kernelSize: cs.kernel, strides: cs.strides, padding: cs.padding, dilations: cs.dilations,
                       ceilMode: cs.ceilMode)
    #expect(mp == naivePool(x, cs, max: true), "max \(cs)")
    let ap = avgPool2D(x, kernelSize: cs.kernel, strides: cs.strides, padding: cs.padding, dilations: cs.dilations,
                       ceilMode: cs.ceilMode, countIncludePad: cs.countIncludePad)
    #expect(ap.isApproximatelyEqual(to: naivePool(x, cs, max: false), rtol: 1e-5, atol: 1e-6), "avg \(cs)")
}

@Test("Closed-form pooling of a 4×4 ramp")
func closedFormPooling() {
    let x = Tensor(shape: [1, 1, 4, 4], scalars: (0..<16).map(Float.init))
    #expect(maxPool2D(x, kernelSize: (2, 2), strides: (2, 2)).scalars == [5, 7, 13, 15])
    #expect(avgPool2D(x, kernelSize: (2, 2), strides: (2, 2)).scalars == [2.5, 4.5, 10.5, 12.5])
    // Pad 1, k 2, s 2: corner windows hold one element; with count_include_pad they divide by 4.
    let p = Padding2D.symmetric(height: 1, width: 1)
    #expect(avgPool2D(x, kernelSize: (2, 2), strides: (2, 2), padding: p).scalars[0] == 0)
    #expect(avgPool2D(x, kernelSize: (2, 2), strides: (2, 2), padding: p, countIncludePad: true).scalars[2] == 3.0 / 4)
    #expect(globalAvgPool(x).scalars == [7.5])
    #expect(globalMaxPool(x).shape == [1, 1, 1, 1] && globalMaxPool(x).scalars == [15])
}

@Test("Max pooling sends a tied window's gradient to its first maximum (PyTorch's rule)")
func maxPoolTies() {
    // One 2×2 window of equal values: the gradient goes to the top-left element only.
    let x = Tensor(repeating: 1, shape: [1, 1, 2, 2])
    let dy = Tensor(shape: [1, 1, 1, 1], scalars: [3])
    #expect(maxPool2DPullback(x, outputGradient: dy, kernelSize: (2, 2)).scalars == [3, 0, 0, 0])
    // Overlapping windows (k 2, s 1) on [1, 5, 5, 2]: windows 0–1 tie at index 1 and 2 → 1 and 2.
    let row = Tensor(shape: [1, 1, 1, 4], scalars: [1, 5, 5, 2])
    let g = maxPool2DPullback(row, outputGradient: Tensor(shape: [1, 1, 1, 3], scalars: [1, 10, 100]),
                              kernelSize: (1, 2))
    #expect(g.scalars == [0, 11, 100, 0])
    #expect(globalMaxPoolPullback(x, outputGradient: dy).scalars == [3, 0, 0, 0])
}

@Test("Pooling pullbacks match finite differences", arguments: poolCases.indices)
func poolingPullbacks(index: Int) {
    let cs = poolCases[index]
    var rng = TestRNG(seed: UInt64(70 + index))
    let x = distinctTensor(cs.shape, &rng)
    let v = randomTensor(cs.shape, &rng)
    // Max pooling is piecewise linear and the winners are 0.01 apart: with ε = 1e-3, |εv| ≤ 1e-3
    // never swaps a winner, so the quotient is exact up to Float rounding of values ≲ 1 (≈ 1e-7
    // each, /2ε → 5e-5 per output); average pooling is linear. Tolerance: 1e-3·(1 + √m).
    let eps: Float = 1e-3
    let maxF = { (t: Tensor) in maxPool2D(t, kernelSize: cs.kernel, strides: cs.strides, padding: cs.padding,
                                          dilations: cs.dilations, ceilMode: cs.ceilMode) }
    let avgF = { (t: Tensor) in avgPool2D(t, kernelSize: cs.kernel, strides: cs.strides, padding: cs.padding,
                                          dilations: cs.dilations, ceilMode: cs.ceilMode, countIncludePad: cs.countIncludePad) }
    let y = maxF(x)
    let dy = randomTensor(y.shape, &rng)
    let tol = 1e-3 * (1 + Double(y.count).squareRoot())
    let dxMax = maxPool2DPullback(x, outputGradient: dy, kernelSize: cs.kernel, strides: cs.strides, padding: cs.padding,
                                  dilations: cs.dilations, ceilMode: cs.ceilMode)
    let numMax = (testDot(maxF(testAxpy(x, eps, v)), dy) - testDot(maxF(testAxpy(x, -eps, v)), dy)) / Double(2 * eps)
    #expect(abs(testDot(dxMax, v) - numMax) <= tol, "max \(cs)")
    let dxAvg = avgPool2DPullback(inputShape: cs.shape, outputGradient: dy, kernelSize: cs.kernel, strides: cs.strides,
                                  padding: cs.padding, dilations: cs.dilations, ceilMode: cs.ceilMode,
                                  countIncludePad: cs.countIncludePad)
    let numAvg = (testDot(avgF(testAxpy(x, eps, v)), dy) - testDot(avgF(testAxpy(x, -eps, v)), dy)) / Double(2 * eps)
    #expect(abs(testDot(dxAvg, v) - numAvg) <= tol, "avg \(cs)")
}

@Test("Global pooling pullbacks match finite differences")
func globalPoolingPullbacks() {
    var rng = TestRNG(seed: 3)
    for shape in [[2, 3, 5, 6], [1, 4, 7], [1, 2, 3, 2, 2]] {
        let x = distinctTensor(shape, &rng)
        let v = randomTensor(shape, &rng)
        let outShape = [shape[0], shape[1]] + Array(repeating: 1, count: shape.count - 2)
        let dy = randomTensor(outShape, &rng)
        let eps: Float = 1e-3
        #expect(globalAvgPool(x).shape == outShape)
        let numAvg = (testDot(globalAvgPool(testAxpy(x, eps, v)), dy) - testDot(globalAvgPool(testAxpy(x, -eps, v)), dy)) / Double(2 * eps)
        #expect(abs(testDot(globalAvgPoolPullback(inputShape: shape, outputGradient: dy), v) - numAvg) <= 1e-3, "avg \(shape)")
        let numMax = (testDot(globalMaxPool(testAxpy(x, eps, v)), dy) - testDot(globalMaxPool(testAxpy(x, -eps, v)), dy)) / Double(2 * eps)
        #expect(abs(testDot(globalMaxPoolPullback(x, outputGradient: dy), v) - numMax) <= 1e-3, "max \(shape)")
    }
}
