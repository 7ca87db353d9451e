import copy
import inspect
import numbers

import keras
from keras import ops

from mmkeras.layers.fusions.factory import FUSIONS
from mmkeras.layers.fusions.modality_dropout import ModalityDropout
from mmkeras.layers.fusions.sum_fusion import SumFusion
from mmkeras.layers.repeat_to_batch import RepeatToBatch
from mmkeras.metrics.head_accuracy import HeadAccuracy
from mmkeras.models.builder import builder_of
from mmkeras.models.locked_tower import call_tower
from mmkeras.models.saved_parts import from_config_with_parts
from mmkeras.models.compiled_state import restore_compiled_state
from mmkeras.preprocessing.multimodal_preprocessor import check_matches_towers
from mmkeras.validation import check_int
from mmkeras.validation import check_rate

HEAD_TYPES = ("multiclass", "binary", "multilabel", "regression")
_HEAD_KEYS = ("type", "num_classes", "labels", "loss_weight", "hidden_dim")
# Width arguments filled in for each fusion type when `fusion_kwargs` leaves them out.
FUSION_DEFAULTS = {
    "early": {"hidden_dim": 256, "num_layers": 2},
    "concat": {"output_dim": 256},
    "sum": {"output_dim": 256},
    "late": {"combine": "mean"},
    "gated": {"output_dim": 256},
    "bilinear": {"output_dim": 256},
    "cross_attention": {"hidden_dim": 256},
    "hybrid": {"hidden_dim": 256, "num_layers": 2},
}
TOWER_MODALITIES = {"image": "images", "text": "token_ids"}


