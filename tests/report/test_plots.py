import matplotlib
import numpy as np
import pytest
import tensorflow as tf
from matplotlib.text import Text

from mmkeras.report.plots import (
    DPI,
    GREEN,
    HEATMAP_COLORMAP,
    PAD_INCHES,
    RED,
    SERIES_COLORS,
    encode_png,
    heatmap,
    image_grid,
    line_plot,
    render,
    stack,
)

LONG_LABELS = ["TOP LEFT", "MIDDLE LEFT", "BOTTOM RIGHT CORNER", "no"]


def _decode(png):
    return tf.io.decode_png(png).numpy()


def _pixels(image, color, tolerance=2):
    """How many pixels of `image` are `color`, give or take `tolerance` per channel."""
    return int((np.abs(image.astype(int) - np.asarray(color, int)).max(axis=-1) <= tolerance).sum())


def test_line_plot_draws_every_series_and_round_trips_through_png():
    figure = line_plot({"loss": [3.0, 2.0, 1.5, float("nan"), 1.0], "val_loss": [3.1, 2.5]}, title="t", y_label="l")
    lines = figure.axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["loss", "val_loss"]
    np.testing.assert_array_equal(lines[0].get_xdata(), [1, 2, 3, 5])  # the NaN epoch is skipped
    image = render(figure)
    # The 380 x 240 pixel plotting area, and the title and labels around it.
    assert image.dtype == np.uint8 and 250 <= image.shape[0] <= 350 and 400 <= image.shape[1] <= 500
    np.testing.assert_array_equal(_decode(encode_png(image)), image)
    for color in SERIES_COLORS[:2]:
        assert _pixels(image, color) > 20
    single = render(line_plot({"loss": [0.5]}))  # one epoch, constant value: still a plot with a marker
    assert _pixels(single, SERIES_COLORS[0]) >= 15


def test_line_plot_errors_name_the_argument():
    with pytest.raises(ValueError, match="series"):
        line_plot({})
    with pytest.raises(ValueError, match="series"):
        line_plot({"a": [[1, 2]]})
    with pytest.raises(ValueError, match="series"):
        line_plot({str(i): [1.0] for i in range(len(SERIES_COLORS) + 1)})
    with pytest.raises(ValueError, match="width"):
        line_plot({"a": [1, 2]}, width=40, height=40)


def test_heatmap_shades_by_row_share_and_writes_the_counts():
    figure = heatmap([[9, 1], [0, 0]], ["no", "yes"], ["no", "yes"], title="m", cell_size=30)
    assert [t.get_text() for t in figure.axes[0].texts] == ["9", "1"]
    image = render(figure)
    assert image.dtype == np.uint8 and image.ndim == 3
    dark = np.rint(np.asarray(matplotlib.colormaps[HEATMAP_COLORMAP](0.9)[:3]) * 255)
    assert dark.sum() < 300  # the 90% cell is dark blue ...
    assert _pixels(image, dark) > 600  # ... and fills most of its 30 x 30 pixels (less the "9")
    with pytest.raises(ValueError, match="row_labels"):
        heatmap([[1, 2]], ["a", "b"], ["a", "b"])
    with pytest.raises(ValueError, match="matrix"):
        heatmap([[-1]], ["a"], ["a"])
    with pytest.raises(ValueError, match="cell_size"):
        heatmap([[1]], ["a"], ["a"], cell_size=2)


