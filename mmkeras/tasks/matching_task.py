import numpy as np
import tensorflow as tf

from mmkeras.data.model_inputs import model_inputs
from mmkeras.metrics.retrieval import retrieval_metrics, retrieval_ranks
from mmkeras.metrics.semantic_retrieval import score_retrieval_metrics, semantic_retrieval_metrics
from mmkeras.metrics.zero_shot import zero_shot_accuracy, zero_shot_classifier
from mmkeras.models.dual_encoder import DualEncoder
from mmkeras.models.build_from_config import build_from_config
from mmkeras.models.locked_tower import locked_copy
from mmkeras.tasks.task import Task, init_tower
from mmkeras.training.full_batches import predict_full_batches

ZERO_SHOT_TEMPLATES = ("a {}", "a picture with a {}", "an image of a {}")
KS = (1, 5, 10)
# The reference ranker whose figures are the ceiling of what the data allows (`TaskData.reference_scores`).
CEILING = "bayes_oracle"


def _ranker_figures(scores, own, truth, kinds):
    """R@K both ways (ties in a random order), sR@K and P@K where `truth` is known, and text-to-image R@K
    and sR@K by the kind of claim a query makes where `kinds` are known, of a `[N_txt, N_img]` score matrix."""
    def recall(rows, relevant, ks=KS, prefix="r"):
        m = score_retrieval_metrics(scores[rows], relevant[rows], ks=ks)
        return {f"{d}_{prefix}{k}": m[f"{d}_sr{k}"] for d in ("t2i", "i2t") for k in ks}

    everything = slice(None)
    figures = recall(everything, own)
    if truth is not None:
        m = score_retrieval_metrics(scores, truth)
        figures.update({key: m[key] for d in ("t2i", "i2t") for k in KS for key in (f"{d}_sr{k}", f"{d}_p{k}")})
    if kinds is not None:
        figures["t2i_by_text_kind"] = {}
        for kind in sorted(set(kinds)):
            rows = kinds == kind
            by_kind = {key[4:]: v for key, v in recall(rows, own).items() if key.startswith("t2i")}
            if truth is not None:
                by_kind.update({key: v for key, v in recall(rows, truth, (1, 5), "sr").items() if key.startswith("t2i")})
            figures["t2i_by_text_kind"][kind] = by_kind
    return figures


