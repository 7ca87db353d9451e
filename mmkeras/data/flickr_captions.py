"""Flickr8k / Flickr30k loader: a token file and, optionally, a Karpathy split JSON."""

import collections

from mmkeras.data import _gfile
from mmkeras.data.coco_captions import _load_json
from mmkeras.data.record_source import RecordSource

SPLITS = ("train", "val", "test", "restval", "all")


class FlickrCaptions(RecordSource):
    """Records from Flickr8k / Flickr30k caption files.

    The token file (`Flickr8k.token.txt`, `results_20130124.token`) has one
    line per caption: `name.jpg#i<TAB>caption`. The optional Karpathy split
    JSON (`dataset_flickr8k.json` layout: `images` of `{"filename", "split",
    "sentences": [{"raw"}]}`) picks the images of one split; without a token
    file its `raw` sentences are the captions. Records are in the order images
    first appear; the id is the file name. Lines without a tab are counted
    ("malformed line dropped"); see `RecordSource` for the image checks.

    Args:
        token_file: path of the token file, or `None` to take captions from
            `split_json`.
        images_dir: folder of the images; default: the token file's folder.
        split_json: optional Karpathy split JSON.
        split: with `split_json`: "train" (with "restval", as in Karpathy's
            training set), "val", "test", "restval" or "all".
        **kwargs: `RecordSource` arguments.

    Example:

    ```python
    from mmkeras.data import FlickrCaptions

    source = FlickrCaptions("Flickr8k.token.txt", "Flicker8k_Dataset",
                            split_json="dataset_flickr8k.json", split="test")
    for record in source:
        print(record["id"], record["texts"][0])
    ```
    """

    def __init__(self, token_file=None, images_dir=None, split_json=None, split="train", **kwargs):
        super().__init__(**kwargs)
        if token_file is None and split_json is None:
            raise ValueError("`token_file` or `split_json` must be given.")
        if split not in SPLITS:
            raise ValueError(f"`split` must be one of {SPLITS}, got {split!r}.")
        self.token_file = str(token_file) if token_file else None
        self.split_json = str(split_json) if split_json else None
        self.split = split
        default_dir = _gfile.dirname(self.token_file or self.split_json)
        self.images_dir = str(images_dir) if images_dir else default_dir

    def describe(self):
        parts = [f"flickr:{self.token_file or self.split_json}"]
        if self.split_json:
            parts.append(f"split {self.split} of {self.split_json}")
        return " ".join(parts) + f" (images {self.images_dir})"

    def _split_images(self):
        data = _load_json(self.split_json, "split_json")
        if not isinstance(data, dict) or not isinstance(data.get("images"), list):
            raise ValueError(f"`split_json` {self.split_json!r} must hold an `images` list.")
        wanted = {"train": ("train", "restval")}.get(self.split, (self.split,))
        chosen = collections.OrderedDict()
        for image in data["images"]:
            if not isinstance(image, dict) or not image.get("filename"):
                continue
            if self.split == "all" or image.get("split") in wanted:
                sentences = image.get("sentences") or []
                chosen[image["filename"]] = [
                    s.get("raw") for s in sentences if isinstance(s, dict)
                ]
        return chosen

    def _token_captions(self):
        captions = collections.OrderedDict()
        text = _gfile.read_bytes(self.token_file).decode("utf-8", errors="surrogateescape")
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            if "\t" not in line:
                self.report.repair("malformed line dropped", f"line {number}")
                continue
            key, caption = line.split("\t", 1)
            name = key.rsplit("#", 1)[0].strip()
            captions.setdefault(name, []).append(caption)
        return captions

    def raw_records(self):
        if self.token_file:
            try:
                captions = self._token_captions()
            except Exception as error:
                if isinstance(error, ValueError):
                    raise
                raise ValueError(f"`token_file` {self.token_file!r} cannot be read: {error}") from None
        if self.split_json:
            chosen = self._split_images()
            if self.token_file:
                chosen = collections.OrderedDict((name, captions.get(name, [])) for name in chosen)
        else:
            chosen = captions
        for name, texts in chosen.items():
            yield {
                "id": name,
                "image_path": _gfile.join(self.images_dir, name),
                "texts": texts,
                "label": None,
            }
