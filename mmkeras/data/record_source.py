"""The base class of the loaders: a re-iterable stream of clean records with a skip report."""

import itertools

from mmkeras.data.record_cleaner import RecordCleaner
from mmkeras.data.skip_report import SkipReport
from mmkeras.preprocessing.image_preprocessor import DEFAULT_MAX_PIXELS
from mmkeras.validation import check_int


class RecordSource:
    """A re-iterable stream of records `{"id", "image", "texts", "label"}` from some dataset.

    Subclasses implement `raw_records()`, yielding raw records (see
    `RecordCleaner`): the image as bytes or as a path, captions as they come.
    Iterating the source reads the images (in threads, through `tf.io.gfile`),
    validates and repairs them in chunks, and counts every decision in
    `self.report` (a fresh `SkipReport` per pass), which is also logged at the
    end of the pass ("kept 10 records; skipped 3 records: 2 corrupt image, 1
    empty caption"). A pass that keeps nothing because images are missing
    ends with a `ValueError` pointing at the images folder (see
    `SkipReport.check_images_found`).

    Args:
        validate_images: "full", "check" or "none" (see `RecordCleaner`).
        require_texts: skip records without a caption.
        max_records: stop after this many raw records (`None`: all).
        num_threads: threads reading and decoding images.
        chunk_size: raw records validated together.
        max_pixels: images whose header declares more pixels are skipped as
            "too many pixels", never decoded (see `RecordCleaner`).

    Example:

    >>> import tensorflow as tf
    >>> class Two(RecordSource):
    ...     def raw_records(self):
    ...         png = tf.io.encode_png(tf.zeros([2, 2, 3], tf.uint8)).numpy()
    ...         yield {"id": "a", "image": png, "texts": ["a caption"]}
    ...         yield {"id": "b", "image": b"junk", "texts": ["another"]}
    >>> source = Two()
    >>> [r["id"] for r in source]
    ['a']
    >>> source.report.summary()
    'kept 1 record; skipped 1 record: 1 unsupported image format'
    """

    def __init__(self, validate_images="full", require_texts=True, max_records=None, num_threads=8, chunk_size=64,
                 max_pixels=DEFAULT_MAX_PIXELS):
        if max_records is not None and (
            isinstance(max_records, bool) or not isinstance(max_records, int) or max_records < 0
        ):
            raise ValueError(f"`max_records` must be a non-negative int or None, got {max_records!r}.")
        chunk_size = check_int("chunk_size", chunk_size, minimum=1)
        # Validates `validate_images` and `num_threads` early.
        RecordCleaner(validate_images=validate_images, num_threads=num_threads, max_pixels=max_pixels)
        self.max_pixels = max_pixels
        self.validate_images = validate_images
        self.require_texts = require_texts
        self.max_records = max_records
        self.num_threads = num_threads
        self.chunk_size = chunk_size
        self.report = SkipReport()

    def raw_records(self):
        """Yields raw records; implemented by each loader."""
        raise NotImplementedError

    def describe(self):
        """A short description of the source, for `dataset_info.json` and logs."""
        return type(self).__name__

    def __iter__(self):
        self.report = SkipReport()
        cleaner = RecordCleaner(self.report, self.validate_images, self.require_texts, self.num_threads,
                                max_pixels=self.max_pixels)
        raws = self.raw_records()
        if self.max_records is not None:
            raws = itertools.islice(raws, self.max_records)
        try:
            while True:
                chunk = list(itertools.islice(raws, self.chunk_size))
                if not chunk:
                    break
                yield from cleaner.clean(chunk)
        finally:
            cleaner.close()
        self.report.log(self.describe())
        self.report.check_images_found(self.describe())