@keras.saving.register_keras_serializable(package="mmkeras")
class FusionClassifier(keras.Model):
    """Multimodal classifier: modality towers, a fusion module, named task heads.

    `images -> image tower`, `token_ids -> text tower` and any extra inputs
    (e.g. a numeric feature vector) are fused by one of the
    `mmkeras.layers.fusions` modules ("early", "concat", "sum", "late",
    "gated", "bilinear", "cross_attention", "hybrid"), and every head reads the
    fused features:

        towers -> {modality: {"sequence", "pooled", "padding_mask"}}
               -> fusion(..., presence=ModalityDropout(presence)) -> heads

    With `fusion="late"` there are no shared fused features: every
    classification head is its own `LateFusion` (one head per modality,
    combined over the modalities present), and a regression head is the mean
    of per-modality linear regressors over the present modalities (a
    `SumFusion` with `normalize=True` and no activation).

    Missing modalities: each modality `m` has a presence input `m_present`
    (float `[B]`, 1 = present, 0 = absent). The masks go through
    `ModalityDropout` (training only) into the fusion layer, so an absent
    modality's features (feed anything, e.g. zeros) never influence the
    output and an example with a modality absent still gets a valid
    prediction from the others. Presence inputs may be left out of the input
    dict: a missing `m_present` means "present in every example" (the model
    fills in ones), so `model.fit` / `predict` work on plain batches.

    Heads (`heads={name: spec}`), one named output each:

    - `{"type": "multiclass", "num_classes": C}`: logits `[B, C]`, sparse
      categorical cross-entropy on integer labels;
    - `{"type": "binary"}`: one logit `[B, 1]`, binary cross-entropy on 0/1;
    - `{"type": "multilabel", "num_classes": C}`: logits `[B, C]`, binary
      cross-entropy per label on multi-hot targets;
    - `{"type": "regression"}`: a value `[B, 1]`, mean squared error.

    Optional spec keys: `"loss_weight"` (default 1.0), `"labels"` (class
    names, kept for metrics and export; binary default `["0", "1"]`) and
    `"hidden_dim"` (an MLP head). `compile()` sets these losses, loss weights
    and an accuracy (or MAE) metric per output unless given, so plain
    `model.fit(dataset)` trains all heads; pass `sample_weight={head: [B]}` to
    train each example only on its own heads (multi-task data): the default
    metrics are weighted too, so a head's accuracy counts only the examples
    that train it. Outputs are
    float32 under any dtype policy.

    Prefer the `fusion_classifier(...)` builder; the class is public for
    `isinstance` checks and deserialisation.

    Args:
        image_encoder: optional image tower (`{"sequence", "pooled"}` output);
            modality "image", input "images".
        text_encoder: optional text tower (`{"sequence", "pooled",
            "padding_mask"}`); modality "text", input "token_ids".
        extra_inputs: optional dict `{modality: shape}` of raw feature inputs
            fed straight to the fusion: an int `D` (a vector `[B, D]`, a
            pooled-only modality) or `[T, D]` (a token sequence).
        fusion: the fusion type, one of `mmkeras.layers.fusions.FUSIONS`.
        fusion_kwargs: optional dict of the fusion class's constructor
            arguments; widths left out get `FUSION_DEFAULTS` (256).
        heads: dict `{name: spec}`, see above (at least one head).
        modality_dropout: float (or `{modality: rate}`), probability of
            dropping each modality of a training example (never all of
            them); 0 disables it.
        freeze_image_encoder: bool, a locked image tower (as in LiT): its
            weights do not train and it runs in inference mode; the text
            tower, fusion and heads learn to read it. For a tower trained
            before (`train.init`, or `train.tower_pretraining_steps`, which
            still trains it first).
        preprocessor: optional `MultimodalPreprocessor` kept with the model
            and in its `.keras` file; `mmkeras.export.export_model` builds the
            `classify(image_bytes, text)` signature from it.
        dtype: optional dtype policy for the fusion and heads (the towers
            carry their own).
        **kwargs: `keras.Model` arguments such as `name`.

    Inputs: `{"images": [B, H, W, 3] float, "token_ids": [B, L] int32,
    <extra>: [B, D], "image_present": [B], "text_present": [B], ...}`.
    Several texts per image: `images` may hold `B / K` rows, one per `K`
    consecutive rows of the other inputs (texts `i * K .. i * K + K - 1`
    belong to image `i`); the image tower then runs once per image and its
    features are repeated for the image's texts (`RepeatToBatch`), which
    gives the same outputs as repeating the images.
    Outputs: `{head_name: float32 logits / values}`.

    Example:

    >>> import numpy as np
    >>> from mmkeras.encoders import ViTEncoder, TextTransformerEncoder
    >>> image = ViTEncoder(image_size=32, patch_size=16, hidden_dim=16, num_layers=1,
    ...                    num_heads=2, mlp_dim=32)
    >>> text = TextTransformerEncoder(vocabulary_size=30, sequence_length=6, hidden_dim=16,
    ...                               num_layers=1, num_heads=2, mlp_dim=32, causal=False)
    >>> model = FusionClassifier(image, text, extra_inputs={"numeric": 3}, fusion="concat",
    ...     fusion_kwargs={"output_dim": 16},
    ...     heads={"answer": {"type": "multiclass", "num_classes": 4}, "match": {"type": "binary"}})
    >>> batch = {"images": np.zeros((2, 32, 32, 3), "float32"),
    ...          "token_ids": np.tile([[2, 5, 3, 0, 0, 0]], (2, 1)).astype("int32"),
    ...          "numeric": np.ones((2, 3), "float32"),
    ...          "image_present": np.array([1.0, 0.0], "float32")}
    >>> out = model(batch)
    >>> out["answer"].shape, out["match"].shape
    (TensorShape([2, 4]), TensorShape([2, 1]))
    >>> model.compile(optimizer="adam")
    >>> labels = {"answer": np.array([1, 3]), "match": np.array([0.0, 1.0], "float32")}
    >>> history = model.fit(batch, labels, epochs=1, verbose=0)
    """

    def __init__(self, image_encoder=None, text_encoder=None, extra_inputs=None, fusion="concat",
                 fusion_kwargs=None, heads=None, modality_dropout=0.1, freeze_image_encoder=False,
                 preprocessor=None, dtype=None, **kwargs):
        if not isinstance(fusion, str) or fusion not in FUSIONS:
            raise ValueError(f"`fusion` must be one of {sorted(FUSIONS)}, got {fusion!r}.")
        if fusion_kwargs is not None and not isinstance(fusion_kwargs, dict):
            raise ValueError(f"`fusion_kwargs` must be a dict or None, got {fusion_kwargs!r}.")
        extra_inputs = _normalize_extra_inputs(extra_inputs)
        heads = normalize_heads(heads)
        if isinstance(modality_dropout, dict):
            for modality, rate in modality_dropout.items():
                check_rate(f"modality_dropout[{modality!r}]", rate)
        else:
            check_rate("modality_dropout", modality_dropout)
        towers = {"image": image_encoder, "text": text_encoder}
        modalities = [m for m in ("image", "text") if towers[m] is not None] + list(extra_inputs)
        if not modalities:
            raise ValueError(
                "A FusionClassifier needs at least one modality: pass `image_encoder`, "
                "`text_encoder` or `extra_inputs`."
            )
        if isinstance(modality_dropout, dict):
            unknown = [m for m in modality_dropout if m not in modalities]
            if unknown:
                raise ValueError(
                    f"`modality_dropout` names modalities {unknown} that the model does not have "
                    f"({modalities})."
                )
        check_matches_towers(
            preprocessor, image_encoder, token_ids_length=text_encoder.inputs[0].shape[1] if text_encoder else None
        )
        layer_kwargs = {**FUSION_DEFAULTS[fusion], **(fusion_kwargs or {})}
        layer_kwargs.pop("dtype", None)

        # === Layers ===
        dropout_layer = None
        if isinstance(modality_dropout, dict) or float(modality_dropout) > 0.0:
            dropout_layer = ModalityDropout(modality_dropout, name="modality_dropout")
        shared_fusion = None
        if fusion != "late":
            layer_kwargs.setdefault("modalities", modalities)
            shared_fusion = _make_fusion(fusion, layer_kwargs, dtype, "fusion")
        head_layers = {}
        for head, spec in heads.items():
            units = _head_units(spec)
            if fusion == "late" and spec["type"] == "regression":
                # Mean over the present modalities of per-modality linear regressors.
                head_layers[head] = [
                    SumFusion(
                        units,
                        activation=None,
                        normalize=True,
                        modalities=modalities,
                        dtype=dtype,
                        name=f"{head}_late_regression",
                    )
                ]
            elif fusion == "late":
                late_kwargs = dict(layer_kwargs)
                if spec["hidden_dim"] is not None:
                    late_kwargs["hidden_dim"] = spec["hidden_dim"]
                late_kwargs.update(
                    num_classes=units,
                    activation="softmax" if spec["type"] == "multiclass" else "sigmoid",
                    modalities=modalities,
                )
                head_layers[head] = [_make_fusion("late", late_kwargs, dtype, f"{head}_late_fusion")]
            else:
                stack = []
                if spec["hidden_dim"] is not None:
                    stack.append(
                        keras.layers.Dense(
                            spec["hidden_dim"], activation="relu", dtype=dtype, name=f"{head}_hidden"
                        )
                    )
                stack.append(keras.layers.Dense(units, dtype=dtype, name=f"{head}_logits"))
                head_layers[head] = stack
            # Outputs are float32 whatever the policy (stable losses under mixed precision).
            head_layers[head].append(keras.layers.Activation("linear", dtype="float32", name=head))

        # === Functional Model ===
        inputs, features = {}, {}
        for modality in ("image", "text"):
            tower = towers[modality]
            if tower is None:
                continue
            input_name = TOWER_MODALITIES[modality]
            inputs[input_name] = keras.Input(
                tower.inputs[0].shape[1:],
                dtype="int32" if modality == "text" else "float32",
                name=input_name,
            )
            locked = modality == "image" and freeze_image_encoder
            features[modality] = dict(call_tower(tower, inputs[input_name], locked))
        for modality, shape in extra_inputs.items():
            inputs[modality] = keras.Input(tuple(shape), name=modality)
            key = "pooled" if len(shape) == 1 else "sequence"
            features[modality] = {key: inputs[modality]}
        rows = next((inputs[m] for m in _row_input_names(extra_inputs) if m in inputs), None)
        if "image" in features and rows is not None:
            # Several texts per image: one image encoding serves its K rows ([images * K]).
            repeat = RepeatToBatch(name="texts_per_image")
            features["image"] = {k: repeat(v, rows) for k, v in features["image"].items()}
        presence = {}
        for modality in modalities:
            name = presence_input_name(modality)
            inputs[name] = keras.Input((), name=name)
            presence[modality] = inputs[name]
        if dropout_layer is not None:
            presence = dropout_layer(presence)
        fused = None if shared_fusion is None else shared_fusion(features, presence=presence)
        outputs = {}
        for head, stack in head_layers.items():
            if fusion == "late":
                x = stack[0](features, presence=presence)
                rest = stack[1:]
            else:
                x, rest = fused, stack
            for layer in rest:
                x = layer(x)
            outputs[head] = x
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.image_encoder = image_encoder
        self.text_encoder = text_encoder
        self.preprocessor = preprocessor
        self.extra_inputs = extra_inputs
        self.fusion_name = fusion
        self.fusion_kwargs = copy.deepcopy(fusion_kwargs)
        self.fusion_layer = shared_fusion
        self.heads = heads
        self.modality_dropout = (
            dict(modality_dropout) if isinstance(modality_dropout, dict) else float(modality_dropout)
        )
        self.modalities = modalities
        self._dtype_arg = None if dtype is None else keras.dtype_policies.get(dtype).name
        self.freeze_image_encoder = bool(freeze_image_encoder)

    # --- Inputs -------------------------------------------------------------
    @property
    def presence_names(self):
        """`{modality: presence input name}`, e.g. `{"image": "image_present"}`."""
        return {m: presence_input_name(m) for m in self.modalities}

    def with_presence(self, batch, absent=()):
        """A copy of an input dict with every presence mask set.

        Masks already in `batch` are kept; the others are all ones, except the
        modalities named in `absent`, which get zeros (their features stay in
        the batch and are ignored by the model).

        Args:
            batch: dict of model inputs (arrays or tensors).
            absent: modalities to mark absent in every example, e.g. `["image"]`.

        Returns:
            A new dict with a `[B]` float32 mask for every modality.
        """
        absent = [absent] if isinstance(absent, str) else list(absent)
        unknown = [m for m in absent if m not in self.modalities]
        if unknown:
            raise ValueError(
                f"`absent` names modalities {unknown}; this model has {self.modalities}."
            )
        batch = dict(batch)
        reference = batch[self._reference_input()]
        size = ops.shape(reference)[0]
        for modality, name in self.presence_names.items():
            if modality in absent:
                batch[name] = ops.zeros((size,), "float32")
            elif name not in batch:
                batch[name] = ops.ones((size,), "float32")
        return batch

    def _reference_input(self):
        # The per-row inputs first: `images` may hold one row per K texts.
        for name in (*_row_input_names(self.extra_inputs), "images"):
            if name in self.input:
                return name
        raise ValueError("the model has no feature input")  # unreachable: checked in __init__

    def __call__(self, inputs, *args, **kwargs):
        # A presence mask left out of the input dict means "present in every example".
        if isinstance(inputs, dict):
            reference = self._reference_input()
            if reference not in inputs:
                raise ValueError(
                    f"The inputs must hold {sorted(self.input)} (presence masks may be left out); "
                    f"got {sorted(inputs)}."
                )
            # Keras wants all tensors or all arrays: convert, as the masks added below are tensors.
            inputs = {
                k: v if isinstance(v, keras.KerasTensor) or v is None else ops.convert_to_tensor(v)
                for k, v in inputs.items()
            }
            missing = [n for n in self.presence_names.values() if n not in inputs]
            if missing:
                ref = inputs[reference]
                flat = ops.reshape(ref, (ops.shape(ref)[0], -1))[:, 0]
                ones = ops.ones_like(ops.cast(flat, "float32"))
                for name in missing:
                    inputs[name] = ones
        return super().__call__(inputs, *args, **kwargs)

    # --- Outputs ------------------------------------------------------------
    def probabilities(self, outputs):
        """Turns the model outputs into probabilities (regression values pass through).

        Args:
            outputs: the model's output dict.

        Returns:
            A dict with, per head: `[B, C]` softmax probabilities (multiclass),
            `[B]` probability of class 1 (binary), `[B, C]` per-label sigmoid
            (multilabel) or `[B]` values (regression), all float32.
        """
        probs = {}
        for head, spec in self.heads.items():
            x = ops.cast(outputs[head], "float32")
            if spec["type"] == "multiclass":
                probs[head] = ops.softmax(x, axis=-1)
            elif spec["type"] == "multilabel":
                probs[head] = ops.sigmoid(x)
            elif spec["type"] == "binary":
                probs[head] = ops.sigmoid(x[:, 0])
            else:
                probs[head] = x[:, 0] if spec["num_classes"] == 1 else x
        return probs

    # --- Training -----------------------------------------------------------
    def default_losses(self):
        """Per-head Keras losses: sparse CE / binary CE (from logits) / MSE."""
        losses = {}
        for head, spec in self.heads.items():
            if spec["type"] == "multiclass":
                losses[head] = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
            elif spec["type"] in ("binary", "multilabel"):
                losses[head] = keras.losses.BinaryCrossentropy(from_logits=True)
            else:
                losses[head] = keras.losses.MeanSquaredError()
        return losses

    def default_metrics(self):
        """Per-head accuracy (threshold 0 on logits for binary and multilabel heads) or MAE
        (`HeadAccuracy`: exact under several replicas, with per-head sample weights)."""
        kinds = {"multiclass": "multiclass", "binary": "binary", "multilabel": "binary"}
        metrics = {}
        for head, spec in self.heads.items():
            kind = kinds.get(spec["type"], "mae")
            metrics[head] = [HeadAccuracy(kind, name="mae" if kind == "mae" else "accuracy")]
        return metrics

    def compile(self, optimizer="adamw", loss=None, loss_weights=None, metrics=None, **kwargs):
        """`keras.Model.compile` with per-head defaults from the head specs.

        Heads missing from `loss` get their type's default loss
        (`default_losses()`), heads missing from `loss_weights` their spec's
        `loss_weight`, and `metrics=None` gives `default_metrics()` as
        `weighted_metrics`: with `sample_weight={head: [B]}` a head's accuracy
        counts only the examples of nonzero weight for it (an unweighted
        metric would also count the examples that carry a placeholder label).

        Args:
            optimizer: a Keras optimizer or its name.
            loss: optional dict `{head: loss}` overriding the defaults.
            loss_weights: optional dict `{head: float}` overriding the specs.
            metrics: optional dict `{head: [metrics]}` (unweighted); None for the
                weighted defaults, unless `weighted_metrics` is given.
            **kwargs: other `keras.Model.compile` arguments (`jit_compile`, ...).
        """
        for what, value in (("loss", loss), ("loss_weights", loss_weights), ("metrics", metrics)):
            if value is None:
                continue
            if not isinstance(value, dict):
                raise ValueError(
                    f"`{what}` must be a dict keyed by head name ({list(self.heads)}), got {value!r}."
                )
            unknown = [k for k in value if k not in self.heads]
            if unknown:
                raise ValueError(f"`{what}` names unknown heads {unknown}; heads: {list(self.heads)}.")
        losses = {**self.default_losses(), **(loss or {})}
        weights = {head: spec["loss_weight"] for head, spec in self.heads.items()}
        weights.update(loss_weights or {})
        if metrics is None and kwargs.get("weighted_metrics") is None:
            kwargs["weighted_metrics"] = self.default_metrics()
        super().compile(optimizer=optimizer, loss=losses, loss_weights=weights, metrics=metrics, **kwargs)

    def compile_from_config(self, config):
        restore_compiled_state(self, config)  # `compile` is overridden: Keras would skip it

    # --- Config -------------------------------------------------------------
    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "image_encoder": keras.saving.serialize_keras_object(self.image_encoder),
            "text_encoder": keras.saving.serialize_keras_object(self.text_encoder),
            "preprocessor": keras.saving.serialize_keras_object(self.preprocessor),
            "extra_inputs": {k: list(v) for k, v in self.extra_inputs.items()},
            "fusion": self.fusion_name,
            "fusion_kwargs": _plain(self.fusion_kwargs),
            "heads": _plain(self.heads),
            "modality_dropout": _plain(self.modality_dropout),
            "freeze_image_encoder": self.freeze_image_encoder,
            "dtype": self._dtype_arg,
        }

    @classmethod
    def from_config(cls, config):
        return from_config_with_parts(cls, config)


