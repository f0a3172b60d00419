import TensorCore

/// Runs `body` over `0..<rows` in parallel chunks when the total work (`rows * work` simple
/// operations) is worth more than one thread.
@inline(__always)
func parallelRows(_ rows: Int, work: Int, _ body: (Range<Int>) -> Void) {
    let perRow = max(1, work)
    let minimumRows = max(1, (1 << 16) / perRow)
    parallelFor(rows, minimumChunk: minimumRows, body)
}
