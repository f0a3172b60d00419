import Testing
@testable import ONNXGraph

@Test func placeholderONNXGraph() { #expect(true) }
