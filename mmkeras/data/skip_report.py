"""Counts of records skipped or repaired by a loader, by reason."""

import collections
import logging

logger = logging.getLogger("mmkeras.data")

_MAX_EXAMPLES = 5


def _phrase(counter):
    items = sorted(counter.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{count} {reason}" for reason, count in items)


class SkipReport:
    """Tells what a loader did with bad input: nothing crashes, nothing is dropped silently.

    Three tallies:

    - `kept`: records that came through;
    - `skipped`: records left out, counted by reason ("corrupt image",
      "missing image", "empty caption", "duplicate id", ...);
    - `repaired`: records kept after a fix or with a noteworthy property,
      counted by reason ("cmyk image" and "grayscale image", which decode to
      RGB later; "invalid utf-8 replaced"; "empty caption dropped" when the
      record has other captions; ...).

    The first few record ids of every reason are kept in `examples`.

    Args:
        kept: initial count of kept records.
        skipped: initial `{reason: count}` of skipped records.
        repaired: initial `{reason: count}` of repairs.

    Example:

    >>> report = SkipReport()
    >>> report.skip("corrupt image", "a.jpg"); report.skip("corrupt image", "b.jpg")
    >>> report.skip("empty caption", "c.jpg"); report.keep()
    >>> report.summary()
    'kept 1 record; skipped 3 records: 2 corrupt image, 1 empty caption'
    >>> report.examples["corrupt image"]
    ['a.jpg', 'b.jpg']
    """

    def __init__(self, kept=0, skipped=None, repaired=None):
        self.kept = int(kept)
        self.skipped = collections.Counter(skipped or {})
        self.repaired = collections.Counter(repaired or {})
        self.examples = collections.defaultdict(list)

    def _example(self, reason, record_id):
        if record_id is not None and len(self.examples[reason]) < _MAX_EXAMPLES:
            self.examples[reason].append(str(record_id))

    def keep(self, count=1):
        """Counts `count` records kept."""
        self.kept += int(count)

    def skip(self, reason, record_id=None):
        """Counts one record skipped for `reason` (remembering its id among the first few)."""
        self.skipped[str(reason)] += 1
        self._example(reason, record_id)

    def repair(self, reason, record_id=None):
        """Counts one repair (or noted property) of a kept record."""
        self.repaired[str(reason)] += 1
        self._example(reason, record_id)

    @property
    def num_skipped(self):
        """Total number of skipped records."""
        return sum(self.skipped.values())

    @property
    def num_repaired(self):
        """Total number of repairs."""
        return sum(self.repaired.values())

    def merge(self, other):
        """Adds the counts of another `SkipReport` into this one; returns self."""
        self.kept += other.kept
        self.skipped.update(other.skipped)
        self.repaired.update(other.repaired)
        for reason, ids in other.examples.items():
            for record_id in ids:
                self._example(reason, record_id)
        return self

    def summary(self):
        """One line: "kept N records; skipped M records: 2 corrupt image, ...; repaired K: ..."."""
        parts = [f"kept {self.kept} record{'' if self.kept == 1 else 's'}"]
        if self.skipped:
            parts.append(
                f"skipped {self.num_skipped} record{'' if self.num_skipped == 1 else 's'}: "
                + _phrase(self.skipped)
            )
        else:
            parts.append("skipped 0 records")
        if self.repaired:
            parts.append(f"repaired {self.num_repaired}: " + _phrase(self.repaired))
        return "; ".join(parts)

    def check_images_found(self, source=None):
        """Raises a `ValueError` when no record was kept and images were missing.

        That is the mark of a wrong images folder (a COCO JSON read without
        `--images`, say): the message names the source and the fix rather
        than letting an empty dataset through.

        Args:
            source: description of the source, for the message.

        Example:

        >>> SkipReport(kept=2, skipped={"missing image": 1}).check_images_found("coco:a.json")
        >>> SkipReport(skipped={"missing image": 3}).check_images_found("coco:a.json")
        Traceback (most recent call last):
        ...
        ValueError: coco:a.json: no record kept: every image is missing (skipped 3 records: 3 missing image); ...
        """
        missing = self.skipped.get("missing image", 0)
        if self.kept or not missing:
            return
        what = "every image is missing" if missing == self.num_skipped else f"{missing} images are missing"
        prefix = f"{source}: " if source else ""
        raise ValueError(
            f"{prefix}no record kept: {what} (skipped {self.num_skipped} records: {_phrase(self.skipped)}); "
            "is the images folder right? Name it with `--images` (`data.images` in a config, `images_dir` "
            "in Python)."
        )

    def log(self, source=None):
        """Writes `summary()` to the `mmkeras.data` logger (warning level if anything was skipped)."""
        prefix = f"{source}: " if source else ""
        level = logging.WARNING if self.skipped else logging.INFO
        logger.log(level, "%s%s", prefix, self.summary())

    def as_dict(self):
        """A JSON-ready dict: kept, skipped, repaired, examples."""
        return {
            "kept": self.kept,
            "skipped": dict(sorted(self.skipped.items())),
            "repaired": dict(sorted(self.repaired.items())),
            "examples": {k: list(v) for k, v in sorted(self.examples.items())},
        }

    @classmethod
    def from_dict(cls, data):
        """The inverse of `as_dict`."""
        report = cls(data.get("kept", 0), data.get("skipped"), data.get("repaired"))
        for reason, ids in (data.get("examples") or {}).items():
            report.examples[reason] = list(ids)[:_MAX_EXAMPLES]
        return report

    def __repr__(self):
        return f"SkipReport({self.summary()})"
