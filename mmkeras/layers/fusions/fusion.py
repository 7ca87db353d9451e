import keras
from keras import ops

from mmkeras.layers.transformer_encoder_block import TransformerEncoderBlock
from mmkeras.validation import check_int
from mmkeras.validation import check_rate

_ENTRY_KEYS = ("sequence", "pooled", "padding_mask")
_NEG = -1e9


class Fusion(keras.layers.Layer):
    """Base class of the fusion layers: parses the modality dict and presence masks.

    Subclasses implement `build_fusion(entries)` (create and build their
    sub-layers from the per-modality shapes) and `call(inputs, presence=None,
    training=None)`, using `self.modality_views(inputs, presence)` to get, for
    every modality in a fixed order, its features with absent examples already
    zeroed. See the package docstring (`mmkeras.layers.fusions`) for the input
    convention.

    Args:
        modalities: optional list of modality names. It fixes the modality
            order (and so the weights each name owns) and every call must feed
            exactly these names. `None` takes the input keys in sorted order.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments (of every fusion):
        inputs: dict `{modality: {"sequence", "pooled", "padding_mask"}}`.
        presence: optional dict `{modality: [B] mask}` (1 = present).
        training: bool, dropout switch (fusions with dropout).

    Example:

    >>> import numpy as np
    >>> from mmkeras.layers.fusions import ConcatFusion
    >>> isinstance(ConcatFusion(output_dim=4), Fusion)
    True
    """

    min_modalities = 1
    max_modalities = None

    def __init__(self, modalities=None, **kwargs):
        super().__init__(**kwargs)
        if modalities is not None:
            if isinstance(modalities, str) or not all(isinstance(m, str) for m in modalities):
                raise ValueError(
                    f"`modalities` must be a list of modality names (str), got {modalities!r}."
                )
            modalities = tuple(modalities)
            if len(set(modalities)) != len(modalities) or not modalities:
                raise ValueError(
                    f"`modalities` must be non-empty and without duplicates, got {modalities!r}."
                )
            self._check_count(modalities, "modalities")
        self.modalities = None if modalities is None else list(modalities)

    # --- input parsing -----------------------------------------------------
    def _check_count(self, names, what):
        n = len(names)
        if n < self.min_modalities or (self.max_modalities is not None and n > self.max_modalities):
            wanted = (
                f"exactly {self.min_modalities}"
                if self.max_modalities == self.min_modalities
                else f"at least {self.min_modalities}"
                + ("" if self.max_modalities is None else f" and at most {self.max_modalities}")
            )
            raise ValueError(
                f"{type(self).__name__} needs {wanted} modalities, got {n} in `{what}`: "
                f"{list(names)}."
            )

    def _resolve_names(self, keys):
        keys = list(keys)
        if self.modalities is None:
            names = sorted(keys)
        else:
            names = list(self.modalities)
            extra = [k for k in keys if k not in names]
            missing = [m for m in names if m not in keys]
            if extra or missing:
                raise ValueError(
                    f"`inputs` must hold exactly the modalities {names} given in `modalities`; "
                    f"unexpected: {extra}, missing: {missing}. Feed an absent modality as "
                    "placeholder features with `presence` 0."
                )
        self._check_count(names, "inputs")
        return names

    @staticmethod
    def _entry(name, value, is_shape):
        """Normalises one modality to a dict with the keys in `_ENTRY_KEYS`."""
        if not isinstance(value, dict):
            rank = len(value) if is_shape else len(value.shape)
            if rank == 2:
                value = {"pooled": value}
            elif rank == 3:
                value = {"sequence": value}
            else:
                raise ValueError(
                    f"`inputs[{name!r}]` must be a dict with 'sequence' [B, T, D] and/or "
                    f"'pooled' [B, D] (or one such tensor), got rank {rank}."
                )
        unknown = [k for k in value if k not in _ENTRY_KEYS]
        if unknown:
            raise ValueError(
                f"`inputs[{name!r}]` has unknown keys {unknown}; allowed: {list(_ENTRY_KEYS)}."
            )
        if "sequence" not in value and "pooled" not in value:
            raise ValueError(f"`inputs[{name!r}]` needs a 'sequence' or a 'pooled' entry.")
        if "padding_mask" in value and "sequence" not in value:
            raise ValueError(f"`inputs[{name!r}]` has 'padding_mask' but no 'sequence'.")
        for key, want in (("sequence", 3), ("pooled", 2), ("padding_mask", 2)):
            if key in value:
                rank = len(value[key]) if is_shape else len(value[key].shape)
                if rank != want:
                    raise ValueError(
                        f"`inputs[{name!r}][{key!r}]` must have rank {want}, got rank {rank}."
                    )
        return dict(value)

    def _entries(self, inputs, is_shape=False):
        if not isinstance(inputs, dict):
            raise ValueError(
                f"`inputs` must be a dict {{modality: {{'sequence', 'pooled', 'padding_mask'}}}}, "
                f"got {type(inputs).__name__}."
            )
        names = self._resolve_names(inputs.keys())
        return {name: self._entry(name, inputs[name], is_shape) for name in names}

    def build(self, inputs_shape, presence_shape=None):
        entries = self._entries(inputs_shape, is_shape=True)
        self.modality_names = list(entries)
        self.build_fusion(entries)

    def build_fusion(self, entries):
        """Creates and builds sub-layers; `entries` maps names to shape dicts."""
        raise NotImplementedError

    # --- helpers of the Transformer-based fusions ----------------------------
    def set_transformer_arguments(self, hidden_dim, num_layers, num_heads, mlp_dim, dropout, output_dim, layer_norm_epsilon,
                                  **positive_ints):
        """Checks and stores the arguments the Transformer-based fusions share.

        Sets `hidden_dim`, `num_layers`, `num_heads`, `mlp_dim`, `dropout`,
        `output_dim` (defaulting to `hidden_dim`) and `layer_norm_epsilon`, plus
        every extra keyword in `positive_ints` (checked to be >= 1).
        """
        hidden_dim = check_int("hidden_dim", hidden_dim, minimum=1)
        num_layers = check_int("num_layers", num_layers, minimum=1)
        num_heads = check_int("num_heads", num_heads, minimum=1)
        positive_ints = {arg: check_int(arg, value, minimum=1) for arg, value in positive_ints.items()}
        if hidden_dim % num_heads:
            raise ValueError(f"`num_heads`={num_heads} must divide `hidden_dim`={hidden_dim}.")
        mlp_dim = check_int("mlp_dim", mlp_dim, minimum=1, allow_none=True)
        output_dim = check_int("output_dim", output_dim, minimum=1, allow_none=True)
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.mlp_dim = mlp_dim
        self.dropout = check_rate("dropout", dropout)
        self.output_dim = self.hidden_dim if output_dim is None else output_dim
        self._output_dim_arg = output_dim
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        for arg, value in positive_ints.items():
            setattr(self, arg, value)

    def transformer_block(self, name):
        """A built `TransformerEncoderBlock` of width `hidden_dim` with this fusion's settings."""
        block = TransformerEncoderBlock(
            num_heads=self.num_heads,
            mlp_dim=self.mlp_dim or 4 * self.hidden_dim,
            dropout=self.dropout,
            layer_norm_epsilon=self.layer_norm_epsilon,
            dtype=self.dtype_policy,
            name=name,
        )
        block.build((None, None, self.hidden_dim))
        return block

    def token_projections(self, entries):
        """One built `Dense` per modality, from its token width to `hidden_dim`."""
        projections = []
        for name, entry in entries.items():
            dense = keras.layers.Dense(self.hidden_dim, dtype=self.dtype_policy, name=f"{name}_projection")
            dense.build((None, None, self.token_width(entry)))
            projections.append(dense)
        return projections

    @staticmethod
    def token_width(entry):
        """Feature width of a modality's tokens (from a shape dict)."""
        return (entry["sequence"] if "sequence" in entry else entry["pooled"])[-1]

    @staticmethod
    def pooled_width(entry):
        """Feature width of a modality's pooled vector (from a shape dict)."""
        return (entry["pooled"] if "pooled" in entry else entry["sequence"])[-1]

    def modality_views(self, inputs, presence=None):
        """Per-modality views of the inputs, in `self.modality_names` order.

        Returns:
            A list of dicts with
            - `"name"`;
            - `"present"`: bool `[B]`;
            - `"tokens"`: `[B, T, D]` (the sequence, or the pooled vector as a
              one-token sequence), zero for absent examples;
            - `"token_mask"`: bool `[B, T]`, padding mask AND presence;
            - `"pooled"`: `[B, D]` (given, else the masked mean of the
              sequence), zero for absent examples.
            All features are cast to the compute dtype.
        """
        entries = self._entries(inputs)
        presence = {} if presence is None else presence
        if not isinstance(presence, dict):
            raise ValueError(
                f"`presence` must be a dict {{modality: [B] mask}} or None, "
                f"got {type(presence).__name__}."
            )
        unknown = [k for k in presence if k not in entries]
        if unknown:
            raise ValueError(
                f"`presence` has modalities {unknown} that are not in `inputs` "
                f"({list(entries)})."
            )
        dtype = self.compute_dtype
        views = []
        for name, entry in entries.items():
            some = entry["sequence"] if "sequence" in entry else entry["pooled"]
            batch = ops.shape(some)[0]
            if name in presence and presence[name] is not None:
                flag = ops.reshape(presence[name], (-1,))
                if keras.backend.standardize_dtype(flag.dtype) != "bool":
                    flag = ops.greater(ops.cast(flag, "float32"), 0.5)
            else:
                flag = ops.ones((batch,), "bool")
            if "sequence" in entry:
                tokens = ops.cast(entry["sequence"], dtype)
                if "padding_mask" in entry:
                    mask = ops.cast(entry["padding_mask"], "bool")
                else:
                    mask = ops.ones(ops.shape(tokens)[:2], "bool")
            else:
                tokens = ops.cast(entry["pooled"], dtype)[:, None, :]
                mask = ops.ones((batch, 1), "bool")
            tokens = ops.where(flag[:, None, None], tokens, ops.zeros_like(tokens))
            mask = ops.logical_and(mask, flag[:, None])
            if "pooled" in entry:
                pooled = ops.cast(entry["pooled"], dtype)
                pooled = ops.where(flag[:, None], pooled, ops.zeros_like(pooled))
            else:
                pooled = masked_mean(tokens, mask)
            views.append(
                {
                    "name": name,
                    "present": flag,
                    "tokens": tokens,
                    "token_mask": mask,
                    "pooled": pooled,
                }
            )
        return views

    # === Config ===
    def get_config(self):
        config = super().get_config()
        config.update({"modalities": self.modalities})
        return config


def masked_mean(tokens, mask):
    """Mean of `tokens [B, T, D]` over the positions where `mask [B, T]` is True."""
    weights = ops.cast(mask, tokens.dtype)[..., None]
    total = ops.sum(tokens * weights, axis=1)
    count = ops.maximum(ops.sum(weights, axis=1), ops.cast(1.0, tokens.dtype))
    return total / count


def presence_matrix(views, dtype):
    """Stacks the presence flags into a `[B, M]` tensor of `dtype`."""
    return ops.stack([ops.cast(v["present"], dtype) for v in views], axis=1)


def masked_softmax(logits, present, axis):
    """Softmax over `axis` restricted to `present` (broadcastable bool); 0 where absent.

    Computed in float32; an example with nothing present gets all zeros.
    """
    logits = ops.cast(logits, "float32")
    present = ops.broadcast_to(present, ops.shape(logits))
    weights = ops.softmax(ops.where(present, logits, _NEG), axis=axis)
    return ops.where(present, weights, 0.0)
