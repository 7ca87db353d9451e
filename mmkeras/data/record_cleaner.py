"""Validation and repair of raw loader records, with every decision counted in a `SkipReport`."""

import concurrent.futures
import re

import numpy as np
import tensorflow as tf

from mmkeras.data import _gfile
from mmkeras.data.skip_report import SkipReport
from mmkeras.preprocessing.image_header import read_image_size
from mmkeras.preprocessing.image_preprocessor import DEFAULT_MAX_PIXELS
from mmkeras.preprocessing.image_preprocessor import check_image_bytes

VALIDATE_MODES = ("full", "check", "none")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SPACES = re.compile(r"\s+")
_SURROGATES = re.compile("[\udc80-\udcff]")


def _image_format(data):
    """(format, note) from the magic bytes; note is "cmyk image", "grayscale image", ... or None."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg", _jpeg_note(data)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        color = data[25] if len(data) > 25 else 2
        return "png", {0: "grayscale image", 4: "grayscale image", 6: "rgba image"}.get(color)
    if data[:4] == b"GIF8":
        return "gif", None
    if data[:2] == b"BM":
        return "bmp", None
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp", None
    return None, None


def _jpeg_note(data):
    """The note ("grayscale image", "cmyk image" or None) from the JPEG header's component count."""
    try:
        components = int(tf.io.extract_jpeg_shape(data)[2])
    except tf.errors.OpError:
        return None
    return {1: "grayscale image", 4: "cmyk image"}.get(components)


_read_sizes = tf.function(
    read_image_size, input_signature=[tf.TensorSpec([None], tf.string)], autograph=False
)


def _pixels(data, fmt):
    """Height x width the image's header declares (libjpeg's reading for JPEGs); -1 if unreadable."""
    height, width = _read_sizes(tf.constant([data])).numpy()[0].tolist()
    if height < 0 and fmt == "jpeg":
        try:
            height, width = tf.io.extract_jpeg_shape(data).numpy().tolist()[:2]
        except tf.errors.OpError:
            return -1
    return height * width if height >= 0 else -1


