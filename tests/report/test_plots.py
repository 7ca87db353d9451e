import numpy as np
import pytest
import tensorflow as tf

from mmkeras.report.plots import GREEN, RED, encode_png, heatmap, image_grid, line_plot, stack


def _decode(png):
    return tf.io.decode_png(png).numpy()


def test_line_plot_draws_every_series_and_round_trips_through_png():
    image = line_plot({"loss": [3.0, 2.0, 1.5, float("nan"), 1.0], "val_loss": [3.1, 2.5]}, title="t", y_label="l")
    assert image.shape == (300, 440, 3)
    np.testing.assert_array_equal(_decode(encode_png(image)), image)
    for color in ((31, 119, 180), (255, 127, 14)):  # the first two series colours
        assert (image == color).all(axis=-1).sum() > 20
    single = line_plot({"loss": [0.5]})  # one epoch, constant value: still a plot with a marker
    assert ((single == (31, 119, 180)).all(axis=-1)).sum() >= 25


def test_line_plot_errors_name_the_argument():
    with pytest.raises(ValueError, match="series"):
        line_plot({})
    with pytest.raises(ValueError, match="series"):
        line_plot({"a": [[1, 2]]})
    with pytest.raises(ValueError, match="width"):
        line_plot({"a": [1, 2]}, width=40, height=40)


def test_heatmap_shades_by_row_share():
    image = heatmap([[9, 1], [0, 0]], ["no", "yes"], ["no", "yes"], title="m", cell_size=30)
    assert image.dtype == np.uint8 and image.ndim == 3
    darkest = image.reshape(-1, 3).sum(axis=1).min()
    assert darkest < 300  # the 90% cell is dark blue
    with pytest.raises(ValueError, match="row_labels"):
        heatmap([[1, 2]], ["a", "b"], ["a", "b"])
    with pytest.raises(ValueError, match="matrix"):
        heatmap([[-1]], ["a"], ["a"])


def test_image_grid_places_images_labels_and_borders():
    images = np.stack([np.full((4, 4, 3), v, np.uint8) for v in (10, 20, 30)])
    grid = image_grid(images, columns=2, labels=["a", "b", "c"], borders=[GREEN, None, RED], scale=3, padding=2)
    assert (grid == GREEN).all(axis=-1).sum() > 0 and (grid == RED).all(axis=-1).sum() > 0
    assert (grid == 20).all(axis=-1).sum() == 12 * 12  # the unframed image, 3x upscaled
    with pytest.raises(ValueError, match="images"):
        image_grid(np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(ValueError, match="labels"):
        image_grid(images, labels=["a"])


def test_stack_and_encode_png_checks():
    out = stack([np.zeros((2, 5, 3), np.uint8), np.ones((3, 2, 3), np.uint8)], spacing=2)
    assert out.shape == (7, 5, 3) and out[4:, 2:].min() == 255
    with pytest.raises(ValueError, match="figures"):
        stack([])
    with pytest.raises(ValueError, match="image"):
        encode_png(np.zeros((2, 2, 3), np.float32))