def _plain(value):
    """A copy of a config value with Keras' tracked dicts and lists made plain again.

    (`copy.deepcopy` of a tracked container also copies the model that tracks it.)
    """
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@builder_of(FusionClassifier)
def fusion_classifier(*, encoders=None, name="fusion_classifier", **arguments):
    """Builds a multimodal fusion classifier with named task heads.

    Any mmkeras towers work (ViT or keras.applications CNNs, Transformer text
    towers, keras-hub or TF-Hub towers), with any fusion type of
    `mmkeras.layers.fusions`, several heads (multi-class, binary,
    multi-label, regression; each with its own loss and loss weight) and
    per-modality presence masks for missing modalities. See
    `FusionClassifier` for the inputs, outputs and head specs.

    Args:
        image_encoder: optional image tower (modality "image").
        text_encoder: optional text tower (modality "text").
        extra_inputs: optional dict `{modality: D or [T, D]}` of raw feature
            inputs, e.g. `{"numeric": 3}`.
        fusion: "early", "concat", "sum", "late", "gated", "bilinear",
            "cross_attention" or "hybrid".
        fusion_kwargs: optional constructor arguments of the fusion class
            (for "late": `combine`, `hidden_dim`, ... of every `LateFusion`).
        heads: dict `{name: {"type": "multiclass"|"binary"|"multilabel"|
            "regression", "num_classes": C, "loss_weight": w, "labels": [...],
            "hidden_dim": h}}`.
        modality_dropout: float or `{modality: rate}`, training-time modality
            dropout.
        freeze_image_encoder: bool, lock the image tower (see
            `FusionClassifier`).
        preprocessor: optional `MultimodalPreprocessor` kept with the model.
        dtype: optional dtype policy for the fusion and heads.
        encoders: alternative to the tower arguments: `{"image": tower,
            "text": tower}`.
        name: model name.

    Returns:
        A `FusionClassifier` (a functional `keras.Model`).

    Example:

    >>> import numpy as np
    >>> from mmkeras.encoders import ViTEncoder, TextTransformerEncoder
    >>> model = fusion_classifier(
    ...     ViTEncoder(image_size=32, patch_size=16, hidden_dim=16, num_layers=1, num_heads=2,
    ...                mlp_dim=32),
    ...     TextTransformerEncoder(vocabulary_size=30, sequence_length=6, hidden_dim=16,
    ...                            num_layers=1, num_heads=2, mlp_dim=32, causal=False),
    ...     fusion="late", heads={"match": {"type": "binary", "labels": ["no", "yes"]}})
    >>> batch = {"images": np.zeros((2, 32, 32, 3), "float32"),
    ...          "token_ids": np.tile([[2, 5, 3, 0, 0, 0]], (2, 1)).astype("int32"),
    ...          "text_present": np.array([1.0, 0.0], "float32")}
    >>> model.probabilities(model(batch))["match"].shape
    TensorShape([2])
    """
    if encoders is not None:
        if not isinstance(encoders, dict) or any(k not in TOWER_MODALITIES for k in encoders):
            raise ValueError(
                f"`encoders` must be a dict with keys among {sorted(TOWER_MODALITIES)} "
                f"(other modalities go in `extra_inputs`), got {encoders!r}."
            )
        if arguments["image_encoder"] is not None or arguments["text_encoder"] is not None:
            raise ValueError("Pass the towers either as `encoders` or as `image_encoder` / `text_encoder`.")
        arguments.update(image_encoder=encoders.get("image"), text_encoder=encoders.get("text"))
    return FusionClassifier(name=name, **arguments)


