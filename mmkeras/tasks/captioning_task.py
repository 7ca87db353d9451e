import tensorflow as tf

from mmkeras.config import merge
from mmkeras.data.model_inputs import model_inputs
from mmkeras.data.shapes import Shapes
from mmkeras.generation.caption_generator import CaptionGenerator
from mmkeras.losses.masked_sequence_loss import MaskedSequenceLoss
from mmkeras.metrics.bleu import corpus_bleu
from mmkeras.metrics.cider import cider_d
from mmkeras.metrics.masked_perplexity import MaskedPerplexity
from mmkeras.metrics.masked_token_accuracy import MaskedTokenAccuracy
from mmkeras.models import build_from_config
from mmkeras.tasks.task import Task, init_tower
from mmkeras.training.full_batches import pad_to_full_batches

NUM_SAMPLES = 24


def full_batch_captions(generator, images, batch, prepare=None):
    """`generator`'s captions (python strings) for `images`, decoded in batches of exactly `batch` rows.

    Every batch the same size: one trace (and XLA compilation) of the decoder,
    not another for each smaller batch. `prepare`, if given, maps each batch of
    `images` to the generator's input (e.g. an `ImagePreprocessor`).
    """
    images, count = pad_to_full_batches(images, batch)
    captions = []
    for start in range(0, len(images), batch):
        chunk = images[start : start + batch]
        chunk = chunk if prepare is None else prepare(chunk)
        captions.extend(c.decode("utf-8") for c in generator.generate(chunk)["captions"].numpy())
    return captions[:count]


def caption_scores(hypotheses, references, prefix=""):
    """Corpus BLEU-1..4 and CIDEr-D of captions against their references, and how varied they are.

    `mean_words` (words per caption) and `distinct_captions` (how many different
    captions) show what the scores alone hide: a decoder that plays safe repeats
    a few short, generic sentences.

    Args:
        hypotheses: list of N generated captions.
        references: list of N lists of reference captions.
        prefix: prepended to every key.

    Returns:
        `{prefix + "bleu_1": ..., ..., prefix + "bleu_4": ..., prefix + "cider_d": ...,
        prefix + "mean_words": ..., prefix + "distinct_captions": ...}`.

    Example:

    >>> scores = caption_scores(["a red circle"], [["a red circle", "one red disk"]])
    >>> round(scores["bleu_1"], 3), scores["mean_words"], scores["distinct_captions"]
    (1.0, 3.0, 1)
    """
    hyps, refs = dict(enumerate(hypotheses)), dict(enumerate(references))
    scores = {f"{prefix}bleu_{n + 1}": float(b) for n, b in enumerate(corpus_bleu(hyps, refs))}
    scores[f"{prefix}cider_d"] = float(cider_d(hyps, refs)[0])
    scores[f"{prefix}mean_words"] = sum(len(h.split()) for h in hypotheses) / max(len(hypotheses), 1)
    scores[f"{prefix}distinct_captions"] = len(set(hypotheses))
    return scores


