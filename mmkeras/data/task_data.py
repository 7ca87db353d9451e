"""`TaskData`: what a family trainer reads, whatever the source (Shapes in memory, or converted shards)."""


class TaskData:
    """The records a run trains and is evaluated on, in the form every family reads them.

    A family trainer (`mmkeras.tasks.MatchingTask`, `CaptioningTask`, `FusionTask`) holds one
    `TaskData` and never asks where the records came from. Two kinds implement it:
    `mmkeras.data.ShapesData` (the built-in scenes, generated in memory; train / val / test)
    and `mmkeras.data.ConvertedData` (any other source, converted once into TFRecord shards in
    the run directory; train / held-out val). `open_task_data` picks one from `data.dataset`.

    Records are `{"id", "image", "texts", "label", ...metadata}`. Batches come in two forms:

    - caption batches (matching, captioning): `{"images": float [B, H, W, 3], "token_ids":
      int32 [B, L]}` (`[B, K, L]` with K texts per image);
    - example batches (fusion): `({"images", "token_ids", "image_present", "text_present"},
      {head: label}, {head: sample weight})`: one text and its label per example, a weight of 0
      where an example does not train a head.

    Evaluation reads `evaluation_batches` (`{"images", "texts", "labels", "metadata"}`, the
    metadata a list of per-record dicts such as Shapes' `true_captions`) and, for fusion,
    `evaluation_examples` (per-example labels by head and metadata columns such as
    `question_type`), so a family's extra figures come from record fields.

    Args:
        config: the resolved run config.
        family: "matching", "captioning" or "fusion".

    Example:

    ```python
    from mmkeras import zoo
    from mmkeras.data.open_task_data import open_task_data
    data = open_task_data(zoo.config("shapes-clip-tiny"), "runs/clip", "matching")
    data.prepare()
    print(data.summary(), data.num_records("train"))
    ```
    """

    evaluation_split = "val"  # the split `evaluation_batches` reads
    # Fusion: the metadata column whose per-value accuracies become flat metric keys, by head.
    summary_groups = {}

    def __init__(self, config, family):
        self.config = config
        self.family = family

    def prepare(self, show_progress=True):
        """Makes the records ready (converts a source on first use); called before anything is read."""

    def remove_stale(self):
        """Removes stored data that no longer matches the config (`--overwrite`)."""

    # Whether `prepare` has work to do (a conversion); without it, what the records hold is known at once.
    needs_preparation = True

    # Whether a step may train on several texts of one image (`data.captions_per_image`,
    # `data.texts_per_image`): the records hold them all.
    several_texts_per_image = False

    def summary(self):
        """A line on the data printed before training (None: nothing to say)."""
        return None

    def metrics(self):
        """Data counts that go into `metrics.json` beside the scores."""
        return {}

    def finish(self, run_dir):
        """Writes and prints what the run's data report holds, after evaluation."""

    def validation_batch_size(self, batch_size, replicas):
        """The batch the `val` split is validated in after every epoch (0: no validation)."""
        return batch_size if self.num_records("val") >= batch_size else 0

    def num_records(self, split):
        raise NotImplementedError

    def reference_scores(self, texts):
        """Scores of rankers that read what the evaluation images hold instead of their pixels, as
        `{name: float [N_txt, N_img]}` for `texts` against the `evaluation_batches` images, in order
        (Shapes: the Bayes oracle and the bag-of-attributes baseline, see
        `mmkeras.data.shapes_references`); `{}` where the records do not say what an image holds."""
        return {}

    # Each per-cell attribute's number of classes where the records say what each cell of a 3x3 grid
    # holds (Shapes: `mmkeras.data.shapes.CELL_CLASSES`), for `train.tower_pretraining_steps`; else empty.
    cell_classes = {}

    def cell_attribute_batches(self, preprocessor, batch_size, seed):
        """Endless `(images, {attribute: int64 [B, 9]})` batches of the training images with what each grid
        cell holds (see `cell_classes`); only where the records say it."""
        raise ValueError(self.missing_cell_attributes())

    def cell_attribute_examples(self, preprocessor, split="val"):
        """`(float images [N, H, W, 3], {attribute: int64 [N, 9]})` of `split` (None if it is empty)."""
        raise ValueError(self.missing_cell_attributes())

    def missing_cell_attributes(self):
        """Why `train.tower_pretraining_steps` cannot apply to records without per-cell annotations."""
        return (f"it needs records that say what each grid cell holds (the Shapes object annotations), and "
                f"{self.describe()} has none.")

    def metadata_orders(self):
        """The order each fusion metadata column's values are reported in (default: sorted)."""
        return {}

    def check_batch(self, batch_size, what="training records", field="train.global_batch_size"):
        """Raises a clear error, naming `field`, when the training split holds fewer records than a batch."""
        count = self.num_records("train")
        if count < batch_size:
            raise ValueError(f"{self.describe()} gives {count} {what}, fewer than `{field}`={batch_size}.")

    def describe(self):
        raise NotImplementedError
