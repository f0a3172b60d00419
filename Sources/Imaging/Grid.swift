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

/// A grid of tiles with text headers: one header per row on the left and one per column on top,
/// as in the method-comparison figures of pytorch-grad-cam's README (rows = images or classes,
/// columns = methods). Header text is drawn with ``textTile(_:font:color:background:padding:width:height:maxWidth:)``:
/// centred, multi-line with `\n`, shortened with "…" when wider than its column.
///
/// - Parameters:
///   - rows: the tiles, row by row; shorter rows leave their last cells empty.
///   - rowHeaders: one header per row (`nil`: no header column).
///   - columnHeaders: one header per tile column (`nil`: no header row).
///   - font: the header font.
///   - padding: gap between cells and around the grid (≥ 0). Default 8.
///   - background: the colour of gaps and headers. Default white.
///   - textColor: the header ink. Default black.
///   - maxRowHeaderWidth: the widest the header column may be, in pixels. Default 240.
/// - Returns: the composite.
/// - Precondition: `rowHeaders?.count == rows.count`, `columnHeaders?.count` equals the number of
///   tile columns (the longest row), `padding >= 0`.
public func captionedGrid(_ rows: [[RGBImage]], rowHeaders: [String]? = nil, columnHeaders: [String]? = nil,
                          font: Font, padding: Int = 8, background: RGBColor = .white,
                          textColor: RGBColor = .black, maxRowHeaderWidth: Int = 240) -> RGBImage {
    let columns = rows.map(\.count).max() ?? 0
    precondition(rowHeaders == nil || rowHeaders?.count == rows.count,
                 "\(rowHeaders?.count ?? 0) row headers for \(rows.count) rows")
    precondition(columnHeaders == nil || columnHeaders?.count == columns,
                 "\(columnHeaders?.count ?? 0) column headers for \(columns) columns")
    let empty = RGBImage(width: 0, height: 0, color: background)
    var columnWidths = [Int](repeating: 0, count: columns)
    for row in rows { for (c, t) in row.enumerated() { columnWidths[c] = max(columnWidths[c], t.width) } }
    let rowHeights = rows.map { $0.map(\.height).max() ?? 0 }
    let headerColumnWidth: Int? = rowHeaders.map { headers in
        let natural = headers.map { h in
            h.split(separator: "\n", omittingEmptySubsequences: false).map { font.width(of: String($0)) }.max() ?? 0
        }.max() ?? 0
        return min(natural + 8, maxRowHeaderWidth)
    }
    var tiles: [RGBImage] = []
    if let columnHeaders {
        if headerColumnWidth != nil { tiles.append(empty) }
        for (c, header) in columnHeaders.enumerated() {
            tiles.append(textTile(header, font: font, color: textColor, background: background,
                                  width: max(1, columnWidths[c])))
        }
    }
    for (r, row) in rows.enumerated() {
        if let rowHeaders, let headerColumnWidth {
            tiles.append(textTile(rowHeaders[r], font: font, color: textColor, background: background,
                                  width: max(1, headerColumnWidth), height: max(1, rowHeights[r])))
        }
        tiles += row
        tiles += [RGBImage](repeating: empty, count: columns - row.count)
    }
    return gridImage(tiles, columns: max(1, columns + (headerColumnWidth == nil ? 0 : 1)), padding: padding,
                     background: background)
}
