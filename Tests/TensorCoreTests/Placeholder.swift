import Testing
@testable import TensorCore

@Test func placeholderTensorCore() { #expect(true) }
