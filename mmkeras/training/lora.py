"""Low-rank adaptation (LoRA) of a family model's towers and decoder, merged into the weights for export."""

import os
import shutil
import tempfile

import keras
import numpy as np

LORA_TARGETS = ("attention", "mlp")
# The parts of a family model whose projections get LoRA (everything else trains as it is).
ADAPTED_PARTS = ("image_encoder", "text_encoder", "decoder_blocks")
# Names of attention projections in mmkeras, Keras and keras-hub layers.
_ATTENTION_NAMES = ("qkv", "query", "key", "value", "attention_output", "q_proj", "k_proj", "v_proj", "out_proj",
                    "self_attention", "cross_attention", "attention")


def _projections(layer, in_attention=False):
    """`[(layer, "attention" | "mlp")]` for every `Dense` / `EinsumDense` below `layer`."""
    found = []
    for child in layer._flatten_layers(include_self=False, recursive=False):  # Keras' (and keras-hub's) walk
        attention = in_attention or isinstance(child, keras.layers.MultiHeadAttention) or any(
            name in child.name for name in _ATTENTION_NAMES)
        if isinstance(child, (keras.layers.Dense, keras.layers.EinsumDense)):
            found.append((child, "attention" if attention else "mlp"))
        else:
            found += _projections(child, attention)
    return found


def _adapted_parts(model):
    parts = []
    for name in ADAPTED_PARTS:
        part = getattr(model, name, None)
        parts += list(part) if isinstance(part, (list, tuple)) else [part] if part is not None else []
    return parts


def enable_lora(model, rank, alpha=None, targets=LORA_TARGETS):
    """Adds LoRA to the attention and / or MLP projections of a model's towers and caption decoder.

    Every `Dense` / `EinsumDense` projection of the towers (`image_encoder`, `text_encoder`) and of
    the caption decoder's blocks (`decoder_blocks`) gets a rank-`rank` update `(alpha / rank) A B`
    (Keras' `enable_lora`); every other weight of those parts is frozen. What lies outside them
    (projections to the joint space, fusion modules, heads, the decoder's embeddings) trains as
    before. `model.keras` and `*.weights.h5` store each kernel with its update merged (Keras does
    so); `merge_lora` gives the model without LoRA layers for export.

    Args:
        model: a built `DualEncoder`, `Captioner` or `FusionClassifier`.
        rank: the LoRA rank (>= 1).
        alpha: the LoRA scale numerator (default: `rank`, a scale of 1).
        targets: which projections: "attention" (query / key / value / output) and / or "mlp"
            (every other projection in a block).

    Returns:
        The number of projections that got LoRA.

    Example:

    >>> from mmkeras import zoo
    >>> model = zoo.build("shapes-clip-tiny", **{"image_encoder.num_layers": 1, "text_encoder.num_layers": 1})
    >>> enable_lora(model, rank=4)
    8
    >>> sorted({w.path.rsplit("/", 1)[-1] for w in model.trainable_weights if "block" in w.path})
    ['lora_kernel_a', 'lora_kernel_b']
    """
    rank = int(rank)
    if rank < 1:
        raise ValueError(f"`rank` (`train.lora_rank`) must be at least 1, got {rank}.")
    if alpha is not None and not float(alpha) > 0:
        raise ValueError(f"`alpha` (`train.lora_alpha`) must be positive, got {alpha!r}.")
    unknown = sorted(set(targets) - set(LORA_TARGETS))
    if unknown or not targets:
        raise ValueError(f"`targets` (`train.lora_targets`) must be a non-empty subset of {list(LORA_TARGETS)}, "
                         f"got {list(targets)}.")
    parts = _adapted_parts(model)
    if not parts:
        raise ValueError(f"{type(model).__name__} has no towers or decoder blocks to adapt with LoRA.")
    count = 0
    for part in parts:
        if not part.built:
            raise ValueError(f"Build the model before `enable_lora`: {part.name} is not built.")
        for weight in part.weights:
            weight.trainable = False
        for layer, kind in _projections(part):
            if kind in targets and not layer.lora_enabled:
                layer.enable_lora(rank, lora_alpha=alpha)
                count += 1
    if not count:
        raise ValueError(f"No {' or '.join(targets)} projection found in the towers of {type(model).__name__}.")
    return count


def has_lora(model):
    """Whether any projection of `model` has LoRA enabled.

    Example:

    >>> layer = keras.layers.Dense(2)
    >>> layer.build((None, 3))
    >>> has_lora(layer), (layer.enable_lora(1), has_lora(layer))[1]
    (False, True)
    """
    layers = [model, *model._flatten_layers(include_self=False)]
    return any(getattr(layer, "lora_enabled", False) for layer in layers)


def trainable_parameter_count(model):
    """`(trainable, total)` parameter counts of a built model.

    Example:

    >>> layer = keras.layers.Dense(2)
    >>> layer.build((None, 3))
    >>> trainable_parameter_count(layer)
    (8, 8)
    """
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    return trainable, sum(int(np.prod(w.shape)) for w in model.weights)


def _without_lora(config):
    if isinstance(config, dict):
        return {k: _without_lora(v) for k, v in config.items() if k not in ("lora_rank", "lora_alpha")}
    if isinstance(config, list):
        return [_without_lora(v) for v in config]
    return config


def merge_lora(model):
    """The model with every LoRA update merged into its kernel and no LoRA weights: the same outputs,
    plain projections (what the export serves).

    Args:
        model: a built model, with or without LoRA (returned as it is without).

    Returns:
        A new model of the same class and weights, LoRA folded in.

    Example:

    >>> from mmkeras import zoo
    >>> model = zoo.build("shapes-clip-tiny", **{"image_encoder.num_layers": 1, "text_encoder.num_layers": 1})
    >>> _ = enable_lora(model, rank=2)
    >>> merged = merge_lora(model)
    >>> has_lora(model), has_lora(merged), len(merged.weights) < len(model.weights)
    (True, False, True)
    """
    if not has_lora(model):
        return model
    merged = type(model).from_config(_without_lora(model.get_config()))
    directory = tempfile.mkdtemp(prefix="mmkeras-lora-")
    try:
        path = os.path.join(directory, "merged.weights.h5")
        model.save_weights(path)  # Keras writes each LoRA kernel merged
        merged.load_weights(path)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return merged
