import base64
import html.parser

import numpy as np
import pytest
import tensorflow as tf

from mmkeras.report.html_report import HtmlReport, png_data_uri


class _Collector(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_page_is_self_contained_and_readable_back(tmp_path):
    report = HtmlReport("A <demo>", subtitle="sub")
    report.section("Results", "results")
    report.table(["metric", "value"], [["t2i R@5", 0.123456], ["count", 7]],
                 row_attributes=[{"data-metric": "t2i_r5"}, {"data-metric": "count"}])
    report.image(np.full((3, 5, 3), 200, np.uint8), alt="grey", caption="a grey <box>")
    report.section("Gallery", "gallery")
    report.gallery([{"image": np.zeros((2, 2, 3), np.uint8), "title": "gen", "items": ["ref 1", "ref 2"]}])
    path = report.write(tmp_path / "report.html")
    page = open(path).read()
    assert "A &lt;demo&gt;" in page and "a grey &lt;box&gt;" in page
    assert "0.123" in page and "0.123456" not in page
    parser = _Collector()
    parser.feed(page)
    ids = [a["id"] for t, a in parser.tags if t == "section"]
    assert ids == ["results", "gallery"]
    assert [a["data-metric"] for t, a in parser.tags if t == "tr" and "data-metric" in a] == ["t2i_r5", "count"]
    sources = [a["src"] for t, a in parser.tags if t == "img"]
    assert len(sources) == 2 and all(s.startswith("data:image/png;base64,") for s in sources)
    first = tf.io.decode_png(base64.b64decode(sources[0].split(",", 1)[1])).numpy()
    assert first.shape == (3, 5, 3) and (first == 200).all()
    assert "http" not in page.replace('lang="en"', "")  # nothing fetched from elsewhere


def test_errors_name_the_argument():
    report = HtmlReport("r")
    report.section("A", "a")
    with pytest.raises(ValueError, match="anchor"):
        report.section("A again", "a")
    with pytest.raises(ValueError, match="anchor"):
        report.section("B", "b c")
    with pytest.raises(ValueError, match="rows"):
        report.table(["x", "y"], [[1]])
    with pytest.raises(ValueError, match="row_attributes"):
        report.table(["x"], [[1]], row_attributes=[])
    with pytest.raises(ValueError, match="cards"):
        report.gallery([{"title": "no image"}])
    with pytest.raises(ValueError, match="PNG"):
        png_data_uri(b"GIF89a")


def test_png_bytes_are_inlined_as_is():
    png = tf.io.encode_png(np.zeros((1, 1, 3), np.uint8)).numpy()
    assert base64.b64decode(png_data_uri(png).split(",", 1)[1]) == png
