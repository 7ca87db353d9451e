import json

import tensorflow as tf

from mmkeras.config import merge
from mmkeras.data.shapes import Shapes
from mmkeras.preprocessing.image_preprocessor import ImagePreprocessor
from mmkeras.preprocessing.subword_tokenizer import SubwordTokenizer
from mmkeras.tasks.task import Task


class ShapesTask(Task):
    """Base of the tasks that train on the built-in Shapes data.

    Holds what every Shapes task shares: the Shapes splits (`data.image_size`,
    `data.seed`, `data.num_train|val|test`), the image preprocessor (pad to a
    square, no augmentation), and the WordPiece tokenizer trained on the
    training split's text, saved as `tokenizer.json` in the run directory so
    `mmkeras eval` and a resumed run reuse the very same vocabulary.
    Subclasses choose the text the tokenizer learns from (`tokenizer_corpus`)
    and may add tokens to the sequence length (`extra_tokens`).

    Args:
        config: a resolved run config with `data.dataset="shapes"`.
        output_dir: the run directory.

    Example:

    ```python
    task = MatchingTask(zoo.config("shapes-clip-tiny"), "runs/clip")  # a subclass
    task.tokenizer(["two red circles"])  # trained on first use, then loaded from the run
    ```
    """

    # Tokens per text beyond `data.sequence_length` (captioning needs one
    # more, for the teacher-forcing shift).
    extra_tokens = 0

    def __init__(self, config, output_dir):
        super().__init__(config, output_dir)
        data = config["data"]
        if data["dataset"] != "shapes":
            raise ValueError(
                f"`data.dataset`={data['dataset']!r}: the {config['task']} task trains on 'shapes' in this "
                "release; other data goes through the builders in `mmkeras.models` and `model.fit`."
            )
        self.shapes = Shapes(
            image_size=data["image_size"],
            seed=data["seed"],
            num_train=data["num_train"],
            num_val=data["num_val"],
            num_test=data["num_test"],
        )
        self.preprocessor = ImagePreprocessor(image_size=data["image_size"], resize="pad", max_pixels=data["max_pixels"])
        self._tokenizer = None
        self._tensors = {}  # split -> the tensors its batches are drawn from
        self.use_init_preprocessing()

    def _split_tensors(self, split="train"):
        """A split as eager tensors (`_make_split_tensors`), built once per split and cached.

        Made eagerly even when first asked for inside a traced dataset function,
        so every epoch's pipeline gathers from the same constants.
        """
        if split not in self._tensors:
            with tf.init_scope():
                self._tensors[split] = self._make_split_tensors(split)
        return self._tensors[split]

    def _make_split_tensors(self, split):
        """The tensors `epoch_dataset` draws its batches of `split` from."""
        raise NotImplementedError

    def has_validation_split(self):
        return self.config["data"]["num_val"] > 0

    def tokenizer_corpus(self):
        """The training text the tokenizer learns its vocabulary from (default: the captions)."""
        return [c for scene in self.shapes.scenes("train") for c in scene["captions"]]

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            path = self.run_dir.file("tokenizer.json")
            if tf.io.gfile.exists(path):
                with tf.io.gfile.GFile(path) as f:
                    self._tokenizer = SubwordTokenizer.from_config(json.load(f))
            else:
                data = self.config["data"]
                self._tokenizer = SubwordTokenizer.train(
                    self.tokenizer_corpus(),
                    vocabulary_size=data["vocabulary_size"],
                    sequence_length=data["sequence_length"] + self.extra_tokens,
                )
                self.run_dir.write_json("tokenizer.json", self._tokenizer.get_config())
        return self._tokenizer

    def model_config(self):
        # The text tower's vocabulary is the trained tokenizer's (at most `data.vocabulary_size`).
        return merge(self.config, {"data": {"vocabulary_size": self.tokenizer.vocabulary_size()}})
