"""Plots drawn with NumPy into RGB arrays and written as PNG: no plotting library needed.

`line_plot` (training curves), `heatmap` (confusion matrices), `image_grid`
(image galleries with labels and coloured borders) and `stack` (one figure above
another) return uint8 arrays `[H, W, 3]`; `encode_png` turns one into PNG bytes.
Text is drawn with the 5x7 font of `mmkeras.report.bitmap_font` (capitals only).
"""

import math

import numpy as np

from mmkeras.report.bitmap_font import GLYPH_HEIGHT, draw_text, text_size

WHITE = (255, 255, 255)
BLACK = (0, 0, 0)
GRID = (225, 225, 225)
GREEN = (40, 160, 60)
RED = (210, 50, 40)
SERIES_COLORS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75))
_LOW, _HIGH = np.array([247, 251, 255], np.float32), np.array([8, 48, 107], np.float32)


def _canvas(height, width):
    return np.full((int(height), int(width), 3), 255, np.uint8)


def _fill(canvas, x0, y0, x1, y1, color):
    """Fills the pixel rectangle `[x0, x1) x [y0, y1)`, clipped."""
    h, w = canvas.shape[:2]
    x0, x1 = max(int(x0), 0), min(int(x1), w)
    y0, y1 = max(int(y0), 0), min(int(y1), h)
    if x1 > x0 and y1 > y0:
        canvas[y0:y1, x0:x1] = color


def _frame(canvas, x0, y0, x1, y1, color, thickness=1):
    """Draws the outline of the rectangle `[x0, x1) x [y0, y1)`, `thickness` pixels inwards."""
    t = thickness
    _fill(canvas, x0, y0, x1, y0 + t, color)
    _fill(canvas, x0, y1 - t, x1, y1, color)
    _fill(canvas, x0, y0, x0 + t, y1, color)
    _fill(canvas, x1 - t, y0, x1, y1, color)


