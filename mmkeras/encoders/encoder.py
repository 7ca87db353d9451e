import keras


class Encoder(keras.Model):
    """Base class of mmkeras towers: a functional model with a dict output.

    Subclasses build their graph in `__init__`, call `super().__init__(inputs,
    outputs, ...)` and then `self._set_config(...)` with their constructor
    arguments; `get_config`/`from_config` then round-trip by re-running the
    constructor, and `output_dim` is the width of `pooled`.

    Image towers map `images [B, H, W, 3]` to `{"sequence", "pooled"}`; text
    towers map `token_ids [B, L]` to `{"sequence", "pooled", "padding_mask"}`.

    Example:

    >>> import keras
    >>> class Tiny(Encoder):
    ...     def __init__(self, width=4, dtype=None, **kwargs):
    ...         x = keras.Input((3,))
    ...         h = keras.layers.Dense(width, dtype=dtype)(x)
    ...         super().__init__(inputs=x, outputs={"sequence": h[:, None], "pooled": h}, **kwargs)
    ...         self._set_config(output_dim=width, width=width, dtype=dtype)
    >>> Tiny.from_config(Tiny(width=5).get_config()).output_dim
    5
    """

    def _set_config(self, output_dim, dtype=None, **config):
        self.output_dim = int(output_dim)
        self._encoder_config = dict(config)
        self._encoder_config["dtype"] = None if dtype is None else keras.dtype_policies.get(dtype).name

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, **self._encoder_config}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
