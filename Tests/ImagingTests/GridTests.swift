import Testing
@testable import Imaging

@Suite struct GridTests {
    @Test func gridLaysOutCellsWithPadding() {
        let red = RGBImage(width: 4, height: 3, color: RGBColor(red: 255, green: 0, blue: 0))
        let blue = RGBImage(width: 2, height: 5, color: RGBColor(red: 0, green: 0, blue: 255))
        let g = gridImage([red, blue, red], columns: 2, padding: 1, background: .black)
        // Columns 4 and 2 wide, rows 5 and 3 tall, 1-pixel gaps around and between.
        #expect(g.width == 1 + 4 + 1 + 2 + 1)
        #expect(g.height == 1 + 5 + 1 + 3 + 1)
        #expect(g[x: 0, y: 0] == .black)
        #expect(g[x: 1, y: 2] == red[x: 0, y: 0])          // red centred vertically in a 5-tall row
        #expect(g[x: 1, y: 1] == .black)
        #expect(g[x: 6, y: 1] == blue[x: 0, y: 0])         // blue fills its column: x = 6, 7
        #expect(g[x: 8, y: 1] == .black)
        #expect(g[x: 2, y: 1] == .black)                   // above the shorter red tile
        #expect(g[x: 1, y: 7] == red[x: 0, y: 0])
        #expect(g[x: 7, y: 7] == .black)                   // empty last cell
        let h = horizontalStrip([red, red], padding: 0)
        #expect(h.width == 8 && h.height == 3)
        let v = verticalStrip([red, blue], padding: 2)
        #expect(v.width == 4 + 4 && v.height == 3 + 5 + 6)
    }
}
