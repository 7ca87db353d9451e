"""Image–text matching (CLIP / SigLIP) on real data."""

import numpy as np
import tensorflow as tf

from mmkeras.metrics.retrieval import retrieval_metrics
from mmkeras.metrics.zero_shot import zero_shot_accuracy, zero_shot_classifier
from mmkeras.tasks.matching_task import ZERO_SHOT_TEMPLATES, MatchingTask
from mmkeras.tasks.record_task import RecordTask
from mmkeras.training.full_batches import predict_full_batches


class RecordMatchingTask(RecordTask, MatchingTask):
    """Trains and evaluates a dual encoder on real image–caption data.

    The data side is `RecordTask` (a source converted to shards in the run
    directory, a held-out split, skip reports); the model, its training and
    the export (`embed_image`, `embed_text`, `similarity`) are
    `MatchingTask`'s. Each epoch pairs every training image with one of its
    captions, drawn with the seed; with `data.augment` the images get
    `RandomResizedCrop`.

    Evaluation on the held-out split: retrieval R@1/5/10, median and mean
    rank both ways with all reference captions (an image-to-text query is a
    hit when any of its captions is retrieved), and, when the records have
    class names (e.g. `folder:`), zero-shot accuracy from the class names.

    Args:
        config: a resolved run config with `task="matching"` and a real
            `data.dataset`.
        output_dir: the run directory.

    Example:

    ```python
    from mmkeras import zoo
    from mmkeras.tasks.record_matching_task import RecordMatchingTask

    config = zoo.config("shapes-clip-tiny", **{"data.dataset": "csv", "data.path": "pairs.csv"})
    metrics = RecordMatchingTask(config, "runs/clip-csv").run()
    print(metrics["i2t_r5"], metrics["t2i_r5"])
    ```
    """

    family = "matching"

    def evaluate(self, model):
        batch = self.config["eval"]["batch_size"]
        image_embeddings, texts, text_to_image, labels = [], [], [], []
        for images, captions, batch_labels in self.held_out_batches():
            start = sum(len(e) for e in image_embeddings)
            # Every batch padded to `batch` rows: the predict function is traced once.
            image_embeddings.append(predict_full_batches(model.image_model, images, batch))
            for i, image_captions in enumerate(captions):
                texts += image_captions
                text_to_image += [start + i] * len(image_captions)
            labels.append(batch_labels)
        if not image_embeddings or not texts:
            raise ValueError(
                f"The held-out split of `data.path` {self.config['data']['path']!r} has no usable "
                "image with a caption: raise `data.val_fraction`."
            )
        image_embeddings = np.concatenate(image_embeddings)
        text_embeddings = predict_full_batches(model.text_model, self.tokenizer(tf.constant(texts)), batch)
        metrics = {
            k: float(v)
            for k, v in retrieval_metrics(image_embeddings, text_embeddings, np.array(text_to_image)).items()
        }
        labels = np.concatenate(labels)
        known = labels >= 0
        if self.train_reader.class_names and known.any():
            text_model = model.text_model

            def embed_text(strings):
                return predict_full_batches(text_model, self.tokenizer(tf.constant(list(strings))), batch)

            classes = zero_shot_classifier(embed_text, list(self.class_names), ZERO_SHOT_TEMPLATES)
            zero_shot = zero_shot_accuracy(image_embeddings[known], labels[known], classes)
            metrics.update({f"zero_shot_{k}": float(v) for k, v in zero_shot.items()})
        metrics["num_test_images"] = int(len(image_embeddings))
        metrics["num_test_captions"] = int(len(texts))
        metrics.update(self.data_metrics())
        return metrics
