import copy

import numpy as np

from mmkeras.metrics.classification import (accuracy, auroc, classification_metrics, macro_f1,
                                            multilabel_macro_f1, multilabel_metrics)
from mmkeras.models import build_from_config
from mmkeras.tasks.task import Task, does_not_apply, init_tower
from mmkeras.training.full_batches import predict_full_batches

CONDITIONS = {"both": (), "image_missing": ("image",), "text_missing": ("text",)}


class FusionTask(Task):
    """Trains and evaluates a fusion classifier (image + text -> label) on any labelled records.

    The data chooses the heads (`TaskData.fusion_heads`): on Shapes, the
    configured `"answer"` head (question answering, labels =
    `Shapes.answer_vocabulary`) and / or `"match"` head (caption matching:
    "does this caption describe this image?", hard negatives differing in one
    attribute, plus an easy pair set) and / or `"cells"` head (multilabel:
    which of the 9 grid cells hold the objects a text talks about, an
    auxiliary head that teaches the fusion to find an object by what the text
    says of it) and / or `"relations"` head (multilabel: which of left of /
    right of / above / below hold between the two objects a relation text
    names); on real data (a CSV / JSONL manifest,
    an image folder, a TFDS dataset with a label: Hateful-Memes-style), one
    head named `"label"` over the classes of the training labels, written
    into the run's `config.json`. Every example is one image, one text and a
    label per head, with a per-head sample weight, so an example trains only
    its own head while the towers and the fusion are shared. With
    `data.texts_per_image=K > 1` (Shapes) a step trains on
    `global_batch_size` texts from `global_batch_size / K` images, K examples
    of each, so each image is encoded once for its K texts. Records without
    text are kept with the text marked missing (`text_present = 0`). Images
    are not augmented (flips and crops would change spatial answers), so
    `data.augment` must be false.

    Evaluation on the data's evaluation split (Shapes: test; real data: held
    out), per head: accuracy (exact match for a multilabel head, which also
    gets label accuracy and micro-F1), macro-F1, AUROC (binary; one-vs-rest macro for
    more classes), per-class precision / recall / F1, the majority-class
    accuracy as a reference, and accuracy and macro-F1 with the image missing
    and with the text missing (presence mask 0); accuracy per value of every
    metadata column the examples carry (Shapes: per question type, per
    negative kind, per pair set). Flat summary keys (`answer_accuracy`,
    `answer_accuracy_color`, `match_auroc`, `match_accuracy_image_missing`;
    unprefixed for a single `"label"` head) sit next to the detailed dicts.
    Held-out labels the training split lacks are left out and counted.
    Export: a SavedModel with `classify(image_bytes, text)`.

    Args:
        config: a resolved run config with `task="fusion"`.
        output_dir: the run directory.

    Example:

    ```python
    from mmkeras import zoo
    from mmkeras.tasks.fusion_task import FusionTask

    task = FusionTask(zoo.config("shapes-fusion-early-tiny"), "runs/early")
    metrics = task.run()
    print(metrics["answer_accuracy"], metrics["match_accuracy_image_missing"])
    ```
    """

    family = "fusion"
    per_image_fields = ("texts_per_image",)

    def __init__(self, config, output_dir):
        data = config["data"]
        if data["dataset"] != "shapes" and data["texts_per_image"] != 1:
            config = copy.deepcopy(config)
            does_not_apply(config, "data", "texts_per_image", 1,
                           f"{data['dataset']} records hold one image and one text each")
        super().__init__(config, output_dir)
        for field in ("image_encoder", "text_encoder"):
            if not config.get(field):
                raise ValueError(f"The fusion task needs `{field}`: its examples are image + text.")
        if config["data"]["augment"]:
            raise ValueError(
                "`data.augment` must be false for the fusion task: flips and crops would change the "
                "answers to position questions, the truth of spatial captions, or a record's label."
            )
        self.images_per_batch = self._images_per_batch()
        self.heads = None
        self.evaluated = None  # (model, predictions) of the latest `evaluate`
        if not self.data.needs_preparation:
            self.prepared()  # heads known without reading the data (Shapes: the configured ones): checked at once

    def prepared(self):
        """Sets the heads from the data (real data: from the training labels) and writes them into the config."""
        heads = self.data.fusion_heads(self.config.get("model", {}).get("heads"))
        if self.config.get("model", {}).get("heads") != heads:
            config = copy.deepcopy(self.config)
            config.setdefault("model", {})["heads"] = heads
            self.config = config
        self.heads = heads

    def build_from_init(self, init):
        """The configured fusion and heads on the init model's image and text towers (and its preprocessing).

        An init model without a text tower (a captioner) gives the image tower only: the text tower is then
        the config's, new, reading the task's own tokenizer."""
        directory = self.config["train"]["init"]
        names = ("image_encoder", "text_encoder") if self.init_uses_tokenizer(init) else ("image_encoder",)
        towers = {name: init_tower(init, name, directory) for name in names}
        return build_from_config(self.model_config(), preprocessor=self.model_preprocessor(), towers=towers)

    # --- data ---------------------------------------------------------------
    @property
    def texts_per_image(self):
        return self.config["data"]["texts_per_image"]

    def _images_per_batch(self):
        """Images a step: `global_batch_size` (texts) divided by `texts_per_image` (checked once)."""
        batch, k = self.config["train"]["global_batch_size"], self.texts_per_image
        if batch % k:
            raise ValueError(
                f"`train.global_batch_size`={batch} must be a multiple of `data.texts_per_image`={k}: "
                "each batch holds whole scenes with K texts each."
            )
        replicas = self.strategy.num_replicas_in_sync
        if k > 1 and (batch // k) % replicas:
            raise ValueError(
                f"`train.global_batch_size`={batch} holds {batch // k} scenes of `data.texts_per_image`={k} "
                f"texts, which the {replicas} replicas cannot share evenly."
            )
        return batch // k

    @property
    def steps_per_epoch(self):
        return self.data.example_steps(self.batch_size(), self.texts_per_image)

    def epoch_dataset(self, epoch, split="train"):
        """One epoch of `({"images", "token_ids", "*_present"}, labels, sample weights)` batches of `split`
        (see `TaskData.example_batches`)."""
        if self.heads is None:
            self.prepare()
        batch = self.batch_size(split)
        examples = self.data.example_batches(epoch, split, self.tokenizer, self.preprocessor, batch,
                                             self.texts_per_image)
        return self.with_static_batch(examples, batch)

    # --- evaluation ---------------------------------------------------------
    def predictions(self, model):
        """Every head's probabilities on the evaluation examples, under each of `CONDITIONS`.

        `evaluate` keeps what it scored in `evaluated` (`(model, predictions)`), so that the run's
        report shows the very predictions its metrics count (`evaluated_predictions`).

        Returns:
            `{"labels": {head: int [N]} (-1 where an example does not train the head),
            "probabilities": {condition: {head: [N, C] or [N]}}, "metadata": {column: str [N]}}`.
        """
        if self.heads is None:
            self.prepare()
        batch = self.config["eval"]["batch_size"]
        labels, metadata = {}, {}
        probabilities = {name: {} for name in CONDITIONS}
        for examples in self.data.evaluation_examples(self.tokenizer, self.preprocessor, self.evaluation_chunk()):
            count = len(examples["text_present"])
            for head, values in examples["labels"].items():
                labels.setdefault(head, []).append(values)
            for column, values in examples["metadata"].items():
                metadata.setdefault(column, []).append(values)
            for name, absent in CONDITIONS.items():
                inputs = {
                    "images": examples["images"],
                    "token_ids": examples["token_ids"],
                    "image_present": np.full(count, 0.0 if "image" in absent else 1.0, "float32"),
                    "text_present": np.zeros(count, "float32") if "text" in absent else examples["text_present"],
                }
                outputs = model.probabilities(predict_full_batches(model, inputs, batch))  # one trace
                for head in self.heads:
                    probabilities[name].setdefault(head, []).append(np.asarray(outputs[head]))
        if not labels:
            raise ValueError(f"The evaluation split of {self.data.describe()} has no labelled example: "
                             "raise `data.val_fraction`.")
        return {
            "labels": {head: np.concatenate(v) for head, v in labels.items()},
            "probabilities": {name: {head: np.concatenate(v) for head, v in by_head.items()}
                              for name, by_head in probabilities.items()},
            "metadata": {column: np.concatenate(v) for column, v in metadata.items()},
        }

    def evaluated_predictions(self, model):
        """The predictions the latest `evaluate` scored if it scored `model`, else `predictions(model)`."""
        if self.evaluated is not None and self.evaluated[0] is model:
            return self.evaluated[1]
        return self.predictions(model)

    def evaluate(self, model):
        predicted = self.predictions(model)
        self.evaluated = (model, predicted)
        orders = self.data.metadata_orders()
        single = list(self.heads) == ["label"]  # real data: flat keys without a head prefix
        metrics, scored = {}, np.zeros(len(next(iter(predicted["labels"].values()))), bool)
        for head, spec in self.heads.items():
            scoring = _HeadScoring(spec)
            rows = known_rows(predicted["labels"][head])
            scored |= rows
            y_true = predicted["labels"][head][rows]
            scores = predicted["probabilities"]["both"][head][rows]
            report = scoring.report(y_true, scores)
            y_pred = scoring.labels(scores)
            for column, values in predicted["metadata"].items():
                values = values[rows]
                names = [n for n in orders.get(column, sorted(set(values))) if n and np.any(values == n)]
                if names:
                    report[f"per_{column}"] = {
                        name: {"accuracy": accuracy_of(y_true[values == name], y_pred[values == name]),
                               "num_examples": int(np.sum(values == name))}
                        for name in names
                    }
            for condition in ("image_missing", "text_missing"):
                cond_scores = predicted["probabilities"][condition][head][rows]
                cond_pred = scoring.labels(cond_scores)
                report[condition] = {"accuracy": accuracy_of(y_true, cond_pred),
                                     "macro_f1": scoring.macro_f1(y_true, cond_pred)}
                if cond_scores.ndim == 1 and 0 < y_true.sum() < y_true.size:
                    report[condition]["auroc"] = auroc(y_true, cond_scores)
            majority = scoring.majority(self.data.training_labels(head))
            report["baseline_majority_accuracy"] = accuracy_of(y_true, np.broadcast_to(majority, y_true.shape))
            metrics[head] = report
            prefix = "" if single else f"{head}_"
            for key in ("accuracy", "macro_f1", "auroc", "auroc_ovr_macro", "baseline_majority_accuracy"):
                if key in report:
                    metrics[f"{prefix}{key}"] = report[key]
            for condition in ("image_missing", "text_missing"):
                for key, value in report[condition].items():
                    if key != "auroc":
                        metrics[f"{prefix}{key}_{condition}"] = value
            group = self.data.summary_groups.get(head)
            for name, value in report.get(f"per_{group}", {}).items():
                metrics[f"{prefix}accuracy_{name}"] = value["accuracy"]
        counts = {head: int(np.sum(known_rows(predicted["labels"][head]))) for head in self.heads}
        metrics["num_test_examples"] = counts["label"] if single else counts
        metrics["num_test_unknown_label"] = int(np.sum(~scored))
        metrics.update(self.data.metrics())
        return metrics


class _HeadScoring:
    """How one head's predictions are scored: one label per example (argmax, or a binary threshold), or
    several (`"multilabel"`: each label >= 0.5, exact-match accuracy, per-label majority)."""

    def __init__(self, spec):
        self.multilabel = spec["type"] == "multilabel"
        self.names = list(spec["labels"])

    def report(self, y_true, scores):
        metrics = multilabel_metrics if self.multilabel else classification_metrics
        return metrics(y_true, scores, class_names=self.names)

    def labels(self, scores):
        return labels_of(scores, self.multilabel)

    def macro_f1(self, y_true, y_pred):
        if self.multilabel:
            return multilabel_macro_f1(y_true, y_pred)
        return macro_f1(y_true, y_pred, num_classes=len(self.names))

    def majority(self, training):
        """The majority-class prediction of the training labels (each label's majority value)."""
        if self.multilabel:
            return (training.mean(axis=0) >= 0.5 if training.size else np.zeros(len(self.names))).astype(np.int64)
        return np.bincount(training, minlength=len(self.names)).argmax() if training.size else 0


def labels_of(scores, multilabel=False):
    """Predicted labels from `[N, C]` probabilities (argmax; each label >= 0.5 when `multilabel`) or `[N]`
    binary ones (>= 0.5).

    Example:

    >>> import numpy as np
    >>> labels_of(np.array([[0.2, 0.8], [0.9, 0.1]])).tolist(), labels_of(np.array([0.7, 0.2])).tolist()
    ([1, 0], [1, 0])
    >>> labels_of(np.array([[0.6, 0.8], [0.9, 0.1]]), multilabel=True).tolist()
    [[1, 1], [1, 0]]
    """
    if multilabel or scores.ndim == 1:
        return (scores >= 0.5).astype(np.int64)
    return np.argmax(scores, axis=-1)


def known_rows(labels):
    """Which examples a head's labels train: `[N]` labels >= 0, or `[N, C]` multilabel rows not all -1.

    Example:

    >>> import numpy as np
    >>> known_rows(np.array([2, -1, 0])).tolist(), known_rows(np.array([[0, 1], [-1, -1]])).tolist()
    ([True, False, True], [True, False])
    """
    return labels >= 0 if labels.ndim == 1 else labels[:, 0] >= 0


def accuracy_of(y_true, y_pred):
    """Accuracy of `[N]` labels, or exact-match accuracy of `[N, C]` multilabel ones (every label right).

    Example:

    >>> import numpy as np
    >>> accuracy_of(np.array([1, 0]), np.array([1, 1])), accuracy_of(np.array([[1, 0]]), np.array([[1, 0]]))
    (0.5, 1.0)
    """
    if y_true.ndim == 2:
        return float(np.mean(np.all(y_true == y_pred, axis=1)))
    return accuracy(y_true, y_pred)
