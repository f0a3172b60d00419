import Testing
@testable import Imaging

@Test func placeholderImaging() { #expect(true) }
