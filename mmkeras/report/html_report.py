"""A self-contained HTML page: sections of text, tables and images inlined as PNG data URIs."""

import base64
import html
import html.parser

import numpy as np

from mmkeras.report.plots import encode_png

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 72rem;
       padding: 0 1rem; color: #1b1f24; line-height: 1.45; }
h1 { margin-bottom: 0.2rem; } h2 { border-bottom: 1px solid #d0d7de; padding-bottom: 0.2rem; margin-top: 2.2rem; }
nav a { margin-right: 1rem; }
table { border-collapse: collapse; margin: 0.8rem 0; }
th, td { border: 1px solid #d0d7de; padding: 0.25rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 0.8rem 0; }
figure img { max-width: 100%; border: 1px solid #eaeef2; }
figcaption { font-size: 0.9rem; color: #57606a; }
.gallery { display: flex; flex-wrap: wrap; gap: 1rem; }
.card { width: 15rem; border: 1px solid #d0d7de; border-radius: 6px; padding: 0.5rem; font-size: 0.85rem; }
.card img { width: 100%; image-rendering: pixelated; }
.card ul { padding-left: 1.1rem; margin: 0.3rem 0; color: #57606a; }
.muted { color: #57606a; }
"""


def png_data_uri(image):
    """A `data:image/png;base64,...` URI of a uint8 image `[H, W, 3]` or of PNG bytes.

    Args:
        image: a uint8 NumPy image, or bytes already PNG-encoded.

    Example:

    >>> png_data_uri(np.zeros((1, 1, 3), np.uint8))[:30]
    'data:image/png;base64,iVBORw0K'
    """
    data = image if isinstance(image, bytes) else encode_png(image)
    if not data.startswith(b"\x89PNG"):
        raise ValueError("`image` bytes must be PNG-encoded.")
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _format(value):
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.3f}"
    return str(value)


def _attributes(attributes):
    return "".join(f' {html.escape(str(k))}="{html.escape(str(v))}"' for k, v in (attributes or {}).items())


class HtmlReport:
    """Builds one self-contained HTML page (no external files: images are base64 PNG data URIs).

    Content goes into the current section (`section` starts one, with an anchor
    listed in the page's navigation bar). All text is HTML-escaped.

    Args:
        title: the page title and top heading.
        subtitle: optional line under the heading.

    Example:

    >>> report = HtmlReport("demo")
    >>> report.section("Results", "results").table(["metric", "value"], [["t2i R@5", 0.4213]])
    >>> report.image(np.zeros((4, 4, 3), np.uint8), alt="black", caption="a black square")
    >>> page = report.render()
    >>> '<section id="results">' in page, "0.421" in page, "data:image/png;base64," in page
    (True, True, True)
    """

    def __init__(self, title, subtitle=None):
        self.title = str(title)
        self.subtitle = subtitle
        self._sections = []  # (title, anchor, [html parts])

    def _current(self):
        if not self._sections:
            self.section("Contents", "contents")
        return self._sections[-1][2]

    def section(self, title, anchor):
        """Starts a new section `<section id=anchor>` headed `title`; returns the report.

        Args:
            title: the section heading.
            anchor: its HTML id (letters, digits, `-` and `_`).
        """
        anchor = str(anchor)
        if not anchor or not all(c.isalnum() or c in "-_" for c in anchor):
            raise ValueError(f"`anchor` must be letters, digits, '-' or '_', got {anchor!r}.")
        if any(a == anchor for _, a, _ in self._sections):
            raise ValueError(f"`anchor` {anchor!r} is already used by another section.")
        self._sections.append((str(title), anchor, []))
        return self

    def heading(self, text):
        """Adds a sub-heading (`<h3>`) to the current section.

        Args:
            text: the heading.
        """
        self._current().append(f"<h3>{html.escape(str(text))}</h3>")

    def paragraph(self, text, muted=False):
        """Adds a paragraph of plain text.

        Args:
            text: the text (escaped).
            muted: render it in grey (for notes).
        """
        css = ' class="muted"' if muted else ""
        self._current().append(f"<p{css}>{html.escape(str(text))}</p>")

    def preformatted(self, text):
        """Adds a block of monospaced text (e.g. the printed results table).

        Args:
            text: the text (escaped).
        """
        self._current().append(f"<pre>{html.escape(str(text))}</pre>")

    def table(self, header, rows, row_attributes=None):
        """Adds a table; floats are shown with 3 decimals and right-aligned.

        Args:
            header: column names.
            rows: lists of cells (str, int, float or None), one list per row, each as long as `header`.
            row_attributes: optional list (one per row) of dicts of extra `<tr>` attributes,
                e.g. `{"data-metric": "t2i_r5"}`, so a program can read the page back.
        """
        header = list(header)
        rows = [list(r) for r in rows]
        if row_attributes is not None and len(row_attributes) != len(rows):
            raise ValueError(f"`row_attributes` must have one entry per row ({len(rows)}), got {len(row_attributes)}.")
        for i, row in enumerate(rows):
            if len(row) != len(header):
                raise ValueError(f"`rows[{i}]` has {len(row)} cells; the header has {len(header)}.")
        parts = ["<table>", "<tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>"]
        for i, row in enumerate(rows):
            cells = []
            for cell in row:
                numeric = isinstance(cell, (int, float, np.number)) and not isinstance(cell, bool)
                css = ' class="number"' if numeric else ""
                cells.append(f"<td{css}>{html.escape(_format(cell))}</td>")
            attrs = _attributes(row_attributes[i] if row_attributes else None)
            parts.append(f"<tr{attrs}>" + "".join(cells) + "</tr>")
        parts.append("</table>")
        self._current().append("\n".join(parts))

    def image(self, image, alt, caption=None):
        """Adds an inlined PNG image as a `<figure>`.

        Args:
            image: uint8 image `[H, W, 3]` or PNG bytes.
            alt: the image's alternative text.
            caption: optional caption under it.
        """
        figcaption = f"<figcaption>{html.escape(str(caption))}</figcaption>" if caption else ""
        self._current().append(
            f'<figure><img src="{png_data_uri(image)}" alt="{html.escape(str(alt))}">{figcaption}</figure>'
        )

    def gallery(self, cards):
        """Adds a wrapping row of cards, each an image with a title and a bullet list under it.

        Args:
            cards: list of dicts with `image` (uint8 `[H, W, 3]` or PNG bytes), `title` (str) and
                optional `items` (list of str).
        """
        parts = ['<div class="gallery">']
        for i, card in enumerate(cards):
            if "image" not in card or "title" not in card:
                raise ValueError(f"`cards[{i}]` must have `image` and `title`, got keys {sorted(card)}.")
            items = "".join(f"<li>{html.escape(str(t))}</li>" for t in card.get("items", ()))
            parts.append(
                f'<div class="card"><img src="{png_data_uri(card["image"])}" alt="{html.escape(card["title"])}">'
                f"<div><b>{html.escape(card['title'])}</b></div>"
                + (f"<ul>{items}</ul>" if items else "")
                + "</div>"
            )
        parts.append("</div>")
        self._current().append("\n".join(parts))

    def render(self):
        """The whole page as one HTML string."""
        nav = " ".join(f'<a href="#{a}">{html.escape(t)}</a>' for t, a, _ in self._sections)
        body = [f"<h1>{html.escape(self.title)}</h1>"]
        if self.subtitle:
            body.append(f'<p class="muted">{html.escape(str(self.subtitle))}</p>')
        body.append(f"<nav>{nav}</nav>")
        for title, anchor, parts in self._sections:
            body.append(f'<section id="{anchor}">\n<h2>{html.escape(title)}</h2>\n' + "\n".join(parts) + "\n</section>")
        return (
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(self.title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
            + "\n".join(body)
            + "\n</body>\n</html>\n"
        )

    def write(self, path):
        """Writes the page to `path` (through `tf.io.gfile`, so `gs://` works); returns `path`.

        Args:
            path: the `.html` file to write.
        """
        import tensorflow as tf

        with tf.io.gfile.GFile(str(path), "w") as f:
            f.write(self.render())
        return str(path)


class _PageReader(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.sections, self.images, self.rows = [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section" and "id" in attrs:
            self.sections.append(attrs["id"])
        elif tag == "img":
            self.images.append(attrs.get("src", ""))
        elif tag == "tr" and any(k.startswith("data-") for k in attrs):
            self.rows.append({k[len("data-"):]: v for k, v in attrs.items() if k.startswith("data-")})


def read_html_report(page):
    """Reads a page written by `HtmlReport` back: its sections, images and tagged table rows.

    Args:
        page: the HTML text.

    Returns:
        A dict with `sections` (the section ids, in order), `images` (the PNG bytes of every
        `<img>`; raises ValueError for an image that is not an inlined PNG) and `rows` (the
        `data-*` attributes of every tagged table row, without the `data-` prefix).

    Example:

    >>> report = HtmlReport("r")
    >>> report.section("Results", "results").table(["x"], [[1.5]], row_attributes=[{"data-value": "1.5"}])
    >>> read_html_report(report.render())
    {'sections': ['results'], 'images': [], 'rows': [{'value': '1.5'}]}
    """
    reader = _PageReader()
    reader.feed(page)
    images = []
    for i, source in enumerate(reader.images):
        prefix = "data:image/png;base64,"
        if not source.startswith(prefix):
            raise ValueError(f"image {i} is not an inlined PNG: {source[:40]!r}")
        images.append(base64.b64decode(source[len(prefix):], validate=True))
    return {"sections": reader.sections, "images": images, "rows": reader.rows}
