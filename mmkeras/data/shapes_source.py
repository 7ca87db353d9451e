"""The built-in Shapes scenes as records (encoded images with their captions)."""

import tensorflow as tf

from mmkeras.data.record_source import RecordSource
from mmkeras.data.shapes import SPLITS, Shapes
from mmkeras.validation import check_int

IMAGE_FORMATS = ("jpeg", "png")


class ShapesSource(RecordSource):
    """Records of one split of `mmkeras.data.Shapes`, images encoded as JPEG or PNG.

    The id is `shapes-<split>-<image id:06d>`, the captions are the scene's
    reference captions and the label is the class index (shape of the largest
    object, see `Shapes.class_names`).

    Args:
        split: "train", "val" or "test".
        image_size: side of the images in pixels.
        num_examples: scenes in the split (default: Shapes' default for it).
        seed: the Shapes seed.
        image_format: "jpeg" or "png".
        quality: JPEG quality.
        **kwargs: `RecordSource` arguments (the images are valid by
            construction, so `validate_images` defaults to "none").

    Example:

    >>> source = ShapesSource("train", image_size=32, num_examples=3)
    >>> records = list(source)
    >>> len(records), records[0]["id"], records[0]["image"][:3] == b"\\xff\\xd8\\xff"
    (3, 'shapes-train-000000', True)
    """

    def __init__(
        self,
        split="train",
        image_size=64,
        num_examples=None,
        seed=0,
        image_format="jpeg",
        quality=95,
        **kwargs,
    ):
        kwargs.setdefault("validate_images", "none")
        super().__init__(**kwargs)
        if split not in SPLITS:
            raise ValueError(f"`split` must be one of {SPLITS}, got {split!r}.")
        if image_format not in IMAGE_FORMATS:
            raise ValueError(f"`image_format` must be one of {IMAGE_FORMATS}, got {image_format!r}.")
        quality = check_int("quality", quality, minimum=1, maximum=100)
        sizes = {f"num_{s}": 0 for s in SPLITS}
        if num_examples is not None:
            sizes[f"num_{split}"] = num_examples
        else:
            sizes.pop(f"num_{split}")
        self.split = split
        self.image_format = image_format
        self.quality = quality
        self.shapes = Shapes(image_size=image_size, seed=seed, **sizes)

    def describe(self):
        return f"shapes:{self.split} ({self.shapes!r}, {self.image_format})"

    def raw_records(self):
        for scene in self.shapes.scenes(self.split):
            image = scene["image"]
            if self.image_format == "jpeg":
                data = tf.io.encode_jpeg(image, quality=self.quality).numpy()
            else:
                data = tf.io.encode_png(image).numpy()
            yield {
                "id": f"shapes-{self.split}-{scene['image_id']:06d}",
                "image": data,
                "texts": list(scene["captions"]),
                "label": int(scene["label"]),
            }
