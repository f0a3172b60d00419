import Testing
@testable import TensorCore

// Tests of Shaping.swift: transpose, concatenate, split, expand, tile (forward against naive
// index-arithmetic references, pullbacks against central finite differences).


private func naiveTranspose(_ x: Tensor, _ perm: [Int]) -> [Float] {
    let outShape = perm.map { x.shape[$0] }
    let xs = x.scalars
    return (0..<x.count).map { i in
        let o = shapingUnravel(i, outShape)
        var src = [Int](repeating: 0, count: x.rank)
        for d in 0..<perm.count { src[perm[d]] = o[d] }
        return xs[shapingRavel(src, x.shape)]
    }
}

@Test func transposeMatchesNaiveReference() {
    var rng = TestRNG(seed: 1)
    let cases: [([Int], [Int])] = [
        ([2, 3], [1, 0]),
        ([70, 45], [1, 0]),                       // tiled 2-D path with ragged tiles
        ([2, 3, 5, 7], [0, 2, 3, 1]),             // NCHW → NHWC
        ([2, 5, 7, 3], [0, 3, 1, 2]),             // NHWC → NCHW
        ([2, 4, 6, 8], [0, 2, 1, 3]),             // ViT head split: rows copy
        ([3, 4, 5], [2, 0, 1]),
        ([2, 3, 4, 5, 6], [4, 1, 3, 0, 2]),
        ([1, 64, 1, 50], [0, 3, 2, 1]),           // unit dims dropped
        ([5], [0]),
        ([], []),
    ]
    for (shape, perm) in cases {
        let x = shapingRandomTensor(shape, &rng)
        let y = x.transposed(permutation: perm)
        #expect(y.shape == perm.map { shape[$0] })
        #expect(y.scalars == naiveTranspose(x, perm), "shape \(shape) perm \(perm)")
    }
    let m = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
    #expect(m.transposed() == Tensor(shape: [3, 2], scalars: [1, 4, 2, 5, 3, 6]))
}

@Test func transposeLargeMultiThreaded() {
    var rng = TestRNG(seed: 2)
    let x = shapingRandomTensor([1, 96, 56, 56], &rng)
    let y = x.transposed(permutation: [0, 2, 3, 1])
    #expect(y.scalars == naiveTranspose(x, [0, 2, 3, 1]))
    #expect(y.transposed(permutation: [0, 3, 1, 2]) == x)
}

@Test func transposeInt64AndBool() {
    let a = Tensor(shape: [2, 3], int64s: [1, 2, 3, 4, 5, Int64.max])
    #expect(a.transposed() == Tensor(shape: [3, 2], int64s: [1, 4, 2, 5, 3, Int64.max]))
    let b = Tensor(shape: [2, 2], bools: [true, false, false, false])
    #expect(b.transposed(permutation: [1, 0]).bools == [true, false, false, false])
    let c = Tensor(shape: [1, 2], bools: [false, true])
    #expect(c.transposed().bools == [false, true])
}

@Test func transposePullbackMatchesFiniteDifferences() {
    checkLinearPullback([2, 3, 4, 5], seed: 3, { $0.transposed(permutation: [0, 2, 3, 1]) },
                  { transposePullback($0, permutation: [0, 2, 3, 1]) })
    checkLinearPullback([3, 4, 5], seed: 4, { $0.transposed(permutation: [2, 0, 1]) },
                  { transposePullback($0, permutation: [2, 0, 1]) })
}

@Test func concatenateAndSplit() {
    let a = Tensor(shape: [2, 2], scalars: [1, 2, 3, 4])
    let b = Tensor(shape: [2, 1], scalars: [5, 6])
    #expect(concatenated([a, b], alongAxis: 1) == Tensor(shape: [2, 3], scalars: [1, 2, 5, 3, 4, 6]))
    #expect(concatenated([a, b.reshaped(to: [1, 2])], alongAxis: -2)
            == Tensor(shape: [3, 2], scalars: [1, 2, 3, 4, 5, 6]))
    let empty = Tensor(zeros: [2, 0])
    #expect(concatenated([empty, b, empty], alongAxis: 1) == b)
    let i = concatenated([Tensor(shape: [2], int64s: [1, 2]), Tensor(shape: [1], int64s: [-1])], alongAxis: 0)
    #expect(i == Tensor(shape: [3], int64s: [1, 2, -1]))
    let bools = concatenated([Tensor(shape: [1], bools: [true]), Tensor(shape: [2], bools: [false, true])], alongAxis: 0)
    #expect(bools.bools == [true, false, true])

    let x = Tensor(shape: [2, 5], scalars: (0..<10).map(Float.init))
    let parts = x.split(sizes: [2, 0, 3], alongAxis: -1)
    #expect(parts.map(\.shape) == [[2, 2], [2, 0], [2, 3]])
    #expect(parts[0].scalars == [0, 1, 5, 6])
    #expect(parts[2].scalars == [2, 3, 4, 7, 8, 9])
    #expect(concatenated(parts, alongAxis: 1) == x)
}

