import numpy as np
import tensorflow as tf

from mmkeras.metrics.retrieval import retrieval_metrics
from mmkeras.models.dual_encoder import DualEncoder
from mmkeras.metrics.zero_shot import zero_shot_accuracy, zero_shot_classifier
from mmkeras.tasks.shapes_caption_task import ShapesCaptionTask
from mmkeras.training.full_batches import predict_full_batches

ZERO_SHOT_TEMPLATES = ("a {}", "a picture with a {}", "an image of a {}")


class MatchingTask(ShapesCaptionTask):
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
    task = MatchingTask(zoo.config("shapes-clip-tiny", **{"train.epochs": 2}), "runs/clip")
    image_embeddings, text_embeddings, text_to_image, labels = task.embed(task.train())
    ```
    """

    def build_from_init(self, init):
        """The init dual encoder itself (towers, projections, logit scale, preprocessing) is trained;
        `model.freeze_image_encoder` locks its image tower (LiT)."""
        if not isinstance(init, DualEncoder):
            raise ValueError(
                f"`train.init` {self.config['train']['init']!r} holds a {type(init).__name__}; the matching "
                "family starts from a dual encoder (`mmkeras import` of a CLIP or SigLIP checkpoint)."
            )
        if self.config.get("model", {}).get("freeze_image_encoder"):
            init.image_encoder.trainable = False
            init.freeze_image_encoder = True
        return init

    def epoch_dataset(self, epoch, split="train"):
        preprocessor = self.preprocessor

        def to_model_inputs(images, token_ids):
            return {"images": preprocessor(images), "token_ids": token_ids}

        return self.with_static_batch(
            self.caption_batches(epoch, split=split).map(to_model_inputs, num_parallel_calls=tf.data.AUTOTUNE)
        )

    # --- evaluation ---------------------------------------------------------
    def embed(self, model, split="test"):
        """Embeds a split: returns (image_embeddings, text_embeddings, text_to_image, labels)."""
        batch = self.config["eval"]["batch_size"]
        scenes = self.shapes.scenes(split)
        images = self.preprocessor(self.shapes.images(split))
        texts = [c for s in scenes for c in s["captions"]]
        text_to_image = np.repeat(np.arange(len(scenes)), [len(s["captions"]) for s in scenes])
        image_embeddings = predict_full_batches(model.image_model, images, batch)
        text_embeddings = predict_full_batches(model.text_model, self.tokenizer(tf.constant(texts)), batch)
        labels = np.array([s["label"] for s in scenes])
        return image_embeddings, text_embeddings, text_to_image, labels

    def evaluate(self, model):
        image_embeddings, text_embeddings, text_to_image, labels = self.embed(model)
        metrics = {k: float(v) for k, v in retrieval_metrics(image_embeddings, text_embeddings, text_to_image).items()}
        text_model, batch = model.text_model, self.config["eval"]["batch_size"]

        def embed_text(strings):
            return predict_full_batches(text_model, self.tokenizer(tf.constant(list(strings))), batch)

        classes = zero_shot_classifier(embed_text, list(self.shapes.class_names), ZERO_SHOT_TEMPLATES)
        zero_shot = zero_shot_accuracy(image_embeddings, labels, classes)
        metrics.update({f"zero_shot_{k}": float(v) for k, v in zero_shot.items()})
        metrics["num_test_images"] = int(len(labels))
        metrics["num_test_captions"] = int(len(text_to_image))
        return metrics
