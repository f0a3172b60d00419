import Testing
@testable import TensorCore

// Tests of Indexing.swift: slice (ONNX clamping, negative steps), gather, scatterND, and their
// pullbacks (central finite differences).


/// CPython's `PySlice_AdjustIndices` — an independent formulation of the clamping rules ONNX
/// copies from NumPy — returning the kept indices of an axis of extent n.
///
/// One deliberate difference, where ONNX (spec and ONNX Runtime) differs from NumPy: with a
/// negative step, a start below −n clamps to index 0 (so `x[-20:-20:-1]` keeps element 0), where
/// Python yields nothing.
private func pythonSliceIndices(n: Int, start: Int, end: Int, step: Int) -> [Int] {
    func adjust(_ v: Int, isStart: Bool) -> Int {
        if v < 0 {
            let w = v + n
            return w < 0 ? (step < 0 && !isStart ? -1 : 0) : w
        }
        return v >= n ? (step < 0 ? n - 1 : n) : v
    }
    var i = adjust(start, isStart: true)
    let e = adjust(end, isStart: false)
    var out: [Int] = []
    while step > 0 ? i < e : i > e {
        out.append(i)
        i += step
    }
    return out
}

@Test func sliceClampsLikeTheSpec() {
    let x = Tensor(shape: [10], int64s: (0..<10).map { Int64($0) })
    func s(_ start: Int, _ end: Int, _ step: Int = 1) -> [Int64] {
        x.sliced(starts: [start], ends: [end], steps: [step]).int64s
    }
    #expect(s(2, 8, 3) == [2, 5])
    #expect(s(8, 1, -2) == [8, 6, 4, 2])
    #expect(s(-1, Int(Int64.min), -1) == [9, 8, 7, 6, 5, 4, 3, 2, 1, 0])
    #expect(s(0, Int(Int64.max)) == (0..<10).map { Int64($0) })
    #expect(s(-3, Int(Int64.max)) == [7, 8, 9])
    #expect(s(Int(Int64.max), 0, -1) == [9, 8, 7, 6, 5, 4, 3, 2, 1])
    #expect(s(5, 5) == [])
    #expect(s(20, 30) == [])
    #expect(s(-20, 2) == [0, 1])
    #expect(s(3, -20, -1) == [3, 2, 1, 0])
    #expect(s(-20, -20, -1) == [0])                            // ONNX clamps start to 0, NumPy gives []
    #expect(s(9, Int(Int32.max), -1) == [9, 8, 7, 6, 5, 4, 3, 2, 1, 0])  // ONNX Runtime: INT_MAX end means "all"
    #expect(s(9, Int(Int64.max), -1) == [9, 8, 7, 6, 5, 4, 3, 2, 1, 0])
    for start in -12...12 {
        for end in -12...12 {
            for step in [-3, -2, -1, 1, 2, 4] {
                #expect(s(start, end, step).map { Int($0) } == pythonSliceIndices(n: 10, start: start, end: end, step: step),
                        "start \(start) end \(end) step \(step)")
            }
        }
    }
}

@Test func sliceMultiAxisMatchesReference() {
    var rng = TestRNG(seed: 21)
    let shape = [3, 8, 9, 5]
    let x = shapingRandomTensor(shape, &rng)
    let starts = [1, -1, 7], ends = [Int(Int64.max), 0, -10], steps = [2, -3, -2]
    let realAxes = [1, 3, 2]
    let y = x.sliced(starts: starts, ends: ends, axes: [1, -1, 2], steps: steps)
    var lists = shape.map { Array(0..<$0) }
    for i in 0..<3 {
        lists[realAxes[i]] = pythonSliceIndices(n: shape[realAxes[i]], start: starts[i], end: ends[i], step: steps[i])
    }
    #expect(y.shape == lists.map(\.count))
    let xs = x.scalars
    var expected: [Float] = []
    for a in lists[0] { for b in lists[1] { for c in lists[2] { for d in lists[3] {
        expected.append(xs[((a * 8 + b) * 9 + c) * 5 + d])
    } } } }
    #expect(y.scalars == expected)
    let bools = Tensor(shape: [4], bools: [true, false, false, true]).sliced(starts: [3], ends: [0], steps: [-2])
    #expect(bools.bools == [true, false])
}

@Test func slicePullbackMatchesFiniteDifferences() {
    let shape = [4, 7, 6]
    let ranges = sliceRanges(shape: shape, starts: [1, -1, 0], ends: [4, Int(Int64.min), 6], axes: [0, 1, 2], steps: [2, -2, 1])
    checkLinearPullback(shape, seed: 22, { $0.sliced(ranges) }, { slicePullback($0, inputShape: shape, ranges: ranges) })
    let empty = sliceRanges(shape: shape, starts: [3], ends: [3], axes: [1])
    checkLinearPullback(shape, seed: 23, { $0.sliced(empty) }, { slicePullback($0, inputShape: shape, ranges: empty) })
}