def clean_text(text):
    """`(clean str or None, repair reason or None)` for one raw caption.

    Bytes and strings holding invalid UTF-8 (as `surrogateescape` characters)
    get U+FFFD replacements; control characters become spaces; whitespace is
    collapsed and stripped. Empty results give `None`.
    """
    repair = None
    if text is None:
        return None, None
    if isinstance(text, (bytes, bytearray, np.bytes_)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            text, repair = bytes(text).decode("utf-8", errors="replace"), "invalid utf-8 replaced"
    elif not isinstance(text, str):
        if isinstance(text, float) and text != text:  # NaN from a spreadsheet
            return None, None
        text = str(text)
    if _SURROGATES.search(text):
        text = text.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")
        repair = "invalid utf-8 replaced"
    text = _SPACES.sub(" ", _CONTROL.sub(" ", text)).strip()
    return (text or None), repair


class RecordCleaner:
    """Turns raw loader records into clean records, skipping or repairing bad ones.

    A raw record is a dict with `id`, either `image` (bytes) or `image_path`
    (read with `tf.io.gfile`), `texts` (str / bytes / None items) and an
    optional `label`; or `{"id", "skip": reason}` for input the loader could
    not parse (counted as skipped). A clean record is
    `{"id": str, "image": bytes, "texts": [str, ...], "label": int | str | None}`.

    Decisions, all counted in `report`:

    - skipped: "missing image" (unreadable path), "empty image file",
      "unsupported image format" (not JPEG/PNG/GIF/BMP/WebP), "too many
      pixels" (the header declares over `max_pixels`; never decoded), "corrupt image"
      (truncated or undecodable by TensorFlow's decoders, which
      `ImagePreprocessor` uses), "empty caption" (no usable caption left and
      `require_texts`), "duplicate id";
    - repaired (kept): "cmyk image", "grayscale image", "rgba image" (they
      decode to RGB in `ImagePreprocessor`), "webp re-encoded as png",
      "invalid utf-8 replaced", "empty caption dropped".

    Args:
        report: the `SkipReport` to count into (a new one if `None`).
        validate_images: "full" (a decode per image, in the worker threads),
            "check" (one batched `check_image_bytes` call; WebP images are
            decoded either way, to re-encode them) or "none".
        require_texts: skip records without a usable caption.
        num_threads: threads for reading and decoding images.
        max_pixels: the most pixels (height x width) an image may have; checked
            from the header unless `validate_images` is "none".

    Example:

    >>> import tensorflow as tf
    >>> png = tf.io.encode_png(tf.zeros([4, 4, 3], tf.uint8)).numpy()
    >>> cleaner = RecordCleaner()
    >>> out = cleaner.clean([
    ...     {"id": 1, "image": png, "texts": [b"a red\\xff square", " "]},
    ...     {"id": 2, "image": png[:20], "texts": ["a blue circle"]},
    ...     {"id": 1, "image": png, "texts": ["again"]}])
    >>> [r["id"] for r in out], out[0]["texts"] == ["a red\\ufffd square"]
    (['1'], True)
    >>> cleaner.report.summary()
    'kept 1 record; skipped 2 records: 1 corrupt image, 1 duplicate id; repaired 2: 1 empty caption dropped, 1 invalid utf-8 replaced'
    """

    def __init__(
        self,
        report=None,
        validate_images="full",
        require_texts=True,
        num_threads=8,
        max_pixels=DEFAULT_MAX_PIXELS,
    ):
        if validate_images not in VALIDATE_MODES:
            raise ValueError(
                f"`validate_images` must be one of {VALIDATE_MODES}, got {validate_images!r}."
            )
        if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
            raise ValueError(f"`num_threads` must be a positive int, got {num_threads!r}.")
        if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
            raise ValueError(f"`max_pixels` must be a positive int, got {max_pixels!r}.")
        self.max_pixels = max_pixels
        self.report = SkipReport() if report is None else report
        self.validate_images = validate_images
        self.require_texts = bool(require_texts)
        self.num_threads = num_threads
        self._seen_ids = set()
        self._pool = None

    # --- images -------------------------------------------------------------

    def _load(self, raw):
        """Reads the image of one raw record: `(bytes or None, skip reason or None)`."""
        if "image" in raw and raw["image"] is not None:
            data = raw["image"]
            if isinstance(data, (bytearray, np.bytes_)):
                data = bytes(data)
            if not isinstance(data, bytes):
                raise ValueError(
                    f"record {raw.get('id')!r}: `image` must be encoded bytes, got {type(data).__name__}."
                )
            return data, None
        path = raw.get("image_path")
        if not path:
            return None, "missing image"
        try:
            return _gfile.read_bytes(path), None
        except (tf.errors.OpError, OSError):
            return None, "missing image"

    def _decode_check(self, data, fmt):
        """`(bytes, repair)` after a real decode, or `(None, "corrupt image")`."""
        try:
            image = tf.io.decode_image(data, channels=3, expand_animations=False)
        except (tf.errors.OpError, ValueError):
            return None, "corrupt image"
        if fmt == "webp":
            return tf.io.encode_png(image).numpy(), "webp re-encoded as png"
        return data, None

    def _prepare(self, raw):
        """Per-record image work that can run in a thread: load, sniff, decode."""
        data, reason = self._load(raw)
        if reason:
            return None, reason, None
        if not data:
            return None, "empty image file", None
        fmt, note = _image_format(data)
        if fmt is None:
            return None, "unsupported image format", None
        if fmt == "webp" or self.validate_images != "none":
            if _pixels(data, fmt) > self.max_pixels:
                return None, "too many pixels", None
        if fmt == "webp" or self.validate_images == "full":
            data, repair = self._decode_check(data, fmt)
            if data is None:
                return None, repair, None
            note = repair or note
        return data, None, (fmt, note)

    # --- records -------------------------------------------------------------

    def clean(self, raws):
        """Cleans a list of raw records; returns the clean ones, in order.

        Args:
            raws: list of raw record dicts (see the class docstring).

        Returns:
            A list of clean records.
        """
        raws = list(raws)
        todo = [r for r in raws if "skip" not in r]
        if self.num_threads > 1 and len(todo) > 1:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(self.num_threads)
            prepared = list(self._pool.map(self._prepare, todo))
        else:
            prepared = [self._prepare(r) for r in todo]
        formats = [p[2][0] if p[0] is not None else None for p in prepared]
        to_check = [i for i, f in enumerate(formats) if f in ("jpeg", "png", "gif", "bmp")]
        structure_ok = {}
        if to_check and self.validate_images == "check":
            batch = tf.constant([prepared[i][0] for i in to_check])
            flags = check_image_bytes(batch, self.max_pixels).numpy()
            structure_ok = dict(zip(to_check, flags.tolist()))
        out, k = [], 0
        for raw in raws:
            record_id = str(raw.get("id", ""))
            if "skip" in raw:
                self.report.skip(raw["skip"], record_id or None)
                continue
            data, reason, info = prepared[k]
            if data is not None and not structure_ok.get(k, True):
                reason = "corrupt image"
            k += 1
            record = self._finish(raw, record_id, data, reason, info)
            if record is not None:
                out.append(record)
        return out

    def _finish(self, raw, record_id, data, reason, info):
        if not record_id:
            self.report.skip("missing id")
            return None
        if record_id in self._seen_ids:
            self.report.skip("duplicate id", record_id)
            return None
        if reason:
            self.report.skip(reason, record_id)
            return None
        texts, repairs = [], set()
        raw_texts = raw.get("texts") or []
        if isinstance(raw_texts, (str, bytes)):
            raw_texts = [raw_texts]
        for text in raw_texts:
            text, repair = clean_text(text)
            if repair:
                repairs.add(repair)
            if text is None:
                repairs.add("empty caption dropped")
            else:
                texts.append(text)
        if not texts and self.require_texts:
            self.report.skip("empty caption", record_id)
            return None
        if not texts:
            repairs.discard("empty caption dropped")
        label = raw.get("label")
        if isinstance(label, (np.integer, bool)):
            label = int(label)
        elif isinstance(label, (bytes, np.bytes_)):
            label = clean_text(label)[0]
        elif isinstance(label, str):
            label = label.strip() or None
        elif label is not None and not isinstance(label, int):
            raise ValueError(
                f"record {record_id!r}: `label` must be an int, a str or None, got {label!r}."
            )
        note = info[1] if info else None
        if note:
            repairs.add(note)
        for repair in sorted(repairs):
            self.report.repair(repair, record_id)
        self._seen_ids.add(record_id)
        self.report.keep()
        return {"id": record_id, "image": data, "texts": texts, "label": label}

    def close(self):
        """Stops the worker threads."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
