import numpy as np
import tensorflow as tf

from mmkeras.data.shapes import ANSWER_VOCABULARY, COLORS, NEGATIVE_KINDS, QUESTION_TYPES
from mmkeras.metrics.classification import accuracy, auroc, classification_metrics, macro_f1
from mmkeras.models import build_from_config
from mmkeras.models.fusion_classifier import normalize_heads
from mmkeras.tasks.shapes_task import ShapesTask
from mmkeras.tasks.task import init_tower
from mmkeras.training.full_batches import pad_to_full_batches

# The heads a Shapes fusion run trains, by name: question answering and caption matching.
QA_HEAD, MATCH_HEAD = "answer", "match"
CONDITIONS = {"both": (), "image_missing": ("image",), "text_missing": ("text",)}
SPLIT_SEEDS = {"train": 1, "val": 2, "test": 3}


class FusionTask(ShapesTask):
    """Trains and evaluates a fusion classifier on Shapes QA and caption matching.

    Multi-task data: the model's heads choose the tasks. A multiclass head
    named `"answer"` (labels = `Shapes.answer_vocabulary`) learns question
    answering (image + question -> answer); a binary head named `"match"`
    learns caption matching ("does this caption describe this image?", image +
    caption -> yes / no, hard negatives differing in one attribute). Every
    scene gives 5 questions and 4 captions to match (hard negatives), plus one
    easy negative (another scene's caption naming a colour or shape absent
    from it) and one more true caption, which give the matching head a signal
    before it can resolve the hard pairs; accuracy is reported per negative
    kind, so easy and hard pairs read separately. All examples are
    shuffled into one stream, and each example carries a per-head sample
    weight (`{"answer": 1, "match": 0}` for a question, the reverse for a
    caption), so it trains only its own head while the towers and the fusion
    are shared. With `data.texts_per_image=K > 1` a step trains on
    `global_batch_size` texts (a multiple of K) from `global_batch_size / K`
    scenes, K examples of each (drawn afresh every epoch), so each image is
    encoded once for its K texts, and an epoch is every scene once. Images are not augmented (flips and crops would change the
    spatial answers), so `data.augment` must be false.

    Evaluation on the test split, per head: accuracy, macro-F1, AUROC
    (binary; one-vs-rest macro for the answers), per-class precision / recall
    / F1, and the same with the image missing and with the text missing
    (presence mask 0), plus accuracy per question type (exists, count, color,
    position) and per hard-negative kind. Flat summary keys such as
    `answer_accuracy`, `answer_accuracy_color`, `match_auroc`,
    `match_accuracy_image_missing` sit next to the detailed dicts. Export: a
    SavedModel with `classify(image_bytes, text)` (see
    `mmkeras.export.fusion_export`).

    Args:
        config: a resolved run config with `task="fusion"`.
        output_dir: the run directory.

    Example:

    ```python
    task = FusionTask(zoo.config("shapes-fusion-early-tiny"), "runs/early")
    probabilities = task.predict(task.train(), split="test", absent=("image",))  # text alone
    ```
    """

    per_image_fields = ("texts_per_image",)

    def __init__(self, config, output_dir):
        super().__init__(config, output_dir)
        self.images_per_batch = self._images_per_batch()  # a batch of K texts per scene splits evenly
        if config["data"]["augment"]:
            raise ValueError(
                "`data.augment` must be false for the fusion task: flips and crops would change the "
                "answers to position questions and the truth of spatial captions."
            )
        heads = normalize_heads(config.get("model", {}).get("heads"))
        self.heads = heads
        self.tasks = [h for h in (QA_HEAD, MATCH_HEAD) if h in heads]
        if not self.tasks:
            raise ValueError(
                f"`model.heads` must hold an {QA_HEAD!r} head (question answering) and/or a "
                f"{MATCH_HEAD!r} head (caption matching); got {sorted(heads)}."
            )
        if QA_HEAD in heads:
            spec = heads[QA_HEAD]
            if spec["type"] != "multiclass" or spec["labels"] != list(ANSWER_VOCABULARY):
                raise ValueError(
                    f"`model.heads.{QA_HEAD}` must be a multiclass head whose `labels` are the Shapes "
                    f"answer vocabulary {list(ANSWER_VOCABULARY)}."
                )
        if MATCH_HEAD in heads and heads[MATCH_HEAD]["type"] != "binary":
            raise ValueError(f"`model.heads.{MATCH_HEAD}` must be a binary head.")
        for cfg_key in ("image_encoder", "text_encoder"):
            if not config.get(cfg_key):
                raise ValueError(f"The fusion task needs `{cfg_key}`: Shapes examples are image + text.")
        self._examples = {}

    def build_from_init(self, init):
        """The configured fusion and heads on the init model's image and text towers (and its preprocessing)."""
        directory = self.config["train"]["init"]
        towers = {name: init_tower(init, name, directory) for name in ("image_encoder", "text_encoder")}
        return build_from_config(self.model_config(), preprocessor=self.model_preprocessor(), towers=towers)

    # --- data ---------------------------------------------------------------
    def tokenizer_corpus(self):
        """Captions, questions and matching texts of the training split."""
        corpus = []
        for scene in self.shapes.scenes("train"):
            corpus += scene["captions"]
            corpus += [q["question"] for q in scene["questions"]]
            corpus += [m["text"] for m in scene["match"]]
        return corpus

    def examples(self, split):
        """Every example of a split for the trained heads, as NumPy columns.

        Returns:
            A dict of equal-length arrays: `scene` (image index in the split),
            `token_ids` int32 `[N, L]`, `text` (str), `task` ("answer" or
            "match"), `answer_id` (-1 for match examples), `match_label`
            (-1 for questions), `question_type`, `negative_kind` ("none" for
            a true caption, "easy" or one of `NEGATIVE_KINDS`) and `pair_set`
            ("hard" for the Shapes pairs, "easy" for `_easy_match_pairs`);
            "" where not applicable.
        """
        if split in self._examples:
            return self._examples[split]
        rows = []
        for i, scene in enumerate(self.shapes.scenes(split)):
            if QA_HEAD in self.tasks:
                for q in scene["questions"]:
                    answer = ANSWER_VOCABULARY.index(q["answer"])
                    rows.append((i, q["question"], QA_HEAD, answer, -1, q["question_type"], "", ""))
            if MATCH_HEAD in self.tasks:
                for m in scene["match"]:
                    rows.append((i, m["text"], MATCH_HEAD, -1, m["label"], "", m["negative_kind"], "hard"))
        if MATCH_HEAD in self.tasks:
            rows += self._easy_match_pairs(split)
        if not rows:
            raise ValueError(f"The {split!r} split is empty: raise `data.num_{split}`.")
        scene, text, task, answer, label, qtype, nkind, pair_set = zip(*rows)
        columns = {
            "scene": np.array(scene, np.int64),
            "text": np.array(text, object),
            "task": np.array(task),
            "answer_id": np.array(answer, np.int64),
            "match_label": np.array(label, np.int64),
            "question_type": np.array(qtype),
            "negative_kind": np.array(nkind),
            "pair_set": np.array(pair_set),
        }
        columns["token_ids"] = self.tokenizer(tf.constant(list(text))).numpy()
        self._examples[split] = columns
        return columns

    def _easy_match_pairs(self, split):
        """Matching pairs whose negative is another scene's caption (kind "easy").

        The Shapes matching pairs are hard: each negative differs from a true caption in one
        attribute, which gives almost no signal to a model that does not yet relate words to
        image content. Per scene, this adds one easy negative (a true caption of another scene
        of the same split that names a colour or shape absent from this one, so certainly false
        here) and one more true caption of the scene, keeping the labels balanced. Evaluation
        reports accuracy per negative kind, so the easy and the hard pairs read separately.
        """
        scenes = self.shapes.scenes(split)
        rng = np.random.default_rng([self.config["data"]["seed"], SPLIT_SEEDS[split]])
        rows = []
        for i, scene in enumerate(scenes):
            colors = {o["color"] for o in scene["objects"]}
            shapes = {o["shape"] for o in scene["objects"]}
            for _ in range(100):
                other = scenes[int(rng.integers(len(scenes)))]
                text = other["captions"][int(rng.integers(len(other["captions"])))]
                if _names_absent_attribute(text, colors, shapes):
                    positive = scene["captions"][int(rng.integers(len(scene["captions"])))]
                    rows.append((i, text, MATCH_HEAD, -1, 0, "", "easy", "easy"))
                    rows.append((i, positive, MATCH_HEAD, -1, 1, "", "none", "easy"))
                    break
        return rows

    @property
    def texts_per_image(self):
        return self.config["data"]["texts_per_image"]

    def _images_per_batch(self):
        """Scenes a step: `global_batch_size` (texts) divided by `texts_per_image` (checked once, in `__init__`)."""
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
        batch, scenes = self.config["train"]["global_batch_size"], self.images_per_batch
        if self.texts_per_image > 1:
            num_scenes = len(self.shapes.images("train"))
            count, steps = num_scenes * self.texts_per_image, num_scenes // scenes
        else:
            count = len(self.examples("train")["scene"])
            steps = count // batch
        if not steps:
            raise ValueError(
                f"`data.num_train`={self.config['data']['num_train']} scenes give {count} examples, "
                f"fewer than `train.global_batch_size`={batch}."
            )
        return steps

    def _examples_by_scene(self, split="train"):
        """`[scenes, M]` int64 example indices of each scene of `split` (padded with -1)."""
        scene = self.examples(split)["scene"]
        num_scenes = len(self.shapes.images(split))
        counts = np.bincount(scene, minlength=num_scenes)
        k = self.texts_per_image
        if counts.min() < k:
            raise ValueError(
                f"`data.texts_per_image`={k} is more than the {counts.min()} {'training' if split == 'train' else split} examples of some "
                "scene: lower it."
            )
        table = np.full((num_scenes, counts.max()), -1, np.int64)
        order = np.argsort(scene, kind="stable")
        column = np.arange(len(scene)) - np.repeat(np.cumsum(counts) - counts, counts)
        table[scene[order], column] = order
        return table

    def _make_split_tensors(self, split):
        ex = self.examples(split)
        labels, weights = {}, {}
        if QA_HEAD in self.tasks:
            labels[QA_HEAD] = np.maximum(ex["answer_id"], 0)
            weights[QA_HEAD] = (ex["task"] == QA_HEAD).astype("float32")
        if MATCH_HEAD in self.tasks:
            labels[MATCH_HEAD] = np.maximum(ex["match_label"], 0).astype("float32")
            weights[MATCH_HEAD] = (ex["task"] == MATCH_HEAD).astype("float32")
        by_scene = self._examples_by_scene(split) if self.texts_per_image > 1 else np.zeros((0, 0), np.int64)
        return (
            tf.constant(self.shapes.images(split)),
            tf.constant(ex["scene"]),
            tf.constant(by_scene),
            tf.constant(ex["token_ids"]),
            {k: tf.constant(v) for k, v in labels.items()},
            {k: tf.constant(v) for k, v in weights.items()},
        )

    def epoch_dataset(self, epoch, split="train"):
        """One epoch of `({"images", "token_ids", "*_present"}, labels, sample weights)` batches of `split`.

        The epoch is a pure function of (seed, epoch). With `data.texts_per_image=1` it is
        every training example once (questions and captions interleaved), each batch
        `global_batch_size` (image, text) pairs. With `K > 1` it is every scene once, each
        with K of its examples drawn afresh per epoch: a batch is `global_batch_size` texts
        and their `global_batch_size / K` images, image i's texts side by side, so the image
        tower runs once per image (`FusionClassifier` repeats its features).
        """
        images, scenes, by_scene, token_ids, labels, weights = self._split_tensors(split)
        preprocessor = self.preprocessor
        k = self.texts_per_image
        seed = tf.cast(self.config["train"]["seed"], tf.int64)
        if k > 1:
            count = tf.shape(by_scene, out_type=tf.int64)[0]
            # K of each scene's examples: the K smallest of uniform noise, padding pushed last.
            noise = tf.random.stateless_uniform(tf.shape(by_scene), tf.stack([seed + 1, epoch]))
            picks = tf.argsort(tf.where(by_scene >= 0, noise, 2.0), axis=1)[:, :k]
            picked = tf.gather(by_scene, picks, batch_dims=1)  # [scenes, K] example indices
        else:
            count = tf.shape(scenes, out_type=tf.int64)[0]
        order = tf.argsort(tf.random.stateless_uniform([count], tf.stack([seed, epoch])))

        def to_model_inputs(index):
            if k > 1:
                scene, index = index, tf.reshape(tf.gather(picked, index), [-1])
            else:
                scene = tf.gather(scenes, index)
            ones = tf.ones(tf.shape(index), tf.float32)
            x = {
                "images": preprocessor(tf.gather(images, scene)),
                "token_ids": tf.gather(token_ids, index),
                "image_present": ones,
                "text_present": ones,
            }
            y = {name: tf.gather(v, index) for name, v in labels.items()}
            w = {name: tf.gather(v, index) for name, v in weights.items()}
            return x, y, w

        return (
            tf.data.Dataset.from_tensor_slices(order)
            .batch(self.images_per_batch, drop_remainder=True)  # static shapes (K=1: global_batch_size)
            .map(to_model_inputs, num_parallel_calls=tf.data.AUTOTUNE)
        )

    # --- evaluation ---------------------------------------------------------
    def predict(self, model, split="test", absent=()):
        """Probabilities of every head on a split, with the modalities in `absent` masked out.

        Returns:
            `{head: probabilities}` (`[N, C]` for "answer", `[N]` for "match"),
            for every example of `examples(split)`.
        """
        return self.predict_conditions(model, split, {"only": tuple(absent)})["only"]

    def predict_conditions(self, model, split="test", conditions=None):
        """`predict` under several missing-modality conditions in one pass over the data.

        Args:
            model: the fusion classifier.
            split: "train", "val" or "test".
            conditions: `{name: absent modalities}`; default `CONDITIONS` (both
                present, image missing, text missing).

        Returns:
            `{name: {head: probabilities}}`.
        """
        conditions = dict(CONDITIONS if conditions is None else conditions)
        ex = self.examples(split)
        images = tf.constant(self.shapes.images(split))
        preprocessor = self.preprocessor
        batch = self.config["eval"]["batch_size"]
        count = len(ex["scene"])
        # Every example once per condition, condition after condition, with its presence flags.
        presence = {
            modality: np.repeat([float(modality not in absent) for absent in conditions.values()], count)
            for modality in ("image", "text")
        }

        def to_model_inputs(scene, token_ids, image_present, text_present):
            return {
                "images": preprocessor(tf.gather(images, scene)),
                "token_ids": token_ids,
                "image_present": image_present,
                "text_present": text_present,
            }

        columns, rows = pad_to_full_batches((  # every batch full: one trace of the predict step
            np.tile(ex["scene"], len(conditions)),
            np.tile(ex["token_ids"], (len(conditions), 1)),
            presence["image"].astype("float32"),
            presence["text"].astype("float32"),
        ), batch)
        dataset = (
            tf.data.Dataset.from_tensor_slices(columns)
            .batch(batch)
            .map(to_model_inputs, num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE)
        )
        outputs = {k: np.asarray(v)[:rows] for k, v in model.probabilities(model.predict(dataset, verbose=0)).items()}
        return {
            name: {head: probs[i * count : (i + 1) * count] for head, probs in outputs.items()}
            for i, name in enumerate(conditions)
        }

    def evaluate(self, model):
        ex = self.examples("test")
        predictions = self.predict_conditions(model, "test")
        metrics = {}
        for head in self.tasks:
            rows = ex["task"] == head
            spec = self.heads[head]
            if head == QA_HEAD:
                y_true = ex["answer_id"][rows]
                groups = {"per_question_type": (ex["question_type"][rows], QUESTION_TYPES)}
            else:
                y_true = ex["match_label"][rows]
                groups = {
                    "per_negative_kind": (ex["negative_kind"][rows], ("none", "easy") + NEGATIVE_KINDS),
                    "per_pair_set": (ex["pair_set"][rows], ("hard", "easy")),
                }
            scores = predictions["both"][head][rows]
            report = classification_metrics(y_true, scores, class_names=spec["labels"])
            y_pred = _labels_of(scores)
            for group, (keys, names) in groups.items():
                report[group] = {
                    name: {
                        "accuracy": accuracy(y_true[keys == name], y_pred[keys == name]),
                        "num_examples": int(np.sum(keys == name)),
                    }
                    for name in names
                    if np.any(keys == name)
                }
            for condition in ("image_missing", "text_missing"):
                cond_scores = predictions[condition][head][rows]
                cond_pred = _labels_of(cond_scores)
                report[condition] = {
                    "accuracy": accuracy(y_true, cond_pred),
                    "macro_f1": macro_f1(y_true, cond_pred, num_classes=len(spec["labels"])),
                }
                if head == MATCH_HEAD and 0 < y_true.sum() < y_true.size:
                    report[condition]["auroc"] = auroc(y_true, cond_scores)
            metrics[head] = report
            # Flat summary keys.
            metrics[f"{head}_accuracy"] = report["accuracy"]
            metrics[f"{head}_macro_f1"] = report["macro_f1"]
            if "auroc" in report:
                metrics[f"{head}_auroc"] = report["auroc"]
            for condition in ("image_missing", "text_missing"):
                metrics[f"{head}_accuracy_{condition}"] = report[condition]["accuracy"]
            group = "per_question_type" if head == QA_HEAD else "per_pair_set"
            for name, value in report[group].items():
                metrics[f"{head}_accuracy_{name}"] = value["accuracy"]
        metrics["num_test_scenes"] = int(len(self.shapes.images("test")))
        metrics["num_test_examples"] = {head: int(np.sum(ex["task"] == head)) for head in self.tasks}
        return metrics

_SHAPE_OF_WORD = {
    word: shape
    for shape, words in {
        "circle": ("circle", "circles", "disk", "disks"),
        "square": ("square", "squares", "box", "boxes"),
        "triangle": ("triangle", "triangles"),
        "star": ("star", "stars"),
        "hexagon": ("hexagon", "hexagons"),
    }.items()
    for word in words
}


def _names_absent_attribute(text, colors, shapes):
    """Whether a Shapes caption names a colour or a shape that is not in the scene.

    Shapes captions only assert presence (counts >= 1, positions, relations), so such a
    caption is false for the scene.
    """
    for word in text.split():
        if word in COLORS and word not in colors:
            return True
        if word in _SHAPE_OF_WORD and _SHAPE_OF_WORD[word] not in shapes:
            return True
    return False


def _labels_of(scores):
    """Predicted labels from `[N, C]` probabilities (argmax) or `[N]` binary ones (>= 0.5)."""
    return np.argmax(scores, axis=-1) if scores.ndim == 2 else (scores >= 0.5).astype(np.int64)