@Test func gatherAnyAxis() {
    let x = Tensor(shape: [3, 4], scalars: (0..<12).map(Float.init))
    let rows = x.gathered(indices: Tensor(shape: [2], int64s: [2, -3]), alongAxis: 0)
    #expect(rows == Tensor(shape: [2, 4], scalars: [8, 9, 10, 11, 0, 1, 2, 3]))
    let cols = x.gathered(indices: Tensor(shape: [2, 2], int64s: [3, 0, -1, 1]), alongAxis: -1)
    #expect(cols.shape == [3, 2, 2])
    #expect(cols.scalars == [3, 0, 3, 1, 7, 4, 7, 5, 11, 8, 11, 9])
    let scalarIndex = x.gathered(indices: Tensor(shape: [], int64s: [1]), alongAxis: 1)
    #expect(scalarIndex == Tensor(shape: [3], scalars: [1, 5, 9]))
    // Shape arithmetic: Gather(Shape(x), 0) on Int64.
    let shape = Tensor(shape: [4], int64s: [1, 3, 224, 224])
    #expect(shape.gathered(indices: Tensor(shape: [], int64s: [-1]), alongAxis: 0) == Tensor(shape: [], int64s: [224]))
    let mask = Tensor(shape: [3], bools: [true, false, true]).gathered(indices: Tensor(shape: [2], int64s: [1, 2]), alongAxis: 0)
    #expect(mask.bools == [false, true])
    #expect(x.gathered(indices: Tensor(shape: [0], int64s: []), alongAxis: 0).shape == [0, 4])
}

@Test func gatherLargeMatchesReference() {
    var rng = TestRNG(seed: 24)
    let table = shapingRandomTensor([1000, 64], &rng)
    let idx = (0..<500).map { _ in Int64.random(in: -1000..<1000, using: &rng) }
    let y = table.gathered(indices: Tensor(shape: [500], int64s: idx), alongAxis: 0)
    let t = table.scalars
    let expected = idx.flatMap { i -> [Float] in
        let r = Int(i < 0 ? i + 1000 : i)
        return Array(t[(r * 64)..<(r * 64 + 64)])
    }
    #expect(y.scalars == expected)
}

@Test func gatherPullbackAccumulatesRepeats() {
    let indices = Tensor(shape: [2, 3], int64s: [0, 2, 0, -1, 1, 2])
    checkLinearPullback([2, 3, 4], seed: 25, { $0.gathered(indices: indices, alongAxis: 1) },
                  { gatherPullback($0, indices: indices, alongAxis: 1, inputShape: [2, 3, 4]) })
    let g = gatherPullback(Tensor(repeating: 1, shape: [2, 3]), indices: indices, alongAxis: 0, inputShape: [3])
    #expect(g.scalars == [2, 1, 3])
}

@Test func scatterNDWritesSlices() {
    // The ONNX spec's example 2.
    let data = Tensor(shape: [4, 4, 4], scalars: (0..<64).map { Float([1, 2, 3, 4, 5, 6, 7, 8, 8, 7, 6, 5, 4, 3, 2, 1][$0 % 16]) })
    let indices = Tensor(shape: [2, 1], int64s: [0, 2])
    let updates = Tensor(shape: [2, 4, 4], scalars: (0..<16).map { _ in Float(5) } + (0..<16).map { _ in Float(1) })
    let y = scatteredND(data, indices: indices, updates: updates)
    let ys = y.scalars
    #expect(ys[0..<16].allSatisfy { $0 == 5 })
    #expect(Array(ys[16..<32]) == Array(data.scalars[16..<32]))
    #expect(ys[32..<48].allSatisfy { $0 == 1 })
    // Element-wise with Int64 data and a negative index.
    let d = Tensor(shape: [2, 3], int64s: [1, 2, 3, 4, 5, 6])
    let r = scatteredND(d, indices: Tensor(shape: [2, 2], int64s: [0, 1, -1, -1]), updates: Tensor(shape: [2], int64s: [20, 60]))
    #expect(r == Tensor(shape: [2, 3], int64s: [1, 20, 3, 4, 5, 60]))
    let add = scatteredND(d, indices: Tensor(shape: [2, 2], int64s: [0, 0, 0, 0]), updates: Tensor(shape: [2], int64s: [10, 100]),
                          reduction: .add)
    #expect(add.int64s == [111, 2, 3, 4, 5, 6])
    #expect(d.int64s == [1, 2, 3, 4, 5, 6])   // the input is untouched (copy-on-write)
}

@Test func scatterNDPullbackMatchesFiniteDifferences() {
    let indices = Tensor(shape: [2, 1], int64s: [2, 0])
    var rng = TestRNG(seed: 26)
    let updates = shapingRandomTensor([2, 5], &rng)
    checkLinearPullback([4, 5], seed: 27, { scatteredND($0, indices: indices, updates: updates) },
                  { scatterNDPullback($0, indices: indices, updatesShape: [2, 5]).data })
    let data = shapingRandomTensor([4, 5], &rng)
    checkLinearPullback([2, 5], seed: 28, { scatteredND(data, indices: indices, updates: $0, reduction: .add) },
                  { scatterNDPullback($0, indices: indices, updatesShape: [2, 5], reduction: .add).updates })
}
