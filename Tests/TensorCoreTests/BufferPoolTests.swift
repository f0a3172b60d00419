import Testing
@testable import TensorCore

/// The buffer cache: freed blocks come back for the same size, the cache never exceeds its
/// capacity, and the least recently freed blocks are the ones released when it would.
@Suite struct BufferPoolTests {
    @Test func reusesFreedBlocksOfTheSameSize() {
        let pool = BufferPool(capacity: 1 << 20)
        let a = pool.allocate(byteCount: 8192)
        pool.release(a, byteCount: 8192)
        #expect(pool.cachedBytes == 8192)
        #expect(pool.allocate(byteCount: 8192) == a)
        #expect(pool.cachedBytes == 0)
        pool.release(a, byteCount: 8192)
    }

    @Test func evictsTheLeastRecentlyFreedBlocks() {
        let block = 64 << 10
        let pool = BufferPool(capacity: 4 * block)
        let old = (0..<4).map { _ in pool.allocate(byteCount: block) }
        for p in old { pool.release(p, byteCount: block) }
        #expect(pool.cachedBytes == 4 * block)
        // Two blocks of another size: the two oldest of the first size make room.
        let other = 2 * block
        let fresh = pool.allocate(byteCount: other)
        pool.release(fresh, byteCount: other)
        #expect(pool.cachedBytes == 4 * block)
        // The newest two of the first size are still cached (handed out newest first).
        let a = pool.allocate(byteCount: block), b = pool.allocate(byteCount: block)
        #expect(Set([a, b]) == Set([old[2], old[3]]))
        #expect(pool.allocate(byteCount: other) == fresh)
        #expect(pool.cachedBytes == 0)
        // Blocks handed out again and freed again are not evicted twice.
        for p in [a, b] { pool.release(p, byteCount: block) }
        pool.release(fresh, byteCount: other)
        let big = pool.allocate(byteCount: 3 * block)
        pool.release(big, byteCount: 3 * block)
        #expect(pool.cachedBytes <= 4 * block)
        #expect(pool.allocate(byteCount: 3 * block) == big)
        pool.release(big, byteCount: 3 * block)
    }

    @Test func blocksLargerThanTheCapacityAreNotCached() {
        let pool = BufferPool(capacity: 1 << 16)
        let p = pool.allocate(byteCount: 1 << 17)
        pool.release(p, byteCount: 1 << 17)
        #expect(pool.cachedBytes == 0)
    }
}
