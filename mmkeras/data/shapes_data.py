"""`ShapesData`: the built-in Shapes scenes as a run's records, generated in memory."""

import numpy as np
import tensorflow as tf

from mmkeras.data.shapes import (
    ANSWER_VOCABULARY, CELL_CLASSES, COLORS, NEGATIVE_KINDS, POSITIONS, QUESTION_TYPES, RELATIONS, Shapes,
)
from mmkeras.data.shapes_references import reference_scores as shapes_reference_scores
from mmkeras.data.task_data import TaskData
from mmkeras.models.fusion_classifier import normalize_heads

# The heads a Shapes fusion run trains, by name: question answering and caption matching.
QA_HEAD, MATCH_HEAD, CELLS_HEAD, RELATIONS_HEAD = "answer", "match", "cells", "relations"
# Multilabel heads a Shapes fusion run may add, labelled from the texts' annotations of the same name: the
# grid cells a text talks about, and the relations that hold between the two objects of a relation text.
ANNOTATION_HEADS = {CELLS_HEAD: POSITIONS, RELATIONS_HEAD: RELATIONS}
SPLIT_SEEDS = {"train": 1, "val": 2, "test": 3}
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


class ShapesData(TaskData):
    """The Shapes splits (train / val / test) as records with their metadata, for any family.

    A record is a scene: its image, its reference captions as `texts`, the shape of its largest
    object as `label`, and metadata: the kind of claim each caption makes (`text_kinds`: inventory,
    position, relation, ...), which splits text-to-image retrieval by kind; for captioning the set of
    every caption true of the scene
    (`true_captions`, which scores the generated captions), for fusion one example per question
    (head `"answer"`, with its `question_type`) and per matching text (head `"match"`, with its
    `negative_kind` and `pair_set`). A fusion model may also have a `"cells"` head (multilabel over
    the 9 grid cells, `POSITIONS`): which cells hold the objects each question or hard matching text
    talks about, true or false (the Shapes annotations' `cells`); it teaches a model to find an
    object by what the text says of it. And a `"relations"` head (multilabel over `RELATIONS`): for
    each relation text ("a red star left of a blue circle", true or false), which of the four
    relations hold between the two objects it names; it teaches a model to compare where they are.
    Easy pairs train neither (their text is another scene's caption), and the relations head trains
    only on relation texts. Evaluation reads the test split.

    Batches are pure functions of `(train.seed, epoch)` (exact resume): caption batches pair
    every image of the split with one caption, or `captions_per_image=K` distinct captions, drawn
    anew every epoch; example batches hold every example once (questions and captions
    interleaved), or with `texts_per_image=K > 1` every scene once with K of its examples, image
    i's texts side by side. Texts are tokenized once, when a split is first read, so the input
    pipeline only gathers ids.

    The matching pairs of Shapes are hard (each negative differs from a true caption in one
    attribute), so every scene also gets one easy pair set: a true caption of another scene that
    names a colour or shape absent from this one (so certainly false here), and one more true
    caption (`pair_set="easy"`), which give a matching head its first signal.

    Args:
        config: a resolved run config with `data.dataset="shapes"` (`data.image_size`,
            `data.seed`, `data.num_train|val|test`).
        family: "matching", "captioning" or "fusion".

    Example:

    ```python
    from mmkeras import zoo
    from mmkeras.data import ShapesData
    from mmkeras.preprocessing import ImagePreprocessor, SubwordTokenizer

    data = ShapesData(zoo.config("shapes-clip-tiny", **{"data.num_train": 16}), "matching")
    tokenizer = SubwordTokenizer.train(data.tokenizer_corpus(), 128, sequence_length=16)
    batch = next(iter(data.caption_batches(0, "train", tokenizer, ImagePreprocessor(64), 8)))
    batch["images"].shape, batch["token_ids"].shape   # (8, 64, 64, 3), (8, 16)
    ```
    """

    evaluation_split = "test"
    several_texts_per_image = True
    needs_preparation = False
    summary_groups = {QA_HEAD: "question_type", MATCH_HEAD: "pair_set"}

    def __init__(self, config, family):
        super().__init__(config, family)
        data = config["data"]
        self.shapes = Shapes(image_size=data["image_size"], seed=data["seed"], num_train=data["num_train"],
                             num_val=data["num_val"], num_test=data["num_test"])
        self.tasks = []
        self.annotation_heads = []  # of `ANNOTATION_HEADS`: the multilabel heads the run trains
        self._tensors = {}  # (split, what, tokenizer) -> the tensors its batches are drawn from
        self._examples = {}
        self._true_captions = {}  # test scene id -> every caption true of it

    def describe(self):
        return f"shapes ({self.config['data']['num_train']} training scenes)"

    @property
    def class_names(self):
        return list(self.shapes.class_names)

    named_classes = True  # the class names are words a text prompt can use (zero-shot)

    def num_records(self, split):
        return len(self.shapes.images(split))

    def validation_batch_size(self, batch_size, replicas):
        """Full training batches of the `val` split (`data.num_val` sets its size)."""
        return batch_size if self.config["data"]["num_val"] > 0 else 0

    def tokenizer_corpus(self):
        """The training captions; for fusion, each scene's captions, questions and matching texts."""
        corpus = []
        for scene in self.shapes.scenes("train"):
            corpus += scene["captions"]
            if self.family == "fusion":
                corpus += [q["question"] for q in scene["questions"]]
                corpus += [m["text"] for m in scene["match"]]
        return corpus

    def _cached(self, split, what, tokenizer, make):
        """`make()` built once per split and tokenizer, eagerly even inside a traced dataset function."""
        key = (split, what, id(tokenizer))
        if key not in self._tensors:
            with tf.init_scope():
                self._tensors[key] = make()
        return self._tensors[key]

    # --- caption batches (matching, captioning) ------------------------------------------
    def caption_steps(self, batch_size):
        num_train = self.config["data"]["num_train"]
        if num_train < batch_size:
            raise ValueError(f"`data.num_train`={num_train} is smaller than `train.global_batch_size`={batch_size}.")
        return num_train // batch_size

    def caption_batches(self, epoch, split, tokenizer, preprocessor, batch_size, captions_per_image=1):
        """One epoch of `{"images", "token_ids"}` batches of `split` (see the class docstring)."""
        batches = self.caption_pairs(epoch, split, tokenizer, batch_size, captions_per_image)
        return batches.map(lambda images, ids: {"images": preprocessor(images), "token_ids": ids},
                           num_parallel_calls=tf.data.AUTOTUNE)

    def caption_pairs(self, epoch, split, tokenizer, batch_size, captions_per_image=1):
        """The batches of `caption_batches` before image preprocessing: `(uint8 images, token ids)`."""
        def make():
            scenes = self.shapes.scenes(split)
            token_ids = tokenizer(tf.constant([c for s in scenes for c in s["captions"]]))
            return (tf.constant(self.shapes.images(split)),
                    tf.reshape(token_ids, [len(scenes), self.shapes.num_captions, -1]))

        seed = tf.cast(self.config["train"]["seed"], tf.int64)
        epoch = tf.cast(epoch, tf.int64)
        images, token_ids = self._cached(split, "captions", tokenizer, make)
        count, per_image = tf.shape(token_ids, out_type=tf.int64)[0], token_ids.shape[1]
        if not 1 <= captions_per_image <= per_image:
            raise ValueError(
                f"`data.captions_per_image` must be in [1, {per_image}] (the captions of each scene), "
                f"got {captions_per_image}."
            )
        order = tf.argsort(tf.random.stateless_uniform([count], tf.stack([seed, epoch])))
        if captions_per_image == 1:
            picks = tf.random.stateless_uniform(
                [count], tf.stack([seed, epoch + 1_000_003]), maxval=per_image, dtype=tf.int32
            )
        else:  # K distinct captions: the first K of a random permutation per image
            noise = tf.random.stateless_uniform([count, per_image], tf.stack([seed, epoch + 1_000_003]))
            picks = tf.argsort(noise, axis=1)[:, :captions_per_image]

        def pairs(indices):  # a whole batch in two gathers: far less input work per step than per scene
            return tf.gather(images, indices), tf.gather(tf.gather(token_ids, indices), tf.gather(picks, indices),
                                                         batch_dims=1)

        return (
            tf.data.Dataset.from_tensor_slices(order)
            .batch(batch_size, drop_remainder=True)  # static shapes
            .map(pairs, num_parallel_calls=tf.data.AUTOTUNE)
        )

    # --- per-cell object annotations (image tower pretraining) ------------------------------
    cell_classes = CELL_CLASSES

    def cell_attribute_batches(self, preprocessor, batch_size, seed):
        """Endless batches of the training images with each grid cell's shape, colour and size (see
        `Shapes.cell_attributes`), every image once per pass, in an order drawn from `seed` per pass."""
        self.check_batch(batch_size, "training scenes", "train.tower_pretraining_batch_size")
        images, cells = self._cached(
            "train", "cells", None,
            lambda: (tf.constant(self.shapes.images("train")),
                     {k: tf.constant(v) for k, v in self.shapes.cell_attributes("train").items()}))
        count, seed = tf.shape(images, out_type=tf.int64)[0], tf.cast(seed, tf.int64)

        def one_pass(index):
            noise = tf.random.stateless_uniform([count], tf.stack([seed + 2_000_003, index]))
            return tf.data.Dataset.from_tensor_slices(tf.argsort(noise))

        def gather(indices):
            return preprocessor(tf.gather(images, indices)), {k: tf.gather(v, indices) for k, v in cells.items()}

        return (tf.data.Dataset.counter().flat_map(one_pass)
                .batch(batch_size, drop_remainder=True)
                .map(gather, num_parallel_calls=tf.data.AUTOTUNE))

    def cell_attribute_examples(self, preprocessor, split="val"):
        if not self.num_records(split):
            return None
        return np.asarray(preprocessor(self.shapes.images(split))), self.shapes.cell_attributes(split)

    # --- evaluation records ----------------------------------------------------------------
    def evaluation_batches(self, preprocessor, batch_size):
        """The test split in batches: `{"images", "texts", "labels", "metadata"}` (see `TaskData`)."""
        scenes, images = self.shapes.scenes("test"), self.shapes.images("test")
        for start in range(0, len(scenes), batch_size):
            chunk = scenes[start : start + batch_size]
            metadata = [self._scene_metadata(s) for s in chunk]
            yield {
                "images": np.asarray(preprocessor(images[start : start + len(chunk)])),
                "texts": [list(s["captions"]) for s in chunk],
                "labels": np.array([s["label"] for s in chunk], np.int64),
                "metadata": metadata,
            }

    def _scene_metadata(self, scene):
        """What evaluation reads of a scene beside its texts (hand-made scenes may lack the fields)."""
        metadata = {}
        if "caption_kinds" in scene:
            metadata["text_kinds"] = list(scene["caption_kinds"])
        if self.family != "fusion" and "objects" in scene:
            # Computed once per scene: the evaluation and the run's report both read the test split.
            key = scene.get("image_id", id(scene))
            if key not in self._true_captions:
                self._true_captions[key] = Shapes.true_captions(scene)
            metadata["true_captions"] = self._true_captions[key]
        return metadata

    def reference_scores(self, texts):
        """The Bayes oracle (the ceiling) and the bag-of-attributes baseline on the test scenes (see `TaskData`)."""
        return shapes_reference_scores(texts, self.shapes.scenes("test"))

    def nearest_neighbour_captions(self):
        """Baseline: each test image gets the first caption of its nearest training image (8x8 pixels)."""
        def small(images):
            return tf.image.resize(tf.cast(images, tf.float32), (8, 8)).numpy().reshape(len(images), -1)

        train, test = small(self.shapes.images("train")), small(self.shapes.images("test"))
        train_scenes = self.shapes.scenes("train")
        distances = (test**2).sum(1)[:, None] - 2 * test @ train.T + (train**2).sum(1)[None]
        return [train_scenes[i]["captions"][0] for i in distances.argmin(axis=1)]

    # --- fusion examples ---------------------------------------------------------------------
    def fusion_heads(self, heads):
        """Checks the configured heads against the Shapes tasks; returns them (`normalize_heads`'d)."""
        heads = normalize_heads(heads)
        self.tasks = [h for h in (QA_HEAD, MATCH_HEAD) if h in heads]
        self.annotation_heads = [h for h in ANNOTATION_HEADS if h in heads]
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
        for head in self.annotation_heads:
            names = list(ANNOTATION_HEADS[head])
            if heads[head]["type"] != "multilabel" or heads[head]["labels"] != names:
                raise ValueError(f"`model.heads.{head}` must be a multilabel head whose `labels` are {names}.")
        unknown = sorted(set(heads) - {QA_HEAD, MATCH_HEAD, *ANNOTATION_HEADS})
        if unknown:
            raise ValueError(f"`model.heads` has heads {unknown} that Shapes has no labels for; it labels "
                             f"{[QA_HEAD, MATCH_HEAD, *ANNOTATION_HEADS]}.")
        return heads

    def examples(self, split):
        """Every example of a split for the trained heads, as NumPy columns.

        Returns:
            A dict of equal-length arrays: `scene` (image index in the split), `text` (str),
            `head` ("answer" or "match"), `labels` (`{head: int array}`, -1 where an example
            does not train the head; `[N, C]` 0/1 for a multilabel head of `ANNOTATION_HEADS`, a row
            of -1 where it does not train it), and the metadata columns `question_type`, `negative_kind`
            ("none" for a true caption, "easy" or one of `NEGATIVE_KINDS`) and `pair_set`
            ("hard" for the Shapes pairs, "easy" for the easy pair set); "" where not applicable.
        """
        if split in self._examples:
            return self._examples[split]
        rows = []
        for i, scene in enumerate(self.shapes.scenes(split)):
            if QA_HEAD in self.tasks:
                for q in scene["questions"]:
                    answer = ANSWER_VOCABULARY.index(q["answer"])
                    rows.append((i, q["question"], QA_HEAD, answer, -1, q["question_type"], "", "", q))
            if MATCH_HEAD in self.tasks:
                for m in scene["match"]:
                    rows.append((i, m["text"], MATCH_HEAD, -1, m["label"], "", m["negative_kind"], "hard", m))
        if MATCH_HEAD in self.tasks:
            rows += self._easy_match_pairs(split)
        if not rows:
            raise ValueError(f"The {split!r} split is empty: raise `data.num_{split}`.")
        scene, text, head, answer, label, qtype, nkind, pair_set, annotations = zip(*rows)
        labels = {h: np.array(v, np.int64) for h, v in ((QA_HEAD, answer), (MATCH_HEAD, label)) if h in self.tasks}
        for name in self.annotation_heads:  # multi-hot [N, C]; all -1 where unknown (easy pairs: no annotation)
            names = list(ANNOTATION_HEADS[name])
            labels[name] = np.full((len(rows), len(names)), -1, np.int64)
            for row, annotation in enumerate(annotations):
                values = (annotation or {}).get(name)  # cells as indices, relations by name
                if values is not None:
                    labels[name][row] = 0
                    labels[name][row, [names.index(v) if isinstance(v, str) else v for v in values]] = 1
        columns = {
            "scene": np.array(scene, np.int64),
            "text": np.array(text, object),
            "head": np.array(head),
            "labels": labels,
            "question_type": np.array(qtype),
            "negative_kind": np.array(nkind),
            "pair_set": np.array(pair_set),
        }
        self._examples[split] = columns
        return columns

    def metadata_orders(self):
        """The order metadata values are reported in, by column."""
        return {"question_type": QUESTION_TYPES, "negative_kind": ("none", "easy") + NEGATIVE_KINDS,
                "pair_set": ("hard", "easy")}

    def _easy_match_pairs(self, split):
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
                    rows.append((i, text, MATCH_HEAD, -1, 0, "", "easy", "easy", None))
                    rows.append((i, positive, MATCH_HEAD, -1, 1, "", "none", "easy", None))
                    break
        return rows

    def training_labels(self, head):
        """The training labels of one head (for the majority-class baseline); `[N, C]` for a multilabel one."""
        labels = self.examples("train")["labels"][head]
        return labels[labels >= 0] if labels.ndim == 1 else labels[labels[:, 0] >= 0]

    def example_steps(self, batch_size, texts_per_image):
        if texts_per_image > 1:
            num_scenes = self.num_records("train")
            count, steps = num_scenes * texts_per_image, num_scenes // (batch_size // texts_per_image)
        else:
            count = len(self.examples("train")["scene"])
            steps = count // batch_size
        if not steps:
            raise ValueError(
                f"`data.num_train`={self.config['data']['num_train']} scenes give {count} examples, "
                f"fewer than `train.global_batch_size`={batch_size}."
            )
        return steps

    def _examples_by_scene(self, split, texts_per_image):
        """`[scenes, M]` int64 example indices of each scene of `split` (padded with -1)."""
        scene = self.examples(split)["scene"]
        num_scenes = self.num_records(split)
        counts = np.bincount(scene, minlength=num_scenes)
        if counts.min() < texts_per_image:
            raise ValueError(
                f"`data.texts_per_image`={texts_per_image} is more than the {counts.min()} "
                f"{'training' if split == 'train' else split} examples of some scene: lower it."
            )
        table = np.full((num_scenes, counts.max()), -1, np.int64)
        order = np.argsort(scene, kind="stable")
        column = np.arange(len(scene)) - np.repeat(np.cumsum(counts) - counts, counts)
        table[scene[order], column] = order
        return table

    def _example_tensors(self, split, tokenizer, texts_per_image):
        ex = self.examples(split)
        labels, weights = {}, {}
        for head, values in ex["labels"].items():
            labels[head] = np.maximum(values, 0).astype("int64" if head == QA_HEAD else "float32")
            known = values[:, 0] >= 0 if values.ndim == 2 else ex["head"] == head
            weights[head] = known.astype("float32")
        by_scene = (self._examples_by_scene(split, texts_per_image) if texts_per_image > 1
                    else np.zeros((0, 0), np.int64))
        return (
            tf.constant(self.shapes.images(split)),
            tf.constant(ex["scene"]),
            tf.constant(by_scene),
            tokenizer(tf.constant(list(ex["text"]))),
            {k: tf.constant(v) for k, v in labels.items()},
            {k: tf.constant(v) for k, v in weights.items()},
        )

    def example_batches(self, epoch, split, tokenizer, preprocessor, batch_size, texts_per_image=1):
        """One epoch of fusion example batches of `split` (see the class docstring)."""
        k = texts_per_image
        images, scenes, by_scene, token_ids, labels, weights = self._cached(
            split, f"examples{k}", tokenizer, lambda: self._example_tensors(split, tokenizer, k))
        seed = tf.cast(self.config["train"]["seed"], tf.int64)
        epoch = tf.cast(epoch, tf.int64)
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
            x = {"images": preprocessor(tf.gather(images, scene)), "token_ids": tf.gather(token_ids, index),
                 "image_present": ones, "text_present": ones}
            y = {name: tf.gather(v, index) for name, v in labels.items()}
            w = {name: tf.gather(v, index) for name, v in weights.items()}
            return x, y, w

        return (
            tf.data.Dataset.from_tensor_slices(order)
            .batch(batch_size // k, drop_remainder=True)  # static shapes (K=1: the whole batch)
            .map(to_model_inputs, num_parallel_calls=tf.data.AUTOTUNE)
        )

    def evaluation_examples(self, tokenizer, preprocessor, batch_size):
        """The test split's fusion examples in batches of `batch_size`.

        Yields:
            `{"images", "token_ids", "text_present", "labels": {head: int array, -1 where the
            example does not train it}, "metadata": {column: str array}}`.
        """
        ex = self.examples("test")
        images = self.shapes.images("test")
        for start in range(0, len(ex["scene"]), batch_size):
            rows = slice(start, start + batch_size)
            texts = list(ex["text"][rows])
            yield {
                "images": np.asarray(preprocessor(images[ex["scene"][rows]])),
                "token_ids": np.asarray(tokenizer(tf.constant(texts))),
                "text_present": np.ones(len(texts), "float32"),
                "labels": {head: values[rows] for head, values in ex["labels"].items()},
                "metadata": {name: ex[name][rows] for name in ("question_type", "negative_kind", "pair_set")},
            }

    def metrics(self):
        return {"num_test_scenes": self.num_records("test")} if self.family == "fusion" else {}


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