def presence_input_name(modality):
    """The presence-mask input of a modality: `"<modality>_present"`.

    Example:

    >>> presence_input_name("image")
    'image_present'
    """
    return f"{modality}_present"


def normalize_heads(heads):
    """Validates head specs and fills in their defaults.

    Args:
        heads: dict `{name: spec}` (see `FusionClassifier`).

    Returns:
        A new dict with every key of every spec set: `type`, `num_classes`
        (1 for binary and regression), `labels` (None for regression),
        `loss_weight`, `hidden_dim`.

    Example:

    >>> normalize_heads({"match": {"type": "binary"}})["match"]["labels"]
    ['0', '1']
    """
    if not isinstance(heads, dict) or not heads:
        raise ValueError(
            "`heads` must be a non-empty dict {name: {'type': ..., 'num_classes': ...}}, "
            f"got {heads!r}."
        )
    normalized = {}
    for head, spec in heads.items():
        field = f"heads[{head!r}]"
        if not isinstance(head, str) or not head.isidentifier():
            raise ValueError(f"Head names must be identifiers, got {head!r} in `heads`.")
        if head.endswith("_present") or head in ("images", "token_ids"):
            raise ValueError(f"Head name {head!r} in `heads` clashes with an input name.")
        if not isinstance(spec, dict):
            raise ValueError(f"`{field}` must be a dict with a 'type', got {spec!r}.")
        unknown = [k for k in spec if k not in _HEAD_KEYS]
        if unknown:
            raise ValueError(f"`{field}` has unknown keys {unknown}; allowed: {list(_HEAD_KEYS)}.")
        kind = spec.get("type")
        if kind not in HEAD_TYPES:
            raise ValueError(f"`{field}['type']` must be one of {HEAD_TYPES}, got {kind!r}.")
        labels = spec.get("labels")
        if labels is not None:
            if isinstance(labels, str) or not all(isinstance(x, str) for x in labels):
                raise ValueError(f"`{field}['labels']` must be a list of strings, got {labels!r}.")
            labels = list(labels)
            if len(set(labels)) != len(labels):
                raise ValueError(f"`{field}['labels']` must be unique, got {labels!r}.")
        num_classes = spec.get("num_classes")
        if kind == "binary":
            if num_classes not in (None, 1, 2):
                raise ValueError(
                    f"`{field}['num_classes']` of a binary head must be 1, 2 or left out, "
                    f"got {num_classes!r}."
                )
            labels = labels or ["0", "1"]
            if len(labels) != 2:
                raise ValueError(f"`{field}['labels']` of a binary head needs 2 names, got {labels!r}.")
            num_classes = 1
        elif kind == "regression":
            if labels is not None:
                raise ValueError(f"`{field}` is a regression head: it takes no 'labels'.")
            num_classes = check_int(f"{field}['num_classes']", 1 if num_classes is None else num_classes, minimum=1)
        else:
            if num_classes is None and labels is not None:
                num_classes = len(labels)
            num_classes = check_int(f"{field}['num_classes']", num_classes, minimum=2 if kind == "multiclass" else 1)
            if labels is not None and len(labels) != num_classes:
                raise ValueError(
                    f"`{field}['labels']` has {len(labels)} names but `num_classes` is {num_classes}."
                )
            labels = labels or [str(i) for i in range(num_classes)]
        loss_weight = spec.get("loss_weight", 1.0)
        if isinstance(loss_weight, bool) or not isinstance(loss_weight, (int, float)) or loss_weight < 0:
            raise ValueError(f"`{field}['loss_weight']` must be a float >= 0, got {loss_weight!r}.")
        normalized[head] = {
            "type": kind,
            "num_classes": num_classes,
            "labels": labels,
            "loss_weight": float(loss_weight),
            "hidden_dim": check_int(f"{field}['hidden_dim']", spec.get("hidden_dim"), minimum=1, allow_none=True),
        }
    return normalized


