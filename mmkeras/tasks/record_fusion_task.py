"""Fusion classifiers (image + text -> label) on real labelled data."""

import copy

import numpy as np
import tensorflow as tf

from mmkeras.metrics.classification import accuracy, classification_metrics, macro_f1
from mmkeras.tasks.fusion_task import FusionTask, _labels_of
from mmkeras.tasks.record_task import RecordTask
from mmkeras.training.full_batches import predict_full_batches

LABEL_HEAD = "label"
CONDITIONS = {"both": (), "image_missing": ("image",), "text_missing": ("text",)}


class RecordFusionTask(RecordTask, FusionTask):
    """Trains and evaluates a fusion classifier on labelled image + text records.

    For Hateful-Memes-style data: a CSV / JSONL manifest with an image, a text
    and a `label` per row (or an image folder, or a TFDS dataset with a
    label). The data side is `RecordTask`; the towers, the fusion and the
    export (`classify(image_bytes, text)`) are the preset's and
    `FusionTask`'s. The preset's heads are replaced by one head named
    `"label"` over the classes of the training labels (label names sorted,
    or "0".."K-1" for integer labels): binary for two classes, multiclass
    otherwise; it is written into the run's `config.json`. Records without a
    label are skipped and counted ("missing label"); records without a text
    are kept with the text marked missing (`text_present = 0`). Each record
    pairs one image with one text, so `data.texts_per_image` is set to 1 (and
    a notice printed when the config said otherwise) and `global_batch_size`
    records make a step.

    Evaluation on the held-out split: accuracy, macro-F1, AUROC (binary;
    one-vs-rest macro for more classes) and per-class precision / recall /
    F1, the same accuracy and macro-F1 with the image and with the text
    masked out, and the majority-class accuracy as a reference. Held-out
    labels that never occur in training are left out and counted.

    Args:
        config: a resolved run config with `task="fusion"` and a labelled
            real `data.dataset`.
        output_dir: the run directory.

    Example:

    ```python
    from mmkeras import zoo
    from mmkeras.tasks.record_fusion_task import RecordFusionTask

    config = zoo.config("shapes-fusion-late-tiny", **{
        "data.dataset": "jsonl", "data.path": "hateful_memes/train.jsonl"})
    metrics = RecordFusionTask(config, "runs/memes").run()
    print(metrics["accuracy"], metrics["macro_f1"], metrics["auroc"])
    ```
    """

    family = "fusion"

    def __init__(self, config, output_dir):
        # A record is one image and one text: the Shapes presets' `data.texts_per_image` does not apply.
        config = copy.deepcopy(config)
        if config["data"]["texts_per_image"] != 1:
            print(
                f"mmkeras: `data.texts_per_image`={config['data']['texts_per_image']} does not apply to "
                f"{config['data']['dataset']} records (one image and one text each); using 1."
            )
            config["data"]["texts_per_image"] = 1
        super().__init__(config, output_dir)
        for field in ("image_encoder", "text_encoder"):
            if not config.get(field):
                raise ValueError(f"The fusion task needs `{field}`: its records are image + text.")
        if config["data"]["augment"]:
            raise ValueError("`data.augment` must be false for the fusion task (crops can change labels).")

    def prepared(self):
        names = list(self.class_names)
        if len(names) < 2:
            raise ValueError(
                f"`data.path` {self.config['data']['path']!r}: the fusion task needs a `label` field "
                f"with at least 2 classes in the training records, got {names}."
            )
        head = (
            {"type": "binary", "labels": names}
            if len(names) == 2
            else {"type": "multiclass", "num_classes": len(names), "labels": names}
        )
        config = copy.deepcopy(self.config)
        config.setdefault("model", {})["heads"] = {LABEL_HEAD: head}
        self.config = config
        self.heads = {LABEL_HEAD: head}

    def reader_arguments(self):
        return {"label_head": LABEL_HEAD}

    def map_batches(self, dataset):
        binary = self.heads[LABEL_HEAD]["type"] == "binary"

        def cast(features, labels):
            # A held-out label the training split lacks (-1) weighs nothing in the validation loss.
            label = labels[LABEL_HEAD]
            weight = tf.cast(label >= 0, tf.float32)
            label = tf.maximum(label, 0)
            return features, {LABEL_HEAD: tf.cast(label, tf.float32) if binary else label}, {LABEL_HEAD: weight}

        return dataset.map(cast)

    def evaluate(self, model):
        self.prepare_data()
        num_classes = len(self.class_names)
        batch = self.config["eval"]["batch_size"]
        scores = {name: [] for name in CONDITIONS}
        y_true = []
        unknown = 0
        for images, texts, labels in self.held_out_batches():
            keep = np.flatnonzero((labels >= 0) & (labels < num_classes))
            unknown += len(labels) - len(keep)
            if not keep.size:
                continue
            first = [texts[i][0] if texts[i] else "" for i in keep]
            has_text = np.array([1.0 if t else 0.0 for t in first], "float32")
            token_ids = self.tokenizer(tf.constant(first))
            for name, absent in CONDITIONS.items():
                inputs = {
                    "images": images[keep],
                    "token_ids": token_ids,
                    "image_present": np.zeros(len(keep), "float32") if "image" in absent else np.ones(len(keep), "float32"),
                    "text_present": np.zeros(len(keep), "float32") if "text" in absent else has_text,
                }
                outputs = predict_full_batches(model, inputs, batch)  # one trace, whatever `keep` leaves
                scores[name].append(np.asarray(model.probabilities(outputs)[LABEL_HEAD]))
            y_true.append(labels[keep])
        if not y_true:
            raise ValueError(
                f"The held-out split of `data.path` {self.config['data']['path']!r} has no labelled "
                "example: raise `data.val_fraction`."
            )
        y_true = np.concatenate(y_true)
        both = np.concatenate(scores["both"])
        report = classification_metrics(y_true, both, class_names=self.class_names)
        metrics = {"accuracy": report["accuracy"], "macro_f1": report["macro_f1"]}
        if "auroc" in report:
            metrics["auroc"] = report["auroc"]
        if "auroc_ovr_macro" in report:
            metrics["auroc_ovr_macro"] = report["auroc_ovr_macro"]
        for name in ("image_missing", "text_missing"):
            predicted = _labels_of(np.concatenate(scores[name]))
            metrics[f"accuracy_{name}"] = accuracy(y_true, predicted)
            metrics[f"macro_f1_{name}"] = macro_f1(y_true, predicted, num_classes=num_classes)
        majority = np.bincount(self._training_labels(), minlength=num_classes).argmax()
        metrics["baseline_majority_accuracy"] = accuracy(y_true, np.full_like(y_true, majority))
        metrics[LABEL_HEAD] = report
        metrics["num_test_examples"] = int(len(y_true))
        metrics["num_test_unknown_label"] = int(unknown)
        metrics.update(self.data_metrics())
        return metrics

    def _training_labels(self):
        return np.array([label for _, label in self.training_texts_and_labels() if label >= 0], np.int64)
