"""The report's figures, drawn with matplotlib on an Agg canvas (no GUI backend is touched).

`line_plot` (training curves), `heatmap` (confusion matrices) and `image_grid` (image
galleries with labels and coloured frames) return a `matplotlib.figure.Figure`; `render`
rasterises one into a uint8 RGB array cropped to the tight bounding box of everything it
draws, so long labels are kept whole rather than cut at the figure's edge. `stack` puts
rendered figures one above another and `encode_png` turns an array into PNG bytes.
"""

import io
import math

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.textpath import TextPath
from PIL import Image

DPI = 100
PAD_INCHES = 0.1
GREEN = (40, 160, 60)
RED = (210, 50, 40)
SERIES_COLORS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75))
HEATMAP_COLORMAP = "Blues"
_GRID = (225, 225, 225)
_MIN_PLOT_SIZE = (160, 120)
_LABEL_POINTS = 9


def _rgb(color):
    """An RGB colour of 0-255 integers as matplotlib's 0-1 floats."""
    return tuple(c / 255 for c in color)


def _text_width(text, points):
    """The width in pixels of `text` set in the default font at `points` points."""
    return TextPath((0, 0), str(text), size=points).get_extents().width * DPI / 72


def _figure(width, height):
    """A white `width` x `height` pixel figure on its own Agg canvas (pyplot is never used).

    The figure holds the plotting area only; titles, tick labels and axis labels lie
    around it and `render` grows the image to take them in.
    """
    figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, facecolor="white")
    FigureCanvasAgg(figure)
    return figure