@Test func concatenateLargeMatchesReference() {
    var rng = TestRNG(seed: 5)
    let parts = [shapingRandomTensor([1, 64, 40, 40], &rng), shapingRandomTensor([1, 32, 40, 40], &rng), shapingRandomTensor([1, 16, 40, 40], &rng)]
    let y = concatenated(parts, alongAxis: 1)
    #expect(y.scalars == parts.flatMap(\.scalars))
    // Concatenation along the last axis (many short rows) of the transposed parts.
    let z = concatenated(parts.map { $0.reshaped(to: [$0.shape[1], 1600]).transposed() }, alongAxis: 1)
    #expect(z.transposed().scalars == y.scalars)
}

@Test func concatenateAndSplitPullbacks() {
    var rng = TestRNG(seed: 6)
    let other = shapingRandomTensor([3, 2, 4], &rng)
    checkLinearPullback([3, 5, 4], seed: 7, { concatenated([$0, other, $0], alongAxis: 1) }, { g in
        let p = concatenatePullback(g, sizes: [5, 2, 5], alongAxis: 1)
        return testAxpy(p[0], 1, p[2])
    })
    checkLinearPullback([4, 6], seed: 8, { x in
        let p = x.split(sizes: [1, 3, 2], alongAxis: 1)
        return concatenated([p[2], p[0]], alongAxis: 1)   // uses pieces 2 and 0, drops 1
    }, { g in
        let gp = g.split(sizes: [2, 1], alongAxis: 1)
        return splitPullback([gp[1], nil, gp[0]], sizes: [1, 3, 2], alongAxis: 1, inputShape: [4, 6])
    })
}

@Test func expandBroadcasts() {
    let x = Tensor(shape: [3, 1], scalars: [1, 2, 3])
    let y = x.expanded(toShape: [2, 3, 4])
    #expect(y.shape == [2, 3, 4])
    let expected: [Float] = (0..<24).map { i in Float((i / 4) % 3 + 1) }
    #expect(y.scalars == expected)
    let s = Tensor(shape: [], int64s: [7]).expanded(toShape: [2, 2])
    #expect(s == Tensor(shape: [2, 2], int64s: [7, 7, 7, 7]))
    #expect(Tensor(shape: [1], bools: [true]).expanded(toShape: [3]).bools == [true, true, true])
    #expect(Tensor(zeros: [1, 2]).expanded(toShape: [0, 2]).shape == [0, 2])
}

@Test func expandPullbackMatchesFiniteDifferences() {
    checkLinearPullback([3, 1, 5], seed: 9, { $0.expanded(toShape: [2, 3, 4, 5]) }, { expandPullback($0, inputShape: [3, 1, 5]) })
    checkLinearPullback([1, 16, 1, 1], seed: 10, { $0.expanded(toShape: [2, 16, 7, 7]) },
                  { expandPullback($0, inputShape: [1, 16, 1, 1]) })
    checkLinearPullback([4], seed: 11, { $0.expanded(toShape: [3, 4]) }, { expandPullback($0, inputShape: [4]) })
    checkLinearPullback([], seed: 12, { $0.expanded(toShape: [3, 2]) }, { expandPullback($0, inputShape: []) })
}

@Test func tileRepeats() {
    let x = Tensor(shape: [2, 2], scalars: [1, 2, 3, 4])
    #expect(x.tiled(multiples: [1, 2]) == Tensor(shape: [2, 4], scalars: [1, 2, 1, 2, 3, 4, 3, 4]))
    #expect(x.tiled(multiples: [2, 1]) == Tensor(shape: [4, 2], scalars: [1, 2, 3, 4, 1, 2, 3, 4]))
    #expect(x.tiled(multiples: [0, 3]).shape == [0, 6])
    #expect(Tensor(shape: [2], int64s: [5, 6]).tiled(multiples: [2]) == Tensor(shape: [4], int64s: [5, 6, 5, 6]))
    checkLinearPullback([2, 3, 2], seed: 13, { $0.tiled(multiples: [2, 1, 3]) },
                  { tilePullback($0, inputShape: [2, 3, 2], multiples: [2, 1, 3]) })
}

@Test func reshapeNeverCopies() {
    let x = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
    let y = x.reshaped(to: [3, 2])
    #expect(y.scalars == x.scalars)
    #expect(y.storage === x.storage)
}

