"""CSV and JSONL manifests: one row per (image, caption), grouped into one record per image."""

import collections
import csv
import io
import json
import re

from mmkeras.data import _gfile
from mmkeras.data.record_source import RecordSource

DEFAULT_MAX_TEXT_BYTES = 65536
FORMATS = ("csv", "jsonl")
IMAGE_COLUMNS = ("image_path", "image", "img", "file_name", "filename")
TEXT_COLUMNS = ("text", "caption", "texts", "captions")
_INT = re.compile(r"^[+-]?\d+$")


def _parse_label(value):
    if value is None or isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    value = str(value).strip()
    if not value:
        return None
    return int(value) if _INT.match(value) else value


class Manifest(RecordSource):
    """Records from a CSV or JSONL manifest with `image_path`, `text` and an optional `label`.

    Each row (CSV, with a header) or line (JSONL, one JSON object) names an
    image and one caption (in JSONL `text` may also be a list of captions).
    Rows of the same image are grouped into one record, in order of first
    appearance; a row whose `id` is already taken by another image is
    skipped ("duplicate id"). Relative image paths are resolved against the
    manifest's folder. An `id` column, when present, names the record (default: the image
    path as written). Labels that look like integers become ints, others stay
    strings. Column aliases: `image`, `img` (Hateful Memes), `file_name`, `filename` for the image;
    `caption`, `texts`, `captions` for the text. Unparseable lines and rows
    without an image are skipped ("malformed line", "missing image path");
    invalid UTF-8 in the file is repaired per caption; see `RecordSource` for
    the image checks.

    Long captions: a row (CSV) or line (JSONL) with a caption over
    `max_text_bytes` UTF-8 bytes is skipped whole and counted as "text too
    long", in both formats (the image's other rows are kept); so is a CSV
    row with any field over Python's CSV field limit (131072 characters).
    Captions are never truncated here.

    Args:
        path: the manifest file (any `tf.io.gfile` path).
        format: "csv" or "jsonl"; default: from the file extension (`.jsonl` /
            `.json` / `.ndjson` are JSONL, anything else CSV).
        images_dir: folder relative image paths are resolved against;
            default: the manifest's folder.
        max_text_bytes: the most UTF-8 bytes a caption may have.
        **kwargs: `RecordSource` arguments.

    Example:

    >>> import tempfile, tensorflow as tf
    >>> folder = tempfile.mkdtemp()
    >>> tf.io.write_file(folder + "/a.png", tf.io.encode_png(tf.zeros([4, 4, 3], tf.uint8)))
    >>> tf.io.write_file(folder + "/m.csv", "image_path,text,label\\na.png,a cat,1\\na.png,a dog,1\\n")
    >>> [(r["id"], r["texts"], r["label"]) for r in Manifest(folder + "/m.csv")]
    [('a.png', ['a cat', 'a dog'], 1)]
    """

    def __init__(
        self, path, format=None, images_dir=None, max_text_bytes=DEFAULT_MAX_TEXT_BYTES, **kwargs
    ):
        super().__init__(**kwargs)
        if not path:
            raise ValueError("`path` must be the path of a CSV or JSONL manifest.")
        if isinstance(max_text_bytes, bool) or not isinstance(max_text_bytes, int) or max_text_bytes < 1:
            raise ValueError(f"`max_text_bytes` must be a positive int, got {max_text_bytes!r}.")
        self.max_text_bytes = max_text_bytes
        self.path = str(path)
        if format is None:
            lower = self.path.lower()
            format = "jsonl" if lower.endswith((".jsonl", ".json", ".ndjson")) else "csv"
        if format not in FORMATS:
            raise ValueError(f"`format` must be one of {FORMATS}, got {format!r}.")
        self.format = format
        self.images_dir = str(images_dir) if images_dir else _gfile.dirname(self.path)

    def describe(self):
        return f"{self.format}:{self.path}"

    def _text(self):
        try:
            data = _gfile.read_bytes(self.path)
        except Exception as error:
            raise ValueError(f"`path` {self.path!r} cannot be read: {error}") from None
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        return data.decode("utf-8", errors="surrogateescape")

    def _rows(self):
        """Yields `(line, dict or skip reason)` per row."""
        text = self._text()
        if self.format == "csv":
            reader = csv.DictReader(io.StringIO(text, newline=""))
            fields = [f.strip() for f in (reader.fieldnames or [])]
            reader.fieldnames = fields
            if not any(c in fields for c in IMAGE_COLUMNS):
                raise ValueError(
                    f"`path` {self.path!r}: the CSV header must have an image column "
                    f"({' or '.join(IMAGE_COLUMNS)}); got {fields}."
                )
            while True:
                line = reader.line_num + 1
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except csv.Error as error:  # the reader goes on with the next line
                    too_long = "field larger than field limit" in str(error)
                    yield line, ("text too long" if too_long else "malformed line")
                    continue
                yield line, ("malformed line" if None in row else row)
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                row = None
            yield number, (row if isinstance(row, dict) else "malformed line")

    def _too_long(self, text):
        if not isinstance(text, str) or len(text) * 4 <= self.max_text_bytes:
            return False
        return len(text.encode("utf-8", errors="surrogateescape")) > self.max_text_bytes

    def raw_records(self):
        groups = collections.OrderedDict()
        for line, row in self._rows():
            if isinstance(row, str):
                yield {"id": f"line {line}", "skip": row}
                continue
            image = next((row[c] for c in IMAGE_COLUMNS if row.get(c)), None)
            if not isinstance(image, str) or not image.strip():
                yield {"id": f"line {line}", "skip": "missing image path"}
                continue
            texts = next((row[c] for c in TEXT_COLUMNS if c in row), None)
            texts = texts if isinstance(texts, list) else [texts]
            if any(self._too_long(text) for text in texts):
                yield {"id": f"line {line}", "skip": "text too long"}
                continue
            image = image.strip()
            record_id = str(row.get("id") or image).strip()
            image_path = _gfile.join(self.images_dir, image)
            group = groups.get(record_id)
            if group is None:
                group = groups[record_id] = {
                    "id": record_id,
                    "image_path": image_path,
                    "texts": [],
                    "label": None,
                }
            elif group["image_path"] != image_path:
                yield {"id": f"{record_id} (line {line})", "skip": "duplicate id"}
                continue
            group["texts"].extend(texts)
            if group["label"] is None:
                group["label"] = _parse_label(row.get("label"))
        yield from groups.values()