def _segment(canvas, x0, y0, x1, y1, color, width=2):
    """Draws a straight line `width` pixels thick from `(x0, y0)` to `(x1, y1)`."""
    steps = 2 * int(max(abs(x1 - x0), abs(y1 - y0))) + 2
    xs = np.rint(np.linspace(x0, x1, steps)).astype(int)
    ys = np.rint(np.linspace(y0, y1, steps)).astype(int)
    h, w = canvas.shape[:2]
    for dy in range(-(width // 2), width - width // 2):
        for dx in range(-(width // 2), width - width // 2):
            px, py = xs + dx, ys + dy
            keep = (px >= 0) & (px < w) & (py >= 0) & (py < h)
            canvas[py[keep], px[keep]] = color


def _nice_step(span, target_ticks=5):
    """A 1/2/5 x 10^k tick step giving about `target_ticks` ticks over `span`."""
    raw = span / max(target_ticks, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    for multiple in (1, 2, 5, 10):
        if multiple * power >= raw:
            return multiple * power
    return 10 * power


def _tick_label(value, step):
    decimals = min(max(0, -math.floor(math.log10(step) + 1e-9)), 6)
    return f"{value:.{decimals}f}"


def _fit_text(text, max_width, scale=1):
    """`text` shortened with `..` so that it fits in `max_width` pixels."""
    text = str(text)
    if text_size(text, scale)[0] <= max_width:
        return text
    while text and text_size(text + "..", scale)[0] > max_width:
        text = text[:-1]
    return text + ".." if text else ""


def line_plot(series, title="", x_label="epoch", y_label="", width=440, height=300):
    """Line chart of one or more series against 1, 2, ..., N (e.g. per-epoch training curves).

    Non-finite values are skipped. Each point carries a marker, so a one-epoch
    curve still shows.

    Args:
        series: dict `{name: sequence of numbers}` (at most 6 series; the legend
            lists them in order).
        title: drawn above the plot.
        x_label: the horizontal axis's label.
        y_label: the vertical axis's label.
        width: image width in pixels.
        height: image height in pixels.

    Returns:
        uint8 array `[height, width, 3]`.

    Example:

    >>> image = line_plot({"loss": [2.0, 1.2, 0.9], "val_loss": [2.1, 1.5, 1.3]}, title="loss")
    >>> image.shape, image.dtype.name
    ((300, 440, 3), 'uint8')
    """
    if not isinstance(series, dict) or not series:
        raise ValueError(f"`series` must be a non-empty dict of name -> values, got {series!r}.")
    if len(series) > len(SERIES_COLORS):
        raise ValueError(f"`series` holds {len(series)} series; at most {len(SERIES_COLORS)} are drawn.")
    values = {}
    for name, ys in series.items():
        array = np.asarray([np.nan if v is None else v for v in ys], dtype=np.float64)
        if array.ndim != 1:
            raise ValueError(f"`series[{name!r}]` must be a 1-D sequence of numbers.")
        values[name] = array
    finite = np.concatenate([v[np.isfinite(v)] for v in values.values()])
    count = max(len(v) for v in values.values())
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if high - low < 1e-12:
        pad = abs(high) * 0.1 or 1.0
        low, high = low - pad, high + pad
    step = _nice_step(high - low)
    low, high = math.floor(low / step) * step, math.ceil(high / step) * step
    y_ticks = np.arange(low, high + step / 2, step)

    canvas = _canvas(height, width)
    label_width = max(text_size(_tick_label(t, step))[0] for t in y_ticks)
    left = label_width + (20 if y_label else 10)
    top, right, bottom = (24 if title else 10), width - 14, height - (34 if x_label else 22)
    if right - left < 40 or bottom - top < 40:
        raise ValueError(f"`width`={width} x `height`={height} is too small for a plot.")
    if title:
        draw_text(canvas, _fit_text(title, width - 8), 6, 7)

    x_low, x_high = 0.5, count + 0.5
    def to_px(x, y):
        px = left + (x - x_low) / (x_high - x_low) * (right - left)
        py = bottom - (y - low) / (high - low) * (bottom - top)
        return px, py

    for tick in y_ticks:
        _, py = to_px(x_low, tick)
        _fill(canvas, left, round(py), right, round(py) + 1, GRID)
        text = _tick_label(tick, step)
        draw_text(canvas, text, left - 5 - text_size(text)[0], round(py) - GLYPH_HEIGHT // 2)
    x_step = max(1, math.ceil(count / 10))
    for tick in range(1, count + 1, x_step):
        px, _ = to_px(tick, low)
        _fill(canvas, round(px), bottom, round(px) + 1, bottom + 4, BLACK)
        draw_text(canvas, str(tick), round(px) - text_size(str(tick))[0] // 2, bottom + 6)
    _fill(canvas, left, top, left + 1, bottom + 1, BLACK)
    _fill(canvas, left, bottom, right, bottom + 1, BLACK)
    if x_label:
        draw_text(canvas, x_label, (left + right - text_size(x_label)[0]) // 2, height - 11)
    if y_label:
        text = _fit_text(y_label, bottom - top)
        draw_text(canvas, text, 3, (top + bottom - text_size(text)[0]) // 2, vertical=True)

    for (name, ys), color in zip(values.items(), SERIES_COLORS):
        points = [to_px(i + 1, y) for i, y in enumerate(ys) if np.isfinite(y)]
        for (xa, ya), (xb, yb) in zip(points, points[1:]):
            _segment(canvas, xa, ya, xb, yb, color)
        for px, py in points:
            _fill(canvas, round(px) - 2, round(py) - 2, round(px) + 3, round(py) + 3, color)

    # Legend, top right inside the axes.
    names = [_fit_text(n, (right - left) // 2) for n in values]
    legend_w = max(text_size(n)[0] for n in names) + 26
    lx, ly = right - legend_w - 4, top + 4
    _fill(canvas, lx, ly, lx + legend_w, ly + 12 * len(names) + 4, WHITE)
    _frame(canvas, lx, ly, lx + legend_w, ly + 12 * len(names) + 4, GRID)
    for i, (name, color) in enumerate(zip(names, SERIES_COLORS)):
        y = ly + 4 + 12 * i
        _fill(canvas, lx + 4, y + 2, lx + 18, y + 5, color)
        draw_text(canvas, name, lx + 22, y)
    return canvas


def heatmap(matrix, row_labels, column_labels, title="", x_label="predicted", y_label="true", cell_size=None):
    """A confusion-matrix style heat map: cells shaded by their share of the row, counts written in.

    Args:
        matrix: non-negative numbers `[R, C]` (counts).
        row_labels: R row names (drawn left of the rows).
        column_labels: C column names (drawn vertically under the columns).
        title: drawn above the map.
        x_label: label under the column names.
        y_label: label left of the row names.
        cell_size: pixels per cell; default from the matrix size (16 to 48).

    Returns:
        uint8 array `[H, W, 3]`.

    Example:

    >>> image = heatmap([[8, 2], [1, 9]], ["no", "yes"], ["no", "yes"], title="match")
    >>> image.ndim, image.dtype.name
    (3, 'uint8')
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.size == 0:
        raise ValueError(f"`matrix` must be a non-empty 2-D array, got shape {matrix.shape}.")
    if not np.all(np.isfinite(matrix)) or np.any(matrix < 0):
        raise ValueError("`matrix` must hold finite, non-negative numbers.")
    rows, cols = matrix.shape
    if len(row_labels) != rows or len(column_labels) != cols:
        raise ValueError(
            f"`row_labels` ({len(row_labels)}) and `column_labels` ({len(column_labels)}) must match "
            f"the matrix shape {matrix.shape}."
        )
    cell = int(cell_size or max(16, min(48, 480 // max(rows, cols))))
    totals = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)

    row_w = max(text_size(str(t))[0] for t in row_labels) + 8
    col_h = max(text_size(str(t))[0] for t in column_labels) + 8
    left = row_w + (14 if y_label else 4)
    top = 24 if title else 6
    width = max(left + cols * cell + 8, text_size(title)[0] + 12)
    height = top + rows * cell + col_h + (16 if x_label else 4)
    canvas = _canvas(height, width)
    if title:
        draw_text(canvas, title, 6, 7)
    for i in range(rows):
        for j in range(cols):
            x, y = left + j * cell, top + i * cell
            color = np.rint(_LOW + share[i, j] * (_HIGH - _LOW)).astype(np.uint8)
            _fill(canvas, x, y, x + cell, y + cell, color)
            if matrix[i, j] > 0:
                value = matrix[i, j]
                text = str(int(value)) if float(value).is_integer() else f"{value:.2f}"
                tw, th = text_size(text)
                if tw <= cell - 2:
                    ink = WHITE if share[i, j] > 0.5 else BLACK
                    draw_text(canvas, text, x + (cell - tw) // 2, y + (cell - th) // 2, ink)
    _frame(canvas, left - 1, top - 1, left + cols * cell + 1, top + rows * cell + 1, BLACK)
    for i, label in enumerate(row_labels):
        tw = text_size(str(label))[0]
        draw_text(canvas, str(label), left - 6 - tw, top + i * cell + (cell - GLYPH_HEIGHT) // 2)
    for j, label in enumerate(column_labels):
        tw = text_size(str(label))[0]
        x = left + j * cell + (cell - GLYPH_HEIGHT) // 2
        draw_text(canvas, str(label), x, top + rows * cell + 5 + (col_h - 8 - tw), vertical=True)
    if x_label:
        draw_text(canvas, x_label, left + (cols * cell - text_size(x_label)[0]) // 2, height - 11)
    if y_label:
        draw_text(canvas, y_label, 3, top + (rows * cell - text_size(y_label)[0]) // 2, vertical=True)
    return canvas


def image_grid(images, columns=None, labels=None, borders=None, title="", scale=2, padding=6):
    """Images side by side in a grid, each optionally labelled and framed in a colour.

    Args:
        images: uint8 images `[N, H, W, 3]` (or a list of equal-sized ones).
        columns: images per row (default: all in one row).
        labels: optional N short strings drawn under the images.
        borders: optional N RGB colours (or None for no frame), 3 pixels wide.
        title: drawn above the grid.
        scale: integer upscaling of each image (nearest neighbour).
        padding: pixels between the images.

    Returns:
        uint8 array `[H', W', 3]`.

    Example:

    >>> images = np.zeros((3, 8, 8, 3), np.uint8)
    >>> image_grid(images, labels=["1", "2", "3"], borders=[GREEN, None, RED]).shape
    (39, 72, 3)
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8 or len(images) == 0:
        raise ValueError(
            f"`images` must be uint8 `[N, H, W, 3]` with N >= 1, got {images.dtype} {images.shape}."
        )
    if not isinstance(scale, int) or scale < 1:
        raise ValueError(f"`scale` must be a positive integer, got {scale!r}.")
    count = len(images)
    for name, values in (("labels", labels), ("borders", borders)):
        if values is not None and len(values) != count:
            raise ValueError(f"`{name}` must have one entry per image ({count}), got {len(values)}.")
    columns = int(columns or count)
    if columns < 1:
        raise ValueError(f"`columns` must be >= 1, got {columns}.")
    rows = math.ceil(count / columns)
    h, w = images.shape[1] * scale, images.shape[2] * scale
    label_h = GLYPH_HEIGHT + 4 if labels is not None else 0
    top = GLYPH_HEIGHT + 8 if title else 0
    cell_h, cell_w = h + label_h + padding, w + padding
    canvas = _canvas(top + rows * cell_h + padding, max(columns * cell_w + padding, text_size(title)[0] + 8))
    if title:
        draw_text(canvas, _fit_text(title, canvas.shape[1] - 8), padding, 4)
    for k in range(count):
        r, c = divmod(k, columns)
        x, y = padding + c * cell_w, top + padding + r * cell_h
        canvas[y : y + h, x : x + w] = np.repeat(np.repeat(images[k], scale, axis=0), scale, axis=1)
        if borders is not None and borders[k] is not None:
            _frame(canvas, x, y, x + w, y + h, borders[k], thickness=3)
        if labels is not None:
            text = _fit_text(labels[k], w)
            draw_text(canvas, text, x + (w - text_size(text)[0]) // 2, y + h + 3)
    return canvas


def stack(figures, spacing=8):
    """Figures one above the other, left-aligned on a white background.

    Args:
        figures: uint8 arrays `[H_i, W_i, 3]`.
        spacing: white pixels between them.

    Example:

    >>> stack([np.zeros((4, 6, 3), np.uint8), np.zeros((2, 3, 3), np.uint8)], spacing=1).shape
    (7, 6, 3)
    """
    if not figures:
        raise ValueError("`figures` must hold at least one image.")
    width = max(f.shape[1] for f in figures)
    height = sum(f.shape[0] for f in figures) + spacing * (len(figures) - 1)
    canvas = _canvas(height, width)
    y = 0
    for figure in figures:
        canvas[y : y + figure.shape[0], : figure.shape[1]] = figure
        y += figure.shape[0] + spacing
    return canvas


def encode_png(image):
    """PNG bytes of a uint8 RGB image `[H, W, 3]`.

    Args:
        image: the image.

    Example:

    >>> encode_png(np.zeros((2, 2, 3), np.uint8))[:4]
    b'\\x89PNG'
    """
    import tensorflow as tf

    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] not in (1, 3, 4):
        raise ValueError(f"`image` must be uint8 `[H, W, 1|3|4]`, got {image.dtype} {image.shape}.")
    return tf.io.encode_png(np.ascontiguousarray(image)).numpy()
