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

    def rebuild(self, **changes):
        """A new tower of this class with some arguments changed and these weights.

        For changes that keep the weights' shapes, e.g. `pooled_only=False` to
        get the token sequence back from a tower a dual encoder trained, or
        another `dtype` policy.

        Args:
            **changes: constructor arguments to change.

        Returns:
            The new tower (this one is unchanged).

        Example:

        >>> from mmkeras.encoders import ViTEncoder
        >>> fast = ViTEncoder(image_size=32, patch_size=8, hidden_dim=16, num_layers=1,
        ...                   num_heads=2, mlp_dim=32, pooled_only=True)
        >>> sorted(fast.rebuild(pooled_only=False).output)
        ['pooled', 'sequence']
        """
        tower = self.__class__.from_config({**self.get_config(), **changes})
        tower.set_weights(self.get_weights())
        return tower
