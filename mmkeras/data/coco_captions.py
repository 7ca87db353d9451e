"""COCO-captions loader: `captions_train2017.json` plus an images folder."""

import collections
import json

from mmkeras.data import _gfile
from mmkeras.data.record_source import RecordSource


def _load_json(path, what):
    try:
        text = _gfile.read_bytes(path)
    except Exception as error:  # NotFoundError, PermissionDeniedError, ...
        raise ValueError(f"`{what}` {path!r} cannot be read: {error}") from None
    try:
        return json.loads(text.decode("utf-8", errors="replace"))
    except ValueError as error:
        raise ValueError(f"`{what}` {path!r} is not valid JSON: {error}") from None


class CocoCaptions(RecordSource):
    """Records from a COCO-captions annotation file and its images folder.

    Reads the layout of COCO's `captions_train2017.json`: `images` (a list of
    `{"id", "file_name"}`) and `annotations` (a list of `{"image_id",
    "caption"}`). Each image becomes one record with all of its captions, in
    the order of `images`; its id is the COCO image id (as a string). Image
    entries without an id or file name are skipped ("malformed entry"),
    captions of an unknown image are counted ("orphan caption dropped"), images
    without captions are skipped ("empty caption"); see `RecordSource` for the
    image checks.

    Args:
        annotations: path of the JSON file (any `tf.io.gfile` path).
        images_dir: folder of the images (`file_name` is relative to it);
            default: the folder of the JSON file.
        **kwargs: `RecordSource` arguments.

    Example:

    ```python
    from mmkeras.data import CocoCaptions, write_shards

    source = CocoCaptions("annotations/captions_train2017.json", "train2017")
    write_shards(source, "shards/coco", num_shards=64, split="train")
    print(source.report.summary())
    ```
    """

    def __init__(self, annotations, images_dir=None, **kwargs):
        super().__init__(**kwargs)
        if not annotations:
            raise ValueError("`annotations` must be the path of a COCO captions JSON file.")
        self.annotations = str(annotations)
        self.images_dir = str(images_dir) if images_dir else _gfile.dirname(self.annotations)

    def describe(self):
        return f"coco:{self.annotations} (images {self.images_dir})"

    def raw_records(self):
        data = _load_json(self.annotations, "annotations")
        if not isinstance(data, dict) or not isinstance(data.get("images"), list):
            raise ValueError(
                f"`annotations` {self.annotations!r} must hold a COCO captions object with an "
                "`images` list and an `annotations` list."
            )
        captions = collections.defaultdict(list)
        orphans = []
        known = {img.get("id") for img in data["images"] if isinstance(img, dict)}
        for ann in data.get("annotations") or []:
            if not isinstance(ann, dict) or ann.get("image_id") not in known:
                orphans.append(ann.get("image_id") if isinstance(ann, dict) else None)
                continue
            captions[ann["image_id"]].append(ann.get("caption"))
        for image in data["images"]:
            if not isinstance(image, dict) or image.get("id") is None or not image.get("file_name"):
                yield {"id": str(image.get("id", "")) if isinstance(image, dict) else "", "skip": "malformed entry"}
                continue
            yield {
                "id": str(image["id"]),
                "image_path": _gfile.join(self.images_dir, image["file_name"]),
                "texts": captions.get(image["id"], []),
                "label": None,
            }
        for image_id in orphans:
            self.report.repair("orphan caption dropped", image_id)
