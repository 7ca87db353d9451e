import json

import tensorflow as tf

from mmkeras.data.shapes import Shapes
from mmkeras.preprocessing.image_preprocessor import ImagePreprocessor
from mmkeras.preprocessing.subword_tokenizer import SubwordTokenizer
from mmkeras.tasks.task import Task


class ShapesCaptionTask(Task):
    """Base of the tasks that train on Shapes images and their reference captions.

    Holds what matching and captioning share: the Shapes splits, the image
    preprocessor, the WordPiece tokenizer trained on the training captions (and
    saved as `tokenizer.json` in the run directory, so `mmkeras eval` reuses it),
    and the per-epoch stream of `(image, caption)` batches. Each epoch pairs
    every training image with one of its captions; the order and the draws are
    pure functions of `(train.seed, epoch)`, which is what makes exact resume
    possible.

    Args:
        config: a resolved run config.
        output_dir: the run directory.

    Example:

    ```python
    task = MatchingTask(zoo.config("shapes-clip-tiny"), "runs/clip")  # a subclass
    images, captions = next(iter(task.caption_batches(tf.constant(0, tf.int64))))
    ```
    """

    # Tokens per caption beyond `data.sequence_length` (captioning needs one
    # more, for the teacher-forcing shift).
    extra_tokens = 0

    def __init__(self, config, output_dir):
        super().__init__(config, output_dir)
        data = config["data"]
        if data["dataset"] != "shapes":
            raise ValueError(
                f"`data.dataset`={data['dataset']!r}: the {config['task']} task trains on 'shapes' in this "
                "release."
            )
        self.shapes = Shapes(
            image_size=data["image_size"],
            seed=data["seed"],
            num_train=data["num_train"],
            num_val=data["num_val"],
            num_test=data["num_test"],
        )
        self.preprocessor = ImagePreprocessor(image_size=data["image_size"], resize="pad")
        self._tokenizer = None
        self._train_tensors = None

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            path = self.run_dir.file("tokenizer.json")
            if tf.io.gfile.exists(path):
                with tf.io.gfile.GFile(path) as f:
                    self._tokenizer = SubwordTokenizer.from_config(json.load(f))
            else:
                data = self.config["data"]
                corpus = [c for scene in self.shapes.scenes("train") for c in scene["captions"]]
                self._tokenizer = SubwordTokenizer.train(
                    corpus,
                    vocabulary_size=data["vocabulary_size"],
                    sequence_length=data["sequence_length"] + self.extra_tokens,
                )
                self.run_dir.write_json("tokenizer.json", self._tokenizer.get_config())
        return self._tokenizer

    @property
    def steps_per_epoch(self):
        num_train = self.config["data"]["num_train"]
        batch = self.config["train"]["global_batch_size"]
        if num_train < batch:
            raise ValueError(
                f"`data.num_train`={num_train} is smaller than `train.global_batch_size`={batch}."
            )
        return num_train // batch

    def _training_tensors(self):
        if self._train_tensors is None:
            scenes = self.shapes.scenes("train")
            with tf.init_scope():  # eager constants, even when first asked for inside a traced dataset fn
                self._train_tensors = (
                    tf.constant(self.shapes.images("train")),
                    tf.constant([s["captions"] for s in scenes]),
                )
        return self._train_tensors

    def caption_batches(self, epoch):
        """Batches of `(uint8 images [B, H, W, 3], caption strings [B])` for one epoch."""
        seed = tf.cast(self.config["train"]["seed"], tf.int64)
        images, captions = self._training_tensors()
        count, per_image = tf.shape(captions, out_type=tf.int64)[0], tf.shape(captions)[1]
        order = tf.argsort(tf.random.stateless_uniform([count], tf.stack([seed, epoch])))
        picks = tf.random.stateless_uniform(
            [count], tf.stack([seed, epoch + 1_000_003]), maxval=per_image, dtype=tf.int32
        )

        def pair(index):
            return images[index], captions[index, picks[index]]

        return (
            tf.data.Dataset.from_tensor_slices(order)
            .map(pair, num_parallel_calls=tf.data.AUTOTUNE)
            .batch(self.config["train"]["global_batch_size"], drop_remainder=True)  # static shapes
        )
