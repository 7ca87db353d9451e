import keras
from keras import ops


@keras.saving.register_keras_serializable(package="mmkeras")
class ModalityDropout(keras.layers.Layer):
    """Drops whole modalities per example during training by editing presence masks.

    In training, each modality present in an example is dropped (its presence
    set to 0) with probability `rate`, independently. If that would drop every
    modality the example had, one of them, chosen uniformly at random, is kept,
    so an example never loses all its inputs (an example that had none present
    stays so). At inference it is the identity. Feed its output as the
    `presence` of a fusion layer.

    Args:
        rate: float in `[0, 1]`, the drop probability of every modality, or a
            dict `{modality: rate}`; modalities not in the dict are never
            dropped.
        seed: optional int seed.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        presence: dict `{modality: [B] mask}` (float or bool, 1 = present).
        training: bool; dropping happens only when True.

    Returns:
        A dict with the same keys, each `[B]` in the dtype it came in
        (bool stays bool, numbers become 0/1 of their dtype).

    Example:

    >>> import numpy as np
    >>> drop = ModalityDropout(rate=0.5, seed=1)
    >>> presence = {"image": np.ones((4,), "float32"), "text": np.ones((4,), "float32")}
    >>> out = drop(presence, training=True)
    >>> bool(np.all(np.asarray(out["image"]) + np.asarray(out["text"]) >= 1))
    True
    >>> bool(np.all(np.asarray(drop(presence)["image"]) == 1))
    True
    """

    def __init__(self, rate=0.1, seed=None, **kwargs):
        super().__init__(**kwargs)
        rates = rate if isinstance(rate, dict) else {None: rate}
        for name, value in rates.items():
            if not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
                what = "`rate`" if name is None else f"`rate[{name!r}]`"
                raise ValueError(f"{what} must be a float in [0, 1], got {value!r}.")
        self.rate = (
            {k: float(v) for k, v in rate.items()} if isinstance(rate, dict) else float(rate)
        )
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _rate_of(self, name):
        if isinstance(self.rate, dict):
            return self.rate.get(name, 0.0)
        return self.rate

    def call(self, presence, training=None):
        if not isinstance(presence, dict) or not presence:
            raise ValueError(
                f"`presence` must be a non-empty dict {{modality: [B] mask}}, got {presence!r}."
            )
        if isinstance(self.rate, dict):
            unknown = [k for k in self.rate if k not in presence]
            if unknown:
                raise ValueError(
                    f"`rate` names modalities {unknown} that are not in `presence` "
                    f"({list(presence)})."
                )
        names = list(presence)
        for name in names:
            if len(presence[name].shape) != 1:
                raise ValueError(
                    f"`presence[{name!r}]` must be a [B] mask, got shape {presence[name].shape}."
                )
        if not training:
            return dict(presence)
        present = ops.stack(
            [
                (
                    presence[n]
                    if _is_bool(presence[n])
                    else ops.greater(ops.cast(presence[n], "float32"), 0.5)
                )
                for n in names
            ],
            axis=1,
        )  # [B, M] bool
        shape = ops.shape(present)
        rates = ops.convert_to_tensor([self._rate_of(n) for n in names], "float32")
        drop = ops.less(keras.random.uniform(shape, seed=self.seed_generator), rates[None, :])
        keep = ops.logical_and(present, ops.logical_not(drop))
        # Rescue one modality, chosen at random among the present ones, where all were dropped.
        scores = ops.where(present, keras.random.uniform(shape, seed=self.seed_generator), -1.0)
        rescue = ops.cast(ops.one_hot(ops.argmax(scores, axis=1), len(names)), "bool")
        rescue = ops.logical_and(rescue, present)
        lost_all = ops.logical_not(ops.any(keep, axis=1, keepdims=True))
        keep = ops.where(lost_all, rescue, keep)
        outputs = {}
        for i, name in enumerate(names):
            value = presence[name]
            outputs[name] = keep[:, i] if _is_bool(value) else ops.cast(keep[:, i], value.dtype)
        return outputs

    def compute_output_spec(self, presence, training=None):
        return {
            name: keras.KerasTensor(value.shape, dtype=value.dtype)
            for name, value in presence.items()
        }

    # === Config ===
    def get_config(self):
        config = super().get_config()
        config.update({"rate": self.rate, "seed": self.seed})
        return config


def _is_bool(x):
    return keras.backend.standardize_dtype(x.dtype) == "bool"
