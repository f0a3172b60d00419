import Testing
@testable import TensorCore

// Tests of Padding.swift: constant/reflect/edge padding, negative pads, all dtypes, and the
// pullbacks (central finite differences).


/// The source index of output index `i` along an axis, written independently of the kernel:
/// reflection by repeated bouncing, edge by clamping; nil for constant fill.
private func naiveSource(_ i: Int, n: Int, before: Int, mode: PaddingMode) -> Int? {
    var s = i - before
    if s >= 0 && s < n { return s }
    switch mode {
    case .constant: return nil
    case .edge: return min(max(s, 0), n - 1)
    case .reflect:
        if n == 1 { return 0 }
        while s < 0 || s >= n { s = s < 0 ? -s : 2 * (n - 1) - s }
        return s
    }
}

private func naivePad(_ x: Tensor, _ before: [Int], _ after: [Int], _ mode: PaddingMode) -> [Float] {
    let outShape = (0..<x.rank).map { x.shape[$0] + before[$0] + after[$0] }
    let xs = x.scalars
    var fill: Float = 0
    if case .constant(let v) = mode { fill = Float(v) }
    return (0..<outShape.reduce(1, *)).map { flat in
        var r = flat, src = 0, mul = 1
        var ok = true
        for d in stride(from: x.rank - 1, through: 0, by: -1) {
            let i = r % outShape[d]
            r /= outShape[d]
            guard let s = naiveSource(i, n: x.shape[d], before: before[d], mode: mode) else { ok = false; continue }
            src += s * mul
            mul *= x.shape[d]
        }
        return ok ? xs[src] : fill
    }
}

@Test func padMatchesSpecExamples() {
    let x = Tensor(shape: [3, 2], scalars: [1.0, 1.2, 2.3, 3.4, 4.5, 5.7])
    let reflect = padded(x, before: [0, 2], after: [0, 0], mode: .reflect)
    let reflectExpected: [Float] = [1.0, 1.2, 1.0, 1.2, 2.3, 3.4, 2.3, 3.4, 4.5, 5.7, 4.5, 5.7]
    #expect(reflect == Tensor(shape: [3, 4], scalars: reflectExpected))
    let edge = padded(x, before: [0, 2], after: [0, 0], mode: .edge)
    let edgeExpected: [Float] = [1.0, 1.0, 1.0, 1.2, 2.3, 2.3, 2.3, 3.4, 4.5, 4.5, 4.5, 5.7]
    #expect(edge == Tensor(shape: [3, 4], scalars: edgeExpected))
    let constant = padded(x, before: [0, 2], after: [0, 0], mode: .constant(0))
    let constantExpected: [Float] = [0, 0, 1.0, 1.2, 0, 0, 2.3, 3.4, 0, 0, 4.5, 5.7]
    #expect(constant == Tensor(shape: [3, 4], scalars: constantExpected))
    let crop = padded(x, before: [-1, 0], after: [0, -1], mode: .constant(9))
    #expect(crop == Tensor(shape: [2, 1], scalars: [2.3, 4.5]))
}

@Test func padMatchesNaiveReference() {
    var rng = TestRNG(seed: 31)
    let cases: [([Int], [Int], [Int])] = [
        ([2, 3, 5, 6], [0, 0, 2, 1], [0, 0, 1, 3]),
        ([2, 3, 5, 6], [0, 1, -1, 2], [1, -1, 2, -2]),
        ([4, 40], [3, 7], [2, 5]),
        ([3, 3], [5, 6], [7, 4]),            // reflect wider than the extent keeps bouncing
        ([1, 5], [1, 2], [0, 1]),
    ]
    for (shape, before, after) in cases {
        let x = shapingRandomTensor(shape, &rng)
        for mode in [PaddingMode.constant(0.5), .reflect, .edge] {
            let y = padded(x, before: before, after: after, mode: mode)
            let expectedShape: [Int] = (0..<shape.count).map { d in shape[d] + before[d] + after[d] }
            #expect(y.shape == expectedShape)
            #expect(y.scalars == naivePad(x, before, after, mode), "\(shape) \(before) \(after) \(mode)")
        }
    }
}

@Test func padInt64AndBool() {
    let i = Tensor(shape: [3], int64s: [1, 2, 3])
    #expect(padded(i, before: [1], after: [2], mode: .constant(-1)) == Tensor(shape: [6], int64s: [-1, 1, 2, 3, -1, -1]))
    #expect(padded(i, before: [2], after: [1], mode: .reflect) == Tensor(shape: [6], int64s: [3, 2, 1, 2, 3, 2]))
    let b = Tensor(shape: [2], bools: [true, false])
    #expect(padded(b, before: [1], after: [1], mode: .constant(1)).bools == [true, true, false, true])
    #expect(padded(b, before: [0], after: [2], mode: .edge).bools == [true, false, false, false])
}

@Test func padPullbacksMatchFiniteDifferences() {
    var seed: UInt64 = 40
    for mode in [PaddingMode.constant(0.7), .reflect, .edge] {
        for (shape, before, after) in [([2, 3, 4, 5], [0, 0, 1, 2], [0, 0, 2, 1]),
                                       ([3, 4, 5], [1, -1, 3], [-1, 2, 4]),
                                       ([5, 6], [4, 0], [3, 7])] {
            seed += 1
            checkLinearPullback(shape, seed: seed, { padded($0, before: before, after: after, mode: mode) },
                          { padPullback($0, inputShape: shape, before: before, after: after, mode: mode) })
        }
    }
}