def test_image_grid_places_images_labels_and_borders():
    images = np.stack([np.full((4, 4, 3), v, np.uint8) for v in (10, 20, 30)])
    figure = image_grid(images, columns=2, labels=["a", "b", "c"], borders=[GREEN, None, RED], scale=3, padding=2)
    assert [axes.get_xlabel() for axes in figure.axes] == ["a", "b", "c"]
    first, second, third = (axes.get_position() for axes in figure.axes)
    assert first.y0 == second.y0 > third.y0 and first.x0 == third.x0 < second.x0  # two columns
    grid = render(figure)
    assert _pixels(grid, GREEN) > 0 and _pixels(grid, RED) > 0
    assert _pixels(grid, (20, 20, 20), tolerance=0) == 12 * 12  # the unframed image, 3x upscaled
    with pytest.raises(ValueError, match="images"):
        image_grid(np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(ValueError, match="labels"):
        image_grid(images, labels=["a"])
    with pytest.raises(ValueError, match="scale"):
        image_grid(images, scale=0)


def _long_heatmap():
    return heatmap(np.arange(16).reshape(4, 4), LONG_LABELS, LONG_LABELS, title="a long title: answer head (test)",
                   cell_size=16)


def _long_line_plot():
    series = {"BOTTOM RIGHT CORNER loss": [3.0, 2.0, 1.0], "MIDDLE LEFT loss": [2.5, 2.2, 2.0]}
    return line_plot(series, title="TOP LEFT: a long title of a small training-loss plot",
                     x_label="epoch (MIDDLE LEFT)", y_label="loss (BOTTOM RIGHT CORNER)", width=200, height=150)


def _long_image_grid():
    return image_grid(np.zeros((2, 8, 8, 3), np.uint8), labels=["MIDDLE LEFT", "BOTTOM RIGHT CORNER"],
                      borders=[GREEN, None], title="query: TOP LEFT MIDDLE LEFT BOTTOM RIGHT CORNER")


@pytest.mark.parametrize("make", [_long_heatmap, _long_line_plot, _long_image_grid])
def test_long_labels_are_written_in_full_and_not_clipped(make):
    figure = make()
    image = render(figure)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    texts = [t for t in figure.findobj(Text) if t.get_visible() and t.get_text()]
    written = {t.get_text() for t in texts}
    assert any(label in text for text in written for label in LONG_LABELS[:3])
    if make is _long_heatmap:
        assert written >= set(LONG_LABELS)  # every row and column name, not shortened
    # What `render` saves: the figure's tight bounding box plus the margin, in pixels.
    saved = figure.get_tightbbox(renderer).padded(PAD_INCHES).transformed(figure.dpi_scale_trans)
    for text in texts:
        extent = text.get_window_extent(renderer)
        inside = saved.x0 <= extent.x0 and extent.x1 <= saved.x1 and saved.y0 <= extent.y0 and extent.y1 <= saved.y1
        assert inside, f"{text.get_text()!r} at {extent} lies outside the saved area {saved}"
    # No text is written over another (boxes of slanted text overlap where the ink does not).
    upright = [t for t in texts if t.get_rotation() % 90 == 0]
    for i, first in enumerate(upright):
        for second in upright[:i]:
            overlap = first.get_window_extent(renderer).overlaps(second.get_window_extent(renderer))
            assert not overlap, (first.get_text(), second.get_text())
    assert abs(image.shape[0] - saved.height) <= 1 and abs(image.shape[1] - saved.width) <= 1
    margin = int(PAD_INCHES * DPI) - 2  # nothing is cut at the image's edges: they stay white
    for edge in (image[:margin], image[-margin:], image[:, :margin], image[:, -margin:]):
        assert edge.min() == 255


def test_render_stack_and_encode_png_checks():
    with pytest.raises(ValueError, match="figure"):
        render(np.zeros((2, 2, 3), np.uint8))
    out = stack([np.zeros((2, 5, 3), np.uint8), np.ones((3, 2, 3), np.uint8)], spacing=2)
    assert out.shape == (7, 5, 3) and out[4:, 2:].min() == 255
    with pytest.raises(ValueError, match="figures"):
        stack([])
    with pytest.raises(ValueError, match="image"):
        encode_png(np.zeros((2, 2, 3), np.float32))
    grey = np.full((3, 4, 1), 7, np.uint8)
    np.testing.assert_array_equal(_decode(encode_png(grey)), grey)
