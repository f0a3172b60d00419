import Testing
import TensorCore
@testable import Imaging

@Suite struct ColormapTests {
    @Test func jetIsByteExactToOpenCV() throws {
        let expected = try Fixtures.bytes("colormaps/jet_opencv.rgb")
        #expect(expected.count == 768)
        #expect(Colormap.jet.table == expected)
    }

    @Test(arguments: ["turbo", "viridis", "inferno", "magma"])
    func matplotlibTablesMatch(name: String) throws {
        let map = try #require(Colormap(rawValue: name))
        #expect(map.table == (try Fixtures.bytes("colormaps/\(name)_matplotlib.rgb")))
    }

    @Test func levelsTruncateLikeNumPy() {
        #expect(Colormap.level(0) == 0)
        #expect(Colormap.level(1) == 255)
        #expect(Colormap.level(0.999) == 254)          // 254.745 truncates
        #expect(Colormap.level(-0.5) == 0)
        #expect(Colormap.level(.nan) == 0)
        #expect(Colormap.level(3) == 255)
        #expect(Colormap.gray.color(77) == RGBColor(red: 77, green: 77, blue: 77))
        let img = Colormap.jet.colorized(Tensor(shape: [1, 1, 2], scalars: [0, 1]))
        #expect(img.width == 2 && img.height == 1)
        #expect(img[x: 0, y: 0] == Colormap.jet.color(0) && img[x: 1, y: 0] == Colormap.jet.color(255))
    }
}
