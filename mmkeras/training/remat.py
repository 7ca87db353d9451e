"""Rematerialisation (gradient checkpointing) per Transformer block.

With rematerialisation on (`--set train.remat=true`), each Transformer block
keeps only its inputs for the backward pass: the activations inside the block
(attention scores, MLP hidden states, layer-norm statistics, ...) are
recomputed from those inputs when the gradient reaches the block. Peak memory
of a training step then grows with the number of blocks times one block
input, instead of with every intermediate tensor of every block; the price is
about one extra forward pass of the blocks per step.

What counts as a block: `mmkeras.layers.TransformerEncoderBlock`,
`mmkeras.layers.TransformerDecoderBlock`, and the keras-hub blocks inside
`KerasHubEncoder` towers (`keras_hub.layers.TransformerEncoder` /
`TransformerDecoder`, `CLIPEncoderLayer`, `SigLIPEncoderLayer`,
`ViTEncoderBlock`, and subclasses of these), matched by class name so that
keras-hub is not imported here.

Why not `keras.RematScope`: its `"full"`, `"activations"` and `"larger_than"`
modes rematerialise every layer (or every activation) separately, not one
block as a whole, and its `"list_of_layers"` mode calls
`tf.recompute_grad(layer.call)` with the layer's keyword arguments, which
`tf.custom_gradient` rejects inside a `tf.function` (every `fit`): a block is
always called with `training=...`. This module reuses Keras' hook instead
(a layer whose `_remat_mode` is set calls `self.rematerialized_call(self.call)`)
and gives each block a wrapper that passes only the floating-point tensors
through `tf.recompute_grad` (the others, masks and Python values, are bound
as constants), and that makes the recomputation replay the forward pass
exactly: same dropout masks (the block's seed-generator states are restored),
same autocast dtype (mixed precision) and same `training` call context.
Gradients equal the ones without rematerialisation up to float rounding, under
eager execution, `tf.function` and XLA, with `steps_per_execution` and
gradient accumulation.

`apply_remat(model)` rematerialises the blocks of a built model (towers,
keras-hub towers wrapped by `KerasHubEncoder`, the caption decoder);
`Task.build_model` calls it with `train.remat`. It is not saved with the
model: a loaded model is rematerialised by calling it again.
"""

import contextlib

import keras
import tensorflow as tf
from keras.src.backend.common import global_state
from keras.src.backend.common.remat import RematMode

# Class names (anywhere in a layer's MRO) of the layers rematerialised as one block.
BLOCK_CLASS_NAMES = (
    "TransformerEncoderBlock",  # mmkeras.layers
    "TransformerDecoderBlock",  # mmkeras.layers
    "TransformerEncoder",  # keras_hub.layers (BERT and other generic backbones)
    "TransformerDecoder",  # keras_hub.layers
    "CLIPEncoderLayer",  # keras_hub CLIP towers
    "SigLIPEncoderLayer",  # keras_hub SigLIP towers
    "ViTEncoderBlock",  # keras_hub ViT backbone
)

_MARK = "_mmkeras_remat"


def is_transformer_block(layer):
    """Whether `layer` is a Transformer block that rematerialisation treats as one unit.

    Args:
        layer: any object (normally a `keras.layers.Layer`).

    Returns:
        bool: a class of `layer` (or a base class) is named in `BLOCK_CLASS_NAMES`.

    Example:

    >>> import keras
    >>> from mmkeras.layers import TransformerEncoderBlock
    >>> is_transformer_block(TransformerEncoderBlock(num_heads=2, mlp_dim=8))
    True
    >>> is_transformer_block(keras.layers.Dense(4))
    False
    """
    return isinstance(layer, keras.layers.Layer) and any(
        cls.__name__ in BLOCK_CLASS_NAMES for cls in type(layer).__mro__
    )


def is_rematerialized(layer):
    """Whether calls of `layer` are rematerialised as one block.

    Args:
        layer: a `keras.layers.Layer`.

    Returns:
        bool.

    Example:

    >>> import keras
    >>> dense = keras.layers.Dense(4)
    >>> is_rematerialized(dense), is_rematerialized(rematerialize(dense))
    (False, True)
    """
    return bool(getattr(layer, _MARK, False))