def _head_units(spec):
    return spec["num_classes"]


def _row_input_names(extra_inputs):
    """The inputs with one row per example (`images` may hold one row per K texts instead)."""
    return ("token_ids", *extra_inputs)


def _normalize_extra_inputs(extra_inputs):
    if extra_inputs is None:
        return {}
    if not isinstance(extra_inputs, dict):
        raise ValueError(f"`extra_inputs` must be a dict {{modality: D or [T, D]}}, got {extra_inputs!r}.")
    normalized = {}
    for name, shape in extra_inputs.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"`extra_inputs` names must be identifiers, got {name!r}.")
        if name in TOWER_MODALITIES or name in TOWER_MODALITIES.values() or name.endswith("_present"):
            raise ValueError(
                f"`extra_inputs` name {name!r} is reserved (towers use 'image' / 'text', "
                "presence masks end in '_present')."
            )
        dims = [shape] if isinstance(shape, numbers.Integral) and not isinstance(shape, bool) else shape
        if not isinstance(dims, (list, tuple)) or len(dims) not in (1, 2):
            raise ValueError(
                f"`extra_inputs[{name!r}]` must be a width D (a [B, D] vector) or [T, D] "
                f"(a [B, T, D] sequence), got {shape!r}."
            )
        normalized[name] = [  # T may be None: any number of tokens
            None if d is None and i == 0 and len(dims) == 2 else check_int(f"extra_inputs[{name!r}][{i}]", d, minimum=1)
            for i, d in enumerate(dims)
        ]
    return normalized


def _make_fusion(fusion, kwargs, dtype, name):
    kwargs = dict(kwargs)
    if fusion == "cross_attention":
        # CrossAttentionFusion fixes its own modality order (query, context).
        modalities = kwargs.pop("modalities", None)
        query, context = kwargs.get("query_modality", "text"), kwargs.get("context_modality", "image")
        if modalities is not None and sorted(modalities) != sorted([query, context]):
            raise ValueError(
                f"`fusion`='cross_attention' fuses exactly two modalities (query "
                f"{query!r}, context {context!r}); this model has {modalities}. Use another "
                "fusion (e.g. 'early') for more modalities, or set `fusion_kwargs` "
                "`query_modality` / `context_modality`."
            )
    valid = set(inspect.signature(FUSIONS[fusion].__init__).parameters) - {"self", "kwargs"}
    valid |= {"modalities", "trainable"}
    unknown = sorted(k for k in kwargs if k not in valid)
    if unknown:
        raise ValueError(
            f"Unknown `fusion_kwargs` {unknown} for fusion {fusion!r}; valid: {sorted(valid)}."
        )
    return FUSIONS[fusion](dtype=dtype, name=name, **kwargs)
