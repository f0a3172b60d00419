// Grid compositing for comparison figures (e.g. photo | GradCAM | ScoreCAM | …).

/// Lays tiles out in a grid, row by row.
///
/// Each column is as wide as its widest tile and each row as tall as its tallest; tiles are
/// centred in their cells. `padding` pixels of `background` separate the cells and surround the grid.
///
/// - Parameters:
///   - tiles: the images, in reading order (left to right, then top to bottom).
///   - columns: tiles per row (≥ 1); the last row may be shorter.
///   - padding: gap between cells and around the grid, in pixels (≥ 0). Default 8.
///   - background: the colour of gaps and unused cell area. Default white.
/// - Returns: the composite (a `padding × padding`-sized background image when `tiles` is empty).
/// - Precondition: `columns >= 1`, `padding >= 0`.
public func gridImage(_ tiles: [RGBImage], columns: Int, padding: Int = 8,
                      background: RGBColor = .white) -> RGBImage {
    precondition(columns >= 1 && padding >= 0, "grid needs columns ≥ 1 and padding ≥ 0")
    if tiles.isEmpty { return RGBImage(width: padding, height: padding, color: background) }
    let cols = min(columns, tiles.count)
    let rows = (tiles.count + cols - 1) / cols
    var colWidth = [Int](repeating: 0, count: cols), rowHeight = [Int](repeating: 0, count: rows)
    for (i, t) in tiles.enumerated() {
        colWidth[i % cols] = max(colWidth[i % cols], t.width)
        rowHeight[i / cols] = max(rowHeight[i / cols], t.height)
    }
    let width = colWidth.reduce(0, +) + padding * (cols + 1)
    let height = rowHeight.reduce(0, +) + padding * (rows + 1)
    var canvas = RGBImage(width: width, height: height, color: background)
    var y = padding
    for r in 0..<rows {
        var x = padding
        for c in 0..<cols {
            let i = r * cols + c
            if i < tiles.count {
                let t = tiles[i]
                canvas.paste(t, x: x + (colWidth[c] - t.width) / 2, y: y + (rowHeight[r] - t.height) / 2)
            }
            x += colWidth[c] + padding
        }
        y += rowHeight[r] + padding
    }
    return canvas
}

/// Tiles side by side in one row (``gridImage(_:columns:padding:background:)`` with one row).
public func horizontalStrip(_ tiles: [RGBImage], padding: Int = 8, background: RGBColor = .white) -> RGBImage {
    gridImage(tiles, columns: max(1, tiles.count), padding: padding, background: background)
}

/// Tiles stacked in one column.
public func verticalStrip(_ tiles: [RGBImage], padding: Int = 8, background: RGBColor = .white) -> RGBImage {
    gridImage(tiles, columns: 1, padding: padding, background: background)
}