def line_plot(series, title="", x_label="epoch", y_label="", width=380, height=240):
    """Line chart of one or more series against 1, 2, ..., N (e.g. per-epoch training curves).

    Non-finite values are skipped (the line joins the points either side). Each point
    carries a marker, so a one-epoch curve still shows. `width` x `height` is the plotting
    area; the title and the labels around it are kept whole by `render`.

    Args:
        series: dict `{name: sequence of numbers}` (at most 6 series; the legend
            lists them in order).
        title: drawn above the plot.
        x_label: the horizontal axis's label.
        y_label: the vertical axis's label.
        width: the plotting area's width in pixels (at least 160).
        height: the plotting area's height in pixels (at least 120).

    Returns:
        A `matplotlib.figure.Figure` (see `render`).

    Example:

    >>> figure = line_plot({"loss": [2.0, 1.2, 0.9], "val_loss": [2.1, 1.5, 1.3]}, title="loss")
    >>> [line.get_label() for line in figure.axes[0].get_lines()]
    ['loss', 'val_loss']
    >>> render(figure).shape[2]
    3
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
    if width < _MIN_PLOT_SIZE[0] or height < _MIN_PLOT_SIZE[1]:
        raise ValueError(
            f"`width`={width} x `height`={height} is too small for a plot "
            f"(at least {_MIN_PLOT_SIZE[0]} x {_MIN_PLOT_SIZE[1]} pixels)."
        )
    figure = _figure(width, height)
    axes = figure.add_axes((0, 0, 1, 1))
    for (name, ys), color in zip(values.items(), SERIES_COLORS):
        keep = np.isfinite(ys)
        epochs = np.arange(1, len(ys) + 1)
        axes.plot(epochs[keep], ys[keep], color=_rgb(color), linewidth=2, marker="o", markersize=5, label=str(name))
    count = max(1, max(len(ys) for ys in values.values()))
    axes.set_xlim(0.5, count + 0.5)
    axes.set_xticks(range(1, count + 1, math.ceil(count / 10)))
    if not any(np.isfinite(ys).any() for ys in values.values()):
        axes.set_ylim(0.0, 1.0)
    axes.grid(True, color=_rgb(_GRID))
    axes.set_axisbelow(True)
    axes.set_title(str(title), loc="left")
    axes.set_xlabel(str(x_label))
    axes.set_ylabel(str(y_label))
    axes.legend(loc="upper right", fontsize="small")
    return figure


def heatmap(matrix, row_labels, column_labels, title="", x_label="predicted", y_label="true", cell_size=None):
    """A confusion-matrix style heat map: cells shaded by their share of the row, counts written in.

    The cells are `cell_size` pixels square whatever the labels; the row and column names
    (written in full, the column names slanted) lie outside them and `render` keeps them.

    Args:
        matrix: non-negative numbers `[R, C]` (counts).
        row_labels: R row names (left of the rows).
        column_labels: C column names (under the columns).
        title: drawn above the map.
        x_label: label under the column names.
        y_label: label left of the row names.
        cell_size: pixels per cell (at least 8); default from the matrix size (24 to 48).

    Returns:
        A `matplotlib.figure.Figure` (see `render`).

    Example:

    >>> figure = heatmap([[8, 2], [1, 9]], ["no", "yes"], ["no", "yes"], title="match")
    >>> [t.get_text() for t in figure.axes[0].texts]
    ['8', '2', '1', '9']
    >>> render(figure).dtype.name
    'uint8'
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
    cell = int(cell_size or max(24, min(48, 480 // max(rows, cols))))
    if cell < 8:
        raise ValueError(f"`cell_size` must be at least 8 pixels, got {cell_size!r}.")
    totals = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)

    figure = _figure(cols * cell, rows * cell)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.imshow(share, cmap=HEATMAP_COLORMAP, vmin=0.0, vmax=1.0, interpolation="nearest", aspect="auto")
    points_per_pixel = 72 / DPI
    label_size = min(10.0, 0.75 * cell * points_per_pixel)
    for (i, j), value in np.ndenumerate(matrix):
        if value > 0:
            text = str(int(value)) if float(value).is_integer() else f"{value:.2f}"
            # Digits are about 0.64 em wide: the count fills at most 90% of the cell's width.
            size = min(label_size, 0.9 * cell / (0.64 * len(text)) * points_per_pixel)
            if size >= 4:
                ink = "white" if share[i, j] > 0.5 else "black"
                axes.text(j, i, text, ha="center", va="center", color=ink, fontsize=size)
    axes.set_xticks(range(cols), [str(t) for t in column_labels], fontsize=label_size,
                    rotation=45, ha="right", rotation_mode="anchor")
    axes.set_yticks(range(rows), [str(t) for t in row_labels], fontsize=label_size)
    axes.set_title(str(title), loc="left")
    axes.set_xlabel(str(x_label))
    axes.set_ylabel(str(y_label))
    return figure


def image_grid(images, columns=None, labels=None, borders=None, title="", scale=2, padding=6):
    """Images side by side in a grid, each optionally labelled and framed in a colour.

    Args:
        images: uint8 images `[N, H, W, 3]` (or a list of equal-sized ones).
        columns: images per row (default: all in one row).
        labels: optional N short strings written under the images.
        borders: optional N RGB colours (0-255; or None for no frame), 3 pixels wide.
        title: written above the grid.
        scale: integer upscaling of each image (nearest neighbour).
        padding: pixels between the images.

    Returns:
        A `matplotlib.figure.Figure` (see `render`).

    Example:

    >>> images = np.zeros((3, 8, 8, 3), np.uint8)
    >>> figure = image_grid(images, labels=["1", "2", "3"], borders=[GREEN, None, RED])
    >>> len(figure.axes), figure.axes[0].get_xlabel()
    (3, '1')
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8 or len(images) == 0:
        raise ValueError(
            f"`images` must be uint8 `[N, H, W, 3]` with N >= 1, got {images.dtype} {images.shape}."
        )
    if not isinstance(scale, int) or scale < 1:
        raise ValueError(f"`scale` must be a positive integer, got {scale!r}.")
    if not isinstance(padding, int) or padding < 0:
        raise ValueError(f"`padding` must be a non-negative integer, got {padding!r}.")
    count = len(images)
    for name, values in (("labels", labels), ("borders", borders)):
        if values is not None and len(values) != count:
            raise ValueError(f"`{name}` must have one entry per image ({count}), got {len(values)}.")
    columns = int(columns or count)
    if columns < 1:
        raise ValueError(f"`columns` must be >= 1, got {columns}.")
    rows = math.ceil(count / columns)
    h, w = images.shape[1] * scale, images.shape[2] * scale
    label_h = 18 if labels is not None else 0
    # Every column is as wide as the widest label, so that neighbouring labels never overlap.
    label_w = max((_text_width(label, _LABEL_POINTS) for label in (() if labels is None else labels)), default=0)
    column_w = max(w, math.ceil(label_w) + 4)
    cell_h, cell_w = h + label_h + padding, column_w + padding
    width, height = columns * cell_w + padding, rows * cell_h + padding
    figure = _figure(width, height)
    for k in range(count):
        r, c = divmod(k, columns)
        x, y = padding + c * cell_w + (column_w - w) // 2, padding + r * cell_h
        axes = figure.add_axes((x / width, 1 - (y + h) / height, w / width, h / height))
        axes.imshow(images[k], interpolation="nearest", aspect="auto")
        axes.set_xticks([])
        axes.set_yticks([])
        border = None if borders is None else borders[k]
        for spine in axes.spines.values():
            spine.set_visible(border is not None)
            if border is not None:
                spine.set_color(_rgb(border))
                spine.set_linewidth(3 * 72 / DPI)
        if labels is not None:
            axes.set_xlabel(str(labels[k]), fontsize=_LABEL_POINTS, labelpad=3)
    if title:
        figure.text(padding / width, 1, str(title), ha="left", va="bottom")
    return figure


def render(figure, dpi=DPI):
    """Rasterises a figure (Agg) into RGB, cropped to the tight bounding box of what it draws.

    The crop (`bbox_inches="tight"`, with a white margin of `PAD_INCHES`) grows the image
    to take in any text that sticks out of the figure, so no label is cut off.

    Args:
        figure: a `matplotlib.figure.Figure`, e.g. from `line_plot`, `heatmap` or `image_grid`.
        dpi: pixels per inch (the figures are sized for 100).

    Returns:
        uint8 array `[H, W, 3]`.

    Example:

    >>> image = render(line_plot({"loss": [1.0, 0.5]}))
    >>> image.dtype.name, image.shape[2], image[0, 0].tolist()
    ('uint8', 3, [255, 255, 255])
    """
    if not isinstance(figure, Figure):
        raise ValueError(f"`figure` must be a matplotlib Figure, got {type(figure).__name__}.")
    if not dpi or dpi <= 0:
        raise ValueError(f"`dpi` must be positive, got {dpi!r}.")
    if not isinstance(figure.canvas, FigureCanvasAgg):
        FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", pad_inches=PAD_INCHES, facecolor="white")
    buffer.seek(0)
    with Image.open(buffer) as png:
        return np.asarray(png.convert("RGB"))


def stack(figures, spacing=8):
    """Rendered figures one above the other, left-aligned on a white background.

    Args:
        figures: uint8 arrays `[H_i, W_i, 3]` (e.g. from `render`).
        spacing: white pixels between them.

    Returns:
        uint8 array `[sum(H_i) + spacing * (n - 1), max(W_i), 3]`.

    Example:

    >>> stack([np.zeros((4, 6, 3), np.uint8), np.zeros((2, 3, 3), np.uint8)], spacing=1).shape
    (7, 6, 3)
    """
    if not figures:
        raise ValueError("`figures` must hold at least one image.")
    width = max(f.shape[1] for f in figures)
    height = sum(f.shape[0] for f in figures) + spacing * (len(figures) - 1)
    canvas = np.full((height, width, 3), 255, np.uint8)
    y = 0
    for figure in figures:
        canvas[y : y + figure.shape[0], : figure.shape[1]] = figure
        y += figure.shape[0] + spacing
    return canvas


def encode_png(image):
    """PNG bytes of a uint8 image `[H, W, 1|3|4]`.

    Args:
        image: the image.

    Returns:
        The PNG file's bytes.

    Example:

    >>> encode_png(np.zeros((2, 2, 3), np.uint8))[:4]
    b'\\x89PNG'
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] not in (1, 3, 4):
        raise ValueError(f"`image` must be uint8 `[H, W, 1|3|4]`, got {image.dtype} {image.shape}.")
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image[..., 0] if image.shape[-1] == 1 else image)).save(buffer, "png")
    return buffer.getvalue()