def rematerialize(layer):
    """Makes every later call of `layer` keep only its inputs for the backward pass.

    The whole call is recomputed when the gradient reaches it. Works for any
    layer (it is what `apply_remat` does to each block); calling it twice is a
    no-op. Use it on whole blocks: rematerialising a layer inside a
    rematerialised block recomputes twice for nothing.

    Args:
        layer: a `keras.layers.Layer`.

    Returns:
        The same `layer`.

    Example:

    >>> import numpy as np, tensorflow as tf
    >>> from mmkeras.layers import TransformerEncoderBlock
    >>> block = rematerialize(TransformerEncoderBlock(num_heads=2, mlp_dim=8))
    >>> x = tf.constant(np.ones((1, 3, 4), "float32"))
    >>> with tf.GradientTape() as tape:
    ...     tape.watch(x)
    ...     y = tf.reduce_sum(block(x, training=True))
    >>> tuple(tape.gradient(y, x).shape)
    (1, 3, 4)
    """
    if not isinstance(layer, keras.layers.Layer):
        raise TypeError(f"`rematerialize` takes a keras Layer, got {type(layer).__name__}.")
    if is_rematerialized(layer):
        return layer
    # `Operation.__call__` routes the call through `self.rematerialized_call(self.call, ...)`
    # when `_remat_mode` is set; both are plain instance attributes (not tracked, not saved).
    object.__setattr__(layer, "_remat_mode", RematMode("list_of_layers", 0, [layer.name]))
    object.__setattr__(layer, "rematerialized_call", _block_rematerialized_call(layer))
    object.__setattr__(layer, _MARK, True)
    return layer


def apply_remat(model, enabled=True):
    """Rematerialises every Transformer block of an already constructed model.

    Walks the model's layers (nested models and towers included), and
    rematerialises each block found (see `is_transformer_block`) as one unit;
    it does not descend into a block.

    Args:
        model: a `keras.layers.Layer` / `keras.Model`.
        enabled: bool; `False` does nothing (handy as `apply_remat(model,
            config["train"]["remat"])`).

    Returns:
        list of the rematerialised block layers (empty when `enabled` is False).

    Example:

    >>> import keras
    >>> from mmkeras.layers import TransformerEncoderBlock
    >>> inputs = keras.Input((3, 8))
    >>> x = TransformerEncoderBlock(num_heads=2, mlp_dim=16)(inputs)
    >>> x = TransformerEncoderBlock(num_heads=2, mlp_dim=16)(x)
    >>> model = keras.Model(inputs, keras.layers.Dense(1)(x))
    >>> len(apply_remat(model))
    2
    """
    if not enabled:
        return []
    blocks = []
    pending = [model]
    seen = set()
    while pending:
        layer = pending.pop(0)
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        if is_transformer_block(layer):
            blocks.append(rematerialize(layer))
        elif isinstance(layer, keras.layers.Layer):
            pending.extend(layer._flatten_layers(include_self=False, recursive=False))
    return blocks


def _could_record():
    """False only when certainly no gradient tape records (then rematerialising buys nothing)."""
    try:
        from tensorflow.python.eager import record

        return bool(record.could_possibly_record())
    except (ImportError, AttributeError):  # pragma: no cover - older/newer TF layouts
        return True


def _is_float_tensor(value):
    if not tf.is_tensor(value) or isinstance(value, keras.Variable):
        return False
    return tf.as_dtype(value.dtype).is_floating


def _seed_states(layer):
    """The state variables of every seed generator (dropout, noise) of `layer` and its sublayers."""
    states = []
    for sublayer in layer._flatten_layers(include_self=True):
        for generator in getattr(sublayer, "_seed_generators", ()):
            states.append(generator.state)
    return states


def _block_rematerialized_call(layer):
    """`layer.rematerialized_call` for a block: the whole call under `tf.recompute_grad`."""

    def rematerialized_call(layer_call, *unused_args, **unused_kwargs):
        def call(*args, **kwargs):
            if not _could_record():
                return layer_call(*args, **kwargs)
            structure = (args, kwargs)
            flat = tf.nest.flatten(structure)
            positions = [i for i, value in enumerate(flat) if _is_float_tensor(value)]
            if not positions:
                return layer_call(*args, **kwargs)
            # What the forward pass runs under, replayed by the recomputation (which runs
            # in the backward pass, outside this layer's `__call__`).
            call_context = global_state.get_global_attribute("current_call_ctx")
            autocast = keras.src.backend.get_autocast_scope()
            states = _seed_states(layer)
            saved_states = [tf.identity(state.value) for state in states]

            def forward(*tensors):
                values = list(flat)
                for position, tensor in zip(positions, tensors):
                    values[position] = tensor
                call_args, call_kwargs = tf.nest.pack_sequence_as(structure, values)
                # Same dropout masks as the forward pass: rewind the seed generators.
                for state, saved in zip(states, saved_states):
                    state.assign(saved)
                entered_context = False
                if call_context is not None and global_state.get_global_attribute("current_call_ctx") is None:
                    global_state.set_global_attribute("current_call_ctx", call_context)
                    entered_context = True
                try:
                    scope = (
                        contextlib.nullcontext()
                        if autocast is None
                        else keras.src.backend.AutocastScope(autocast.dtype)
                    )
                    with scope:
                        return layer_call(*call_args, **call_kwargs)
                finally:
                    if entered_context:
                        global_state.set_global_attribute("current_call_ctx", None)

            return tf.recompute_grad(forward)(*[flat[i] for i in positions])

        return call

    return rematerialized_call
