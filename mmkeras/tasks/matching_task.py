import json

import keras
import numpy as np
import tensorflow as tf

from mmkeras.config import merge
from mmkeras.data.shapes import Shapes
from mmkeras.metrics.retrieval import retrieval_metrics
from mmkeras.metrics.zero_shot import zero_shot_accuracy, zero_shot_classifier
from mmkeras.preprocessing.image_preprocessor import ImagePreprocessor
from mmkeras.preprocessing.subword_tokenizer import SubwordTokenizer
from mmkeras.tasks.task import Task

ZERO_SHOT_TEMPLATES = ("a {}", "a picture with a {}", "an image of a {}")


class MatchingTask(Task):
    """Trains and evaluates an image–text dual encoder (CLIP / SigLIP).

    Data: each training image is paired, every epoch, with one of its reference
    captions drawn at random. Evaluation: retrieval R@1/5/10 and median rank both
    ways over the held-out split with all reference captions (an image-to-text
    hit counts when any of its captions is retrieved), plus zero-shot
    classification of the largest shape. Export: a SavedModel with
    `embed_image`, `embed_text` and `similarity` signatures.

    Args:
        config: a resolved run config with `task="matching"`.
        output_dir: the run directory.

    Example:

    ```python
    from mmkeras import zoo
    from mmkeras.tasks.matching_task import MatchingTask
    metrics = MatchingTask(zoo.config("shapes-clip-tiny"), "runs/clip").run()
    print(metrics["t2i_r5"])
    ```
    """

    def __init__(self, config, output_dir):
        super().__init__(config, output_dir)
        data = config["data"]
        if data["dataset"] != "shapes":
            raise ValueError(
                f"`data.dataset`={data['dataset']!r}: the matching task trains on 'shapes' in this "
                "release; file datasets go through `mmkeras.data` loaders first."
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

    # --- data ---------------------------------------------------------------
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
                    sequence_length=data["sequence_length"],
                )
                self.run_dir.write_json("tokenizer.json", self._tokenizer.get_config())
        return self._tokenizer

    def build_model(self):
        # The text tower's vocabulary is the trained tokenizer's (at most `data.vocabulary_size`).
        from mmkeras.models import build_from_config

        vocabulary = {"data": {"vocabulary_size": self.tokenizer.vocabulary_size()}}
        return build_from_config(merge(self.config, vocabulary))

    @property
    def steps_per_epoch(self):
        num_train = self.config["data"]["num_train"]
        batch = self.config["train"]["global_batch_size"]
        if num_train < batch:
            raise ValueError(
                f"`data.num_train`={num_train} is smaller than `train.global_batch_size`={batch}."
            )
        return num_train // batch

    def epoch_dataset(self, epoch):
        tokenizer, preprocessor = self.tokenizer, self.preprocessor
        seed = tf.cast(self.config["train"]["seed"], tf.int64)
        if self._train_tensors is None:
            scenes = self.shapes.scenes("train")
            self._train_tensors = (
                tf.constant(self.shapes.images("train")),
                tf.constant([s["captions"] for s in scenes]),
            )
        images, captions = self._train_tensors
        count, per_image = tf.shape(captions, out_type=tf.int64)[0], tf.shape(captions)[1]
        # The epoch's order and each image's caption are pure functions of (seed, epoch).
        order = tf.argsort(tf.random.stateless_uniform([count], tf.stack([seed, epoch])))
        picks = tf.random.stateless_uniform(
            [count], tf.stack([seed, epoch + 1_000_003]), maxval=per_image, dtype=tf.int32
        )

        def pair(index):
            return images[index], captions[index, picks[index]]

        def to_model_inputs(batch_images, texts):
            return {"images": preprocessor(batch_images), "token_ids": tokenizer(texts)}

        return (
            tf.data.Dataset.from_tensor_slices(order)
            .map(pair, num_parallel_calls=tf.data.AUTOTUNE)
            .batch(self.config["train"]["global_batch_size"], drop_remainder=True)  # static shapes
            .map(to_model_inputs, num_parallel_calls=tf.data.AUTOTUNE)
        )

    # --- evaluation ---------------------------------------------------------
    def embed(self, model, split="test"):
        """Embeds a split: returns (image_embeddings, text_embeddings, text_to_image, labels)."""
        batch = self.config["eval"]["batch_size"]
        scenes = self.shapes.scenes(split)
        images = self.preprocessor(self.shapes.images(split))
        texts = [c for s in scenes for c in s["captions"]]
        text_to_image = np.repeat(np.arange(len(scenes)), [len(s["captions"]) for s in scenes])
        image_embeddings = model.image_model.predict(images, batch_size=batch, verbose=0)
        text_embeddings = model.text_model.predict(self.tokenizer(tf.constant(texts)), batch_size=batch, verbose=0)
        labels = np.array([s["label"] for s in scenes])
        return image_embeddings, text_embeddings, text_to_image, labels

    def evaluate(self, model):
        image_embeddings, text_embeddings, text_to_image, labels = self.embed(model)
        metrics = {k: float(v) for k, v in retrieval_metrics(image_embeddings, text_embeddings, text_to_image).items()}
        text_model = model.text_model

        def embed_text(strings):
            return text_model.predict(self.tokenizer(tf.constant(list(strings))), verbose=0)

        classes = zero_shot_classifier(embed_text, list(self.shapes.class_names), ZERO_SHOT_TEMPLATES)
        zero_shot = zero_shot_accuracy(image_embeddings, labels, classes)
        metrics.update({f"zero_shot_{k}": float(v) for k, v in zero_shot.items()})
        metrics["num_test_images"] = int(len(labels))
        metrics["num_test_captions"] = int(len(text_to_image))
        return metrics

    def export(self, model, path):
        from mmkeras.export.dual_encoder_export import export_dual_encoder

        export_dual_encoder(model, self.tokenizer, self.preprocessor, path)

    def load_model(self):
        return keras.saving.load_model(self.run_dir.model)
