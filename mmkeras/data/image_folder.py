"""Image folders whose sub-folder names are the classes (zero-shot evaluation)."""

import tensorflow as tf

from mmkeras.data import _gfile
from mmkeras.data.record_source import RecordSource


class ImageFolder(RecordSource):
    """Records from `root/<class name>/<image file>`, labelled with the class name.

    Classes are the sub-folders of `root`, sorted; files directly in `root`
    and hidden files are ignored. Each image's label is its class name (a
    string; `class_names` gives the sorted list, so the shard reader's integer
    labels are indices into it) and its caption is built from `template` (by
    default the class name with `_` as spaces), so the records also serve as
    prompts for zero-shot classification. The id is the path relative to
    `root`. See `RecordSource` for the image checks.

    Args:
        root: the folder (any `tf.io.gfile` path).
        template: caption template with one `{}` for the class name, or
            `None` for no caption.
        **kwargs: `RecordSource` arguments.

    Example:

    >>> import tempfile, tensorflow as tf
    >>> root = tempfile.mkdtemp()
    >>> for name in ("cat/1.png", "dog/2.png", "hot_dog/3.png"):
    ...     tf.io.write_file(f"{root}/{name}", tf.io.encode_png(tf.zeros([4, 4, 3], tf.uint8)))
    >>> folder = ImageFolder(root, template="a photo of a {}")
    >>> folder.class_names
    ['cat', 'dog', 'hot_dog']
    >>> [(r["id"], r["label"], r["texts"]) for r in folder][2]
    ('hot_dog/3.png', 'hot_dog', ['a photo of a hot dog'])
    """

    def __init__(self, root, template="{}", **kwargs):
        if template is None:
            kwargs.setdefault("require_texts", False)
        super().__init__(**kwargs)
        if not root:
            raise ValueError("`root` must be a folder of class sub-folders.")
        if template is not None and (not isinstance(template, str) or "{}" not in template):
            raise ValueError(f"`template` must be a str with one '{{}}' or None, got {template!r}.")
        self.root = str(root).rstrip("/")
        self.template = template
        if not tf.io.gfile.isdir(self.root):
            raise ValueError(f"`root` {self.root!r} is not a folder.")

    @property
    def class_names(self):
        """The sorted class (sub-folder) names."""
        return sorted(
            name.rstrip("/")
            for name in tf.io.gfile.listdir(self.root)
            if not name.startswith(".") and tf.io.gfile.isdir(_gfile.join(self.root, name))
        )

    def describe(self):
        return f"folder:{self.root}"

    def raw_records(self):
        for name in self.class_names:
            folder = _gfile.join(self.root, name)
            text = None if self.template is None else self.template.format(name.replace("_", " "))
            for file_name in sorted(tf.io.gfile.listdir(folder)):
                file_name = file_name.rstrip("/")
                path = _gfile.join(folder, file_name)
                if file_name.startswith(".") or tf.io.gfile.isdir(path):
                    continue
                yield {
                    "id": f"{name}/{file_name}",
                    "image_path": path,
                    "texts": [] if text is None else [text],
                    "label": name,
                }
