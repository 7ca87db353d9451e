import math

import keras
from keras import ops

from mmkeras.config_fields import config_fields


class _MaxValue(keras.constraints.Constraint):
    """Clips a variable to at most `max_value` after each optimizer step."""

    def __init__(self, max_value):
        self.max_value = float(max_value)

    def __call__(self, w):
        return ops.minimum(w, ops.cast(self.max_value, w.dtype))

    def get_config(self):
        return {"max_value": self.max_value}


@keras.saving.register_keras_serializable(package="mmkeras")
class LogitScale(keras.layers.Layer):
    """Learnable temperature (and optional bias) of a contrastive loss.

    Holds a scalar `log_scale` variable, initialised to `log(init_scale)`, and
    returns `logit_scale = min(exp(log_scale), max_scale)`; with `init_bias` it
    also holds a scalar `bias` variable and returns it as `logit_bias`. The
    output is a dict that unpacks straight into the mmkeras contrastive losses:
    `ClipLoss()(image_embeddings, text_embeddings, **logit_scale_layer())`.

    - CLIP: `LogitScale()` (defaults: `init_scale=1/0.07`, `max_scale=100`).
    - SigLIP: `LogitScale(init_scale=10.0, max_scale=None, init_bias=-10.0)`
      (learnable log-temperature `log(10)` and bias `-10`).

    When `max_scale` is set, the variable itself is also clipped to
    `log(max_scale)` after each optimizer step (a weight constraint), so it
    cannot drift above the clamp where its gradient would vanish.

    The variables are float32 and the layer never autocasts them, so the scale
    and bias stay float32 under `mixed_bfloat16`. Inputs are optional and
    ignored: pass a tensor only to place the layer in a functional model.

    Args:
        init_scale: float > 0, initial value of `exp(log_scale)`.
        max_scale: float > 0 or `None`, the clamp on the returned scale (and
            on the variable); `None` disables clamping.
        init_bias: float or `None`, initial learnable bias (SigLIP); `None`
            means no bias variable and no `logit_bias` output.
        **kwargs: standard `keras.layers.Layer` arguments (`name`, `dtype`,
            `trainable`, ...). `trainable=False` gives a fixed temperature.

    Example:

    >>> layer = LogitScale()
    >>> round(float(layer()["logit_scale"]), 4)
    14.2857
    >>> siglip = LogitScale(init_scale=10.0, max_scale=None, init_bias=-10.0)
    >>> {k: round(float(v), 4) for k, v in siglip().items()}
    {'logit_scale': 10.0, 'logit_bias': -10.0}
    """

    def __init__(self, init_scale=1.0 / 0.07, max_scale=100.0, init_bias=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(init_scale, (int, float)) or not init_scale > 0:
            raise ValueError(f"`init_scale` must be a positive number, got {init_scale!r}.")
        if max_scale is not None and (not isinstance(max_scale, (int, float)) or not max_scale > 0):
            raise ValueError(f"`max_scale` must be a positive number or None, got {max_scale!r}.")
        if max_scale is not None and init_scale > max_scale:
            raise ValueError(
                f"`init_scale`={init_scale!r} must not exceed `max_scale`={max_scale!r}."
            )
        if init_bias is not None and not isinstance(init_bias, (int, float)):
            raise ValueError(f"`init_bias` must be a number or None, got {init_bias!r}.")
        self.init_scale = float(init_scale)
        self.max_scale = None if max_scale is None else float(max_scale)
        self.init_bias = None if init_bias is None else float(init_bias)

    def build(self, input_shape=None):
        self.log_scale = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(math.log(self.init_scale)),
            constraint=None if self.max_scale is None else _MaxValue(math.log(self.max_scale)),
            dtype="float32",
            autocast=False,
            name="log_scale",
        )
        self.bias = None
        if self.init_bias is not None:
            self.bias = self.add_weight(
                shape=(),
                initializer=keras.initializers.Constant(self.init_bias),
                dtype="float32",
                autocast=False,
                name="bias",
            )
        self.built = True

    def call(self, inputs=None):
        scale = ops.exp(ops.cast(self.log_scale, "float32"))
        if self.max_scale is not None:
            scale = ops.minimum(scale, self.max_scale)
        outputs = {"logit_scale": scale}
        if self.bias is not None:
            outputs["logit_bias"] = ops.cast(self.bias, "float32")
        return outputs

    def compute_output_spec(self, inputs=None):
        spec = {"logit_scale": keras.KerasTensor((), dtype="float32")}
        if self.init_bias is not None:
            spec["logit_bias"] = keras.KerasTensor((), dtype="float32")
        return spec

    def get_config(self):
        return {**super().get_config(), **config_fields(self, "init_scale max_scale init_bias")}
