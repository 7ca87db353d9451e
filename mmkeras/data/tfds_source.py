"""TFDS datasets (e.g. `coco_captions`) as records, from a local `data_dir` (no downloads)."""

import numpy as np
import tensorflow as tf

from mmkeras.data.record_source import RecordSource


def _get(example, key):
    """`example[key]`, where `key` may be a `/` path into nested dicts (literal keys first)."""
    if key in example:
        return example[key]
    value = example
    for part in key.split("/"):
        value = value[part]
    return value


def _flatten_keys(features, prefix=""):
    """`{path: feature}` over nested FeaturesDict / Sequence features."""
    import tensorflow_datasets as tfds

    out = {}
    for key, feature in features.items():
        path = f"{prefix}{key}"
        out[path] = feature
        inner = feature.feature if isinstance(feature, tfds.features.Sequence) else feature
        if isinstance(inner, tfds.features.FeaturesDict):
            out.update(_flatten_keys(inner, path + "/"))
    return out


class TfdsSource(RecordSource):
    """Records from a TFDS dataset read with `tfds.load(name, data_dir=...)`.

    The dataset must already be prepared under `data_dir` (`download=False`:
    nothing is fetched). Keys default from the dataset's features: the image
    is the first `Image` feature (read undecoded with `SkipDecoding`, so the
    original file bytes go into the record; decoded arrays are re-encoded as
    PNG), the captions are `captions/text` (coco_captions layout), `caption`,
    `text` or `captions`, the label is a top-level `ClassLabel` named `label`
    (its class name when the feature has names), and the id is `image/id`,
    `image/filename`, `id` or the example index.

    Args:
        name: TFDS dataset name (with optional config/version).
        split: TFDS split string.
        data_dir: TFDS data folder.
        image_key, texts_key, label_key, id_key: feature keys (`/` for
            nested keys) overriding the defaults.
        skip_decoding: read images undecoded (`tfds.decode.SkipDecoding`).
        **kwargs: `RecordSource` arguments.

    Example:

    ```python
    from mmkeras.data import TfdsSource

    source = TfdsSource("coco_captions", split="val", data_dir="/data/tfds")
    record = next(iter(source))
    print(record["id"], record["texts"][0])
    ```
    """

    def __init__(self, name, split="train", data_dir=None, image_key=None, texts_key=None, label_key=None,
                 id_key=None, skip_decoding=True, **kwargs):
        super().__init__(**kwargs)
        if not name or not isinstance(name, str):
            raise ValueError(f"`name` must be a TFDS dataset name, got {name!r}.")
        self.name = name
        self.split = split
        self.data_dir = data_dir
        self.keys = {"image": image_key, "texts": texts_key, "label": label_key, "id": id_key}
        self.skip_decoding = bool(skip_decoding)

    def describe(self):
        return f"tfds:{self.name} split {self.split}" + (f" ({self.data_dir})" if self.data_dir else "")

    def _resolve_keys(self, features):
        import tensorflow_datasets as tfds

        flat = _flatten_keys(features)
        keys = dict(self.keys)
        for what, key in keys.items():
            if key is not None and key not in flat:
                raise ValueError(
                    f"`{what}_key` {key!r} is not a feature of {self.name}; features: {sorted(flat)}."
                )
        if keys["image"] is None:
            images = [k for k, f in flat.items() if isinstance(f, tfds.features.Image)]
            if not images:
                raise ValueError(f"{self.name} has no Image feature; set `image_key`.")
            keys["image"] = images[0]
        if keys["texts"] is None:
            keys["texts"] = next(
                (k for k in ("captions/text", "caption", "text", "captions") if k in flat), None
            )
        if keys["label"] is None and isinstance(flat.get("label"), tfds.features.ClassLabel):
            keys["label"] = "label"
        if keys["id"] is None:
            keys["id"] = next((k for k in ("image/id", "image/filename", "id") if k in flat), None)
        return keys, flat

    def raw_records(self):
        import tensorflow_datasets as tfds

        builder = tfds.builder(self.name, data_dir=self.data_dir)
        keys, flat = self._resolve_keys(builder.info.features)
        decoders = None
        if self.skip_decoding:
            top = keys["image"].split("/")[0]
            if keys["image"] == top:
                decoders = {top: tfds.decode.SkipDecoding()}
        dataset = tfds.load(
            self.name,
            split=self.split,
            data_dir=self.data_dir,
            download=False,
            decoders=decoders,
            shuffle_files=False,
        )
        label_feature = flat.get(keys["label"]) if keys["label"] else None
        for index, example in enumerate(tfds.as_numpy(dataset)):
            image = _get(example, keys["image"])
            if isinstance(image, np.ndarray) and image.dtype != object:
                image = tf.io.encode_png(image).numpy()
            texts = []
            if keys["texts"]:
                value = _get(example, keys["texts"])
                texts = list(value) if isinstance(value, (np.ndarray, list)) else [value]
            label = None
            if keys["label"]:
                label = int(_get(example, keys["label"]))
                names = getattr(label_feature, "names", None)
                if names and 0 <= label < len(names) and names[label] != str(label):
                    label = names[label]
            record_id = _get(example, keys["id"]) if keys["id"] else index
            if isinstance(record_id, bytes):
                record_id = record_id.decode("utf-8", errors="replace")
            yield {"id": str(record_id), "image": image, "texts": texts, "label": label}