class MatchingTask(Task):
    """Trains and evaluates an image–text dual encoder (CLIP / SigLIP) on any records.

    Data: every epoch pairs each training image with one of its texts, drawn
    with the seed (`TaskData.caption_batches`); Shapes or real data alike (with
    `data.augment`, real images get `RandomResizedCrop`). Evaluation on the
    data's evaluation split (Shapes: test; real data: held out): retrieval
    R@1/5/10, median and mean rank both ways with all texts of each image (an
    image-to-text query is a hit when any of its texts is retrieved), text-to-image
    R@1/5/10 by the kind of claim a query makes where the records say it (Shapes:
    `t2i_by_text_kind`: inventory, position, relation, ...), semantic recall and
    precision both ways where the records hold each image's true captions
    (Shapes: `t2i_sr5`, `i2t_p5`, ... beside their chance levels; see
    `mmkeras.metrics.semantic_retrieval`), the same figures of the reference
    rankers where the data has them (Shapes: `references` holds the Bayes
    oracle, the ceiling of what the data allows, and the bag-of-attributes
    baseline; `share_of_ceiling` the model's R@K over the oracle's), and, when
    the labels have names (Shapes' shapes, `folder:` classes), zero-shot
    accuracy from the class names. Export: a SavedModel with `embed_image`,
    `embed_text` and `similarity` signatures.

    Args:
        config: a resolved run config with `task="matching"`.
        output_dir: the run directory.

    Example:

    ```python
    from mmkeras import zoo
    from mmkeras.tasks.matching_task import MatchingTask

    task = MatchingTask(zoo.config("shapes-clip-tiny", **{"train.epochs": 2}), "runs/clip")
    image_embeddings, text_embeddings, text_to_image, labels = task.embed(task.train())
    ```
    """

    family = "matching"
    # Set by `embed`: the evaluation texts, and where the records carry them, each text's kind and each
    # image's set of true captions.
    texts = text_kinds = true_captions = None
    evaluated = None  # (model, image embeddings) of the latest `evaluate`

    def build_from_init(self, init):
        """The init dual encoder itself (towers, projections, logit scale, preprocessing) is trained;
        `model.freeze_image_encoder` locks its image tower (LiT). From a model with an image tower only (a
        captioner), a new dual encoder on that tower, with the config's text tower, new."""
        directory = self.config["train"]["init"]
        if isinstance(init, DualEncoder):
            if self.config.get("model", {}).get("freeze_image_encoder") and not init.freeze_image_encoder:
                return locked_copy(init)
            return init
        if getattr(init, "image_encoder", None) is None or self.init_uses_tokenizer(init):
            raise ValueError(
                f"`train.init` {directory!r} holds a {type(init).__name__}; the matching family starts from a "
                "dual encoder (`mmkeras import` of a CLIP or SigLIP checkpoint) or from the image tower of a "
                "model without a text tower (a captioner)."
            )
        tower = init_tower(init, "image_encoder", directory)
        if "pooled_only" in tower.get_config():  # as the matching family builds its towers
            tower = tower.rebuild(pooled_only=True)
        return build_from_config(self.model_config(), preprocessor=self.model_preprocessor(),
                                 towers={"image_encoder": tower})

    @property
    def steps_per_epoch(self):
        return self.data.caption_steps(self.batch_size())

    def epoch_dataset(self, epoch, split="train"):
        batch = self.batch_size(split)
        records = self.data.caption_batches(epoch, split, self.tokenizer, self.preprocessor, batch)
        return self.with_static_batch(records.map(model_inputs("matching"), num_parallel_calls=tf.data.AUTOTUNE),
                                      batch)

    # --- evaluation ---------------------------------------------------------
    def embed(self, model):
        """Embeds the evaluation split: returns (image_embeddings, text_embeddings, text_to_image, labels).

        `self.text_kinds` is then the kind of each text where the records carry `text_kinds` (else None).
        """
        batch = self.config["eval"]["batch_size"]
        image_embeddings, texts, text_to_image, labels, kinds, truths = [], [], [], [], [], []
        for records in self.data.evaluation_batches(self.preprocessor, self.evaluation_chunk()):
            start = sum(len(e) for e in image_embeddings)
            # Every batch padded to `batch` rows: the predict function is traced once.
            image_embeddings.append(predict_full_batches(model.image_model, records["images"], batch))
            for i, image_texts in enumerate(records["texts"]):
                texts += image_texts
                text_to_image += [start + i] * len(image_texts)
                kinds += records["metadata"][i].get("text_kinds") or [None] * len(image_texts)
                truths.append(records["metadata"][i].get("true_captions"))
            labels.append(records["labels"])
        self.text_kinds = kinds if kinds and None not in kinds else None
        self.true_captions = truths if truths and None not in truths else None
        if not image_embeddings or not texts:
            raise ValueError(
                f"The evaluation split of {self.data.describe()} has no usable image with a text: "
                "raise `data.val_fraction`."
            )
        text_embeddings = predict_full_batches(model.text_model, self.tokenizer(tf.constant(texts)), batch)
        self.texts = texts
        return np.concatenate(image_embeddings), text_embeddings, np.array(text_to_image), np.concatenate(labels)

    def evaluated_image_embeddings(self, model):
        """The evaluation images' embeddings by `model`: those the latest `evaluate` ranked if it evaluated
        `model` (the run's report shows the very ranking its metrics count), else embedded now."""
        if self.evaluated is not None and self.evaluated[0] is model:
            return self.evaluated[1]
        return self.embed(model)[0]

    def evaluate(self, model):
        image_embeddings, text_embeddings, text_to_image, labels = self.embed(model)
        self.evaluated = (model, image_embeddings)
        metrics = {k: float(v) for k, v in retrieval_metrics(image_embeddings, text_embeddings, text_to_image).items()}
        truth = None
        if self.true_captions is not None:  # a hit: any retrieved image the caption is true of, and back
            truth = np.array([[text in true for true in self.true_captions] for text in self.texts], bool)
            metrics.update(semantic_retrieval_metrics(image_embeddings, text_embeddings, truth))
        if self.text_kinds is not None:  # text-to-image recall by the kind of claim the query makes
            _, t2i_ranks = retrieval_ranks(image_embeddings, text_embeddings, text_to_image)
            kinds = np.array(self.text_kinds)
            metrics["t2i_by_text_kind"] = {
                kind: {**{f"r{k}": float(np.mean(t2i_ranks[kinds == kind] <= k)) for k in (1, 5, 10)},
                       "num_queries": int(np.sum(kinds == kind))}
                for kind in sorted(set(self.text_kinds))
            }
            if self.true_captions is not None:
                for kind, figures in metrics["t2i_by_text_kind"].items():
                    by_kind = semantic_retrieval_metrics(image_embeddings, text_embeddings[kinds == kind],
                                                         truth[kinds == kind], ks=(1, 5))
                    figures.update({key: by_kind[key] for key in ("t2i_sr1", "t2i_sr5", "chance_t2i_sr5")})
        references = self.data.reference_scores(self.texts)
        if references:  # what rankers that read the scenes reach: the ceiling and a baseline without binding
            own = np.zeros((len(text_to_image), len(image_embeddings)), bool)
            own[np.arange(len(text_to_image)), text_to_image] = True
            kinds = None if self.text_kinds is None else np.array(self.text_kinds)
            metrics["references"] = {name: _ranker_figures(scores, own, truth, kinds)
                                     for name, scores in references.items()}
            if CEILING in references:  # the model's R@K as a share of the ceiling's
                ceiling = metrics["references"][CEILING]
                metrics["share_of_ceiling"] = {f"{d}_r{k}": metrics[f"{d}_r{k}"] / ceiling[f"{d}_r{k}"]
                                               for d in ("t2i", "i2t") for k in KS if ceiling[f"{d}_r{k}"] > 0}
        known = labels >= 0
        if self.data.named_classes and known.any():
            text_model, batch = model.text_model, self.config["eval"]["batch_size"]

            def embed_text(strings):
                return predict_full_batches(text_model, self.tokenizer(tf.constant(list(strings))), batch)

            classes = zero_shot_classifier(embed_text, list(self.data.class_names), ZERO_SHOT_TEMPLATES)
            zero_shot = zero_shot_accuracy(image_embeddings[known], labels[known], classes)
            metrics.update({f"zero_shot_{k}": float(v) for k, v in zero_shot.items()})
        metrics["num_test_images"] = int(len(image_embeddings))
        metrics["num_test_captions"] = int(len(text_to_image))
        metrics.update(self.data.metrics())
        return metrics
