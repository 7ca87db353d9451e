"""A 5x7 bitmap font, so the report's plots carry labels without a plotting library.

Upper-case letters, digits and common punctuation; lower-case text is drawn in
capitals and any other character as `?`. Each glyph is 5 pixels wide and 7 high,
followed by one pixel of spacing; `scale` enlarges both by an integer factor.
"""

import numpy as np

GLYPH_WIDTH, GLYPH_HEIGHT = 5, 7
ADVANCE = GLYPH_WIDTH + 1  # pixels per character at scale 1

# Each glyph: 7 rows of 5 columns, "#" = ink.
_GLYPH_ROWS = {
    "A": (".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"),
    "B": ("####.", "#...#", "#...#", "####.", "#...#", "#...#", "####."),
    "C": (".###.", "#...#", "#....", "#....", "#....", "#...#", ".###."),
    "D": ("####.", "#...#", "#...#", "#...#", "#...#", "#...#", "####."),
    "E": ("#####", "#....", "#....", "####.", "#....", "#....", "#####"),
    "F": ("#####", "#....", "#....", "####.", "#....", "#....", "#...."),
    "G": (".###.", "#...#", "#....", "#.###", "#...#", "#...#", ".####"),
    "H": ("#...#", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"),
    "I": (".###.", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."),
    "J": ("..###", "...#.", "...#.", "...#.", "...#.", "#..#.", ".##.."),
    "K": ("#...#", "#..#.", "#.#..", "##...", "#.#..", "#..#.", "#...#"),
    "L": ("#....", "#....", "#....", "#....", "#....", "#....", "#####"),
    "M": ("#...#", "##.##", "#.#.#", "#.#.#", "#...#", "#...#", "#...#"),
    "N": ("#...#", "#...#", "##..#", "#.#.#", "#..##", "#...#", "#...#"),
    "O": (".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."),
    "P": ("####.", "#...#", "#...#", "####.", "#....", "#....", "#...."),
    "Q": (".###.", "#...#", "#...#", "#...#", "#.#.#", "#..#.", ".##.#"),
    "R": ("####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"),
    "S": (".####", "#....", "#....", ".###.", "....#", "....#", "####."),
    "T": ("#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#.."),
    "U": ("#...#", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."),
    "V": ("#...#", "#...#", "#...#", "#...#", "#...#", ".#.#.", "..#.."),
    "W": ("#...#", "#...#", "#...#", "#.#.#", "#.#.#", "#.#.#", ".#.#."),
    "X": ("#...#", "#...#", ".#.#.", "..#..", ".#.#.", "#...#", "#...#"),
    "Y": ("#...#", "#...#", ".#.#.", "..#..", "..#..", "..#..", "..#.."),
    "Z": ("#####", "....#", "...#.", "..#..", ".#...", "#....", "#####"),
    "0": (".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."),
    "1": ("..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."),
    "2": (".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"),
    "3": ("#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."),
    "4": ("...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."),
    "5": ("#####", "#....", "####.", "....#", "....#", "#...#", ".###."),
    "6": ("..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."),
    "7": ("#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."),
    "8": (".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."),
    "9": (".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."),
    " ": (".....",) * 7,
    ".": (".....", ".....", ".....", ".....", ".....", ".##..", ".##.."),
    ",": (".....", ".....", ".....", ".....", ".##..", "..#..", ".#..."),
    ":": (".....", ".##..", ".##..", ".....", ".##..", ".##..", "....."),
    "-": (".....", ".....", ".....", "#####", ".....", ".....", "....."),
    "_": (".....", ".....", ".....", ".....", ".....", ".....", "#####"),
    "+": (".....", "..#..", "..#..", "#####", "..#..", "..#..", "....."),
    "=": (".....", ".....", "#####", ".....", "#####", ".....", "....."),
    "/": (".....", "....#", "...#.", "..#..", ".#...", "#....", "....."),
    "(": ("...#.", "..#..", ".#...", ".#...", ".#...", "..#..", "...#."),
    ")": (".#...", "..#..", "...#.", "...#.", "...#.", "..#..", ".#..."),
    "%": ("##...", "##..#", "...#.", "..#..", ".#...", "#..##", "...##"),
    "?": (".###.", "#...#", "....#", "...#.", "..#..", ".....", "..#.."),
    "!": ("..#..", "..#..", "..#..", "..#..", "..#..", ".....", "..#.."),
    "'": ("..#..", "..#..", ".#...", ".....", ".....", ".....", "....."),
    "<": ("...#.", "..#..", ".#...", "#....", ".#...", "..#..", "...#."),
    ">": (".#...", "..#..", "...#.", "....#", "...#.", "..#..", ".#..."),
    "@": (".###.", "#...#", "#.###", "#.#.#", "#.###", "#....", ".###."),
    "#": (".#.#.", ".#.#.", "#####", ".#.#.", "#####", ".#.#.", ".#.#."),
    "*": (".....", "..#..", "#.#.#", ".###.", "#.#.#", "..#..", "....."),
}
GLYPHS = {
    char: np.array([[c == "#" for c in row] for row in rows], dtype=bool) for char, rows in _GLYPH_ROWS.items()
}


def text_size(text, scale=1):
    """The `(width, height)` in pixels that `draw_text` covers for one line of `text`.

    Args:
        text: the string.
        scale: integer magnification.

    Example:

    >>> text_size("R@5", scale=2)
    (34, 14)
    """
    if not text:
        return 0, GLYPH_HEIGHT * scale
    return (len(text) * ADVANCE - 1) * scale, GLYPH_HEIGHT * scale


def render_text(text, scale=1):
    """One line of text as a boolean ink mask `[7 * scale, width]`.

    Args:
        text: the string (lower case is drawn in capitals, unknown characters as `?`).
        scale: integer magnification (>= 1).

    Example:

    >>> mask = render_text("Hi")
    >>> mask.shape, int(mask.sum())
    ((7, 11), 28)
    """
    if not isinstance(scale, int) or scale < 1:
        raise ValueError(f"`scale` must be a positive integer, got {scale!r}.")
    width, _ = text_size(text)
    mask = np.zeros((GLYPH_HEIGHT, max(width, 0)), dtype=bool)
    for i, char in enumerate(str(text).upper()):
        glyph = GLYPHS.get(char, GLYPHS["?"])
        mask[:, i * ADVANCE : i * ADVANCE + GLYPH_WIDTH] = glyph
    return np.repeat(np.repeat(mask, scale, axis=0), scale, axis=1)


def draw_text(canvas, text, x, y, color=(0, 0, 0), scale=1, vertical=False):
    """Draws one line of text into an RGB canvas in place; clipped at the canvas edges.

    Args:
        canvas: uint8 array `[H, W, 3]`, modified in place.
        text: the string.
        x: column of the text's left edge.
        y: row of the text's top edge.
        color: RGB ink colour.
        scale: integer magnification.
        vertical: draw the text rotated 90 degrees counter-clockwise (reading
            bottom to top), its bounding box's top-left corner at `(x, y)`.

    Returns:
        The canvas.

    Example:

    >>> canvas = np.full((12, 40, 3), 255, np.uint8)
    >>> _ = draw_text(canvas, "OK", 2, 2)
    >>> int((canvas[..., 0] == 0).sum())
    30
    """
    mask = render_text(text, scale)
    if vertical:
        mask = np.rot90(mask)
    height, width = canvas.shape[:2]
    x, y = int(x), int(y)
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + mask.shape[1], width), min(y + mask.shape[0], height)
    if x1 <= x0 or y1 <= y0:
        return canvas
    region = mask[y0 - y : y1 - y, x0 - x : x1 - x]
    canvas[y0:y1, x0:x1][region] = np.asarray(color, dtype=np.uint8)
    return canvas