class CaptioningTask(Task):
    """Trains and evaluates an image captioner on any records.

    Data: every epoch pairs each training image with one of its texts, drawn
    with the seed (one optimizer step sees a batch of distinct images, never
    one step per caption); on Shapes, `data.captions_per_image=K` gives each
    image K distinct reference captions in a step. The tokenizer (WordPiece,
    trained on the training texts) makes `[BOS] ... [EOS] [PAD]` sequences of
    `data.sequence_length + 1` tokens, split for teacher forcing.

    Evaluation: beam search (`eval.num_beams`, `eval.length_penalty`) on the
    data's evaluation split (Shapes: test; real data: held out); corpus
    BLEU-1..4 and CIDEr-D against all reference captions; sample captions in
    `samples.json`. Where the data holds the images in memory (Shapes), the
    same scores for a nearest-neighbour baseline (each test image gets the
    first caption of its nearest training image in pixel space). Where the
    records carry `true_captions` (Shapes), `caption_accuracy` is the fraction
    of captions true of their scene: n-gram scores reward wording, this
    rewards being right about counts, colours and places;
    `shape_caption_share` is the share of captions that name a shape and
    `shape_caption_accuracy` the `caption_accuracy` on those alone: a
    captioner can be right more often by only counting or naming colours.

    Export: a SavedModel with `caption(image_bytes) -> {captions, scores}`.

    Args:
        config: a resolved run config with `task="captioning"`.
        output_dir: the run directory.

    Example:

    ```python
    from mmkeras import zoo
    from mmkeras.tasks.captioning_task import CaptioningTask
    metrics = CaptioningTask(zoo.config("shapes-captioner-tiny"), "runs/cap").run()
    print(metrics["bleu_4"], metrics["cider_d"])
    ```
    """

    family = "captioning"
    extra_tokens = 1  # inputs and targets are shifted by one token
    per_image_fields = ("captions_per_image",)

    def model_config(self):
        sizes = {
            "vocabulary_size": self.tokenizer.vocabulary_size(),
            "sequence_length": self.config["data"]["sequence_length"],
        }
        return merge(super().model_config(), {"model": sizes})

    def init_uses_tokenizer(self, init):
        return False  # the new decoder learns the task's own vocabulary

    def build_from_init(self, init):
        """A new decoder on the init model's image tower (with its image preprocessing)."""
        tower = init_tower(init, "image_encoder", self.config["train"]["init"])
        return build_from_config(self.model_config(), preprocessor=self.model_preprocessor(),
                                 towers={"image_encoder": tower})

    def compile_arguments(self):
        return {"loss": MaskedSequenceLoss(), "metrics": [MaskedTokenAccuracy(), MaskedPerplexity()]}

    @property
    def steps_per_epoch(self):
        return self.data.caption_steps(self.batch_size())

    def epoch_dataset(self, epoch, split="train"):
        batch = self.batch_size(split)
        records = self.data.caption_batches(epoch, split, self.tokenizer, self.preprocessor, batch,
                                            self.config["data"]["captions_per_image"])
        inputs = records.map(model_inputs("captioning"), num_parallel_calls=tf.data.AUTOTUNE)
        return self.with_static_batch(inputs, batch)

    # --- evaluation ---------------------------------------------------------
    def generator(self, model, jit_compile=None):
        """The evaluation's beam search (`jit_compile`: default `eval.jit_compile`)."""
        return CaptionGenerator(model, **self.generator_settings(jit_compile), detokenizer=self.tokenizer)

    def generator_settings(self, jit_compile=None):
        """The evaluation's decoding settings (`CaptionGenerator` arguments besides the model)."""
        settings = self.config["eval"]
        return {
            "max_length": min(settings["max_length"], self.config["data"]["sequence_length"]),
            "strategy": "beam",
            "num_beams": settings["num_beams"],
            "length_penalty": settings["length_penalty"],
            "jit_compile": settings["jit_compile"] if jit_compile is None else jit_compile,
        }

    def caption(self, model, images):
        """Beam-search captions (python strings) for uint8 images `[N, H, W, 3]`."""
        if len(images) == 0:
            return []
        batch = min(self.config["eval"]["batch_size"], len(images))
        return full_batch_captions(self.generator(model), images, batch, prepare=self.preprocessor)

    def evaluate(self, model):
        generator, batch = self.generator(model), self.config["eval"]["batch_size"]
        generated, references, truths = [], [], []
        for records in self.data.evaluation_batches(self.preprocessor, batch):
            keep = [i for i, texts in enumerate(records["texts"]) if texts]
            if not keep:
                continue
            generated += full_batch_captions(generator, records["images"][keep], batch)
            references += [records["texts"][i] for i in keep]
            truths += [records["metadata"][i].get("true_captions") for i in keep]
        if not generated:
            raise ValueError(
                f"The evaluation split of {self.data.describe()} has no usable image with a caption: "
                "raise `data.val_fraction`."
            )
        candidates = {"": generated}
        baseline = self.data.nearest_neighbour_captions()
        if baseline is not None:
            candidates["baseline_nearest_"] = baseline
        judged = all(t is not None for t in truths)
        metrics = {}
        for prefix, hypotheses in candidates.items():
            metrics.update(caption_scores(hypotheses, references, prefix))
            if judged:
                correct = [h in true for h, true in zip(hypotheses, truths)]
                metrics[f"{prefix}caption_accuracy"] = sum(correct) / max(len(correct), 1)
                # The same on the captions that name a shape: counting or naming colours is easier.
                naming = [ok for h, ok in zip(hypotheses, correct) if Shapes.names_a_shape(h)]
                metrics[f"{prefix}shape_caption_share"] = len(naming) / max(len(correct), 1)
                metrics[f"{prefix}shape_caption_accuracy"] = sum(naming) / max(len(naming), 1)
        metrics["num_test_images"] = len(generated)
        metrics.update(self.data.metrics())
        samples = []
        for i in range(min(NUM_SAMPLES, len(generated))):
            sample = {"image_id": i, "generated": generated[i], "references": references[i]}
            if judged:
                sample["correct"] = generated[i] in truths[i]
            samples.append(sample)
        self.write_evaluation_file("samples", samples)
        return metrics

    def export_options(self):
        # The export always decodes with XLA: it compiles where the SavedModel is served.
        return self.generator_settings(jit_compile=True)
