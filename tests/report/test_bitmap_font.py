import numpy as np
import pytest

from mmkeras.report.bitmap_font import ADVANCE, GLYPH_HEIGHT, GLYPHS, draw_text, render_text, text_size


def test_every_glyph_is_5x7_and_distinct():
    assert all(g.shape == (7, 5) for g in GLYPHS.values())
    letters = [GLYPHS[c].tobytes() for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"]
    assert len(set(letters)) == len(letters)


def test_lower_case_and_unknown_characters():
    np.testing.assert_array_equal(render_text("abc"), render_text("ABC"))
    np.testing.assert_array_equal(render_text("\u00e9"), render_text("?"))


def test_sizes_and_scale():
    assert text_size("") == (0, GLYPH_HEIGHT)
    mask = render_text("R@5", scale=3)
    assert mask.shape == (GLYPH_HEIGHT * 3, (3 * ADVANCE - 1) * 3) == text_size("R@5", 3)[::-1]
    with pytest.raises(ValueError, match="scale"):
        render_text("x", scale=0)


def test_draw_text_clips_at_the_edges_and_draws_vertically():
    canvas = np.full((10, 10, 3), 255, np.uint8)
    draw_text(canvas, "WWWW", -3, 5, color=(1, 2, 3))  # partly outside: no error
    assert (canvas == (1, 2, 3)).all(axis=-1).any()
    tall = np.full((40, 12, 3), 255, np.uint8)
    draw_text(tall, "ABC", 2, 2, vertical=True)
    ink = np.argwhere(tall[..., 0] == 0)
    assert ink[:, 0].max() - ink[:, 0].min() > ink[:, 1].max() - ink[:, 1].min()
