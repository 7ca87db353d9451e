"""The Keras layer the checkpoint tokenizers build on: strings in, int32 ids out of one traced function on CPU."""

import keras

from mmkeras.preprocessing.subword_tokenizer import SubwordTokenizer


class TokenizerBase(keras.layers.Layer):
    """A tokenizer layer whose ids come from its engine's traced `tokenize`, as `SubwordTokenizer`'s do.

    A subclass checks its arguments, then calls `_ready(engine)` with an
    object whose `tokenize` maps `[N]` strings to `[N, sequence_length]`
    ids; calling the layer takes a string scalar, `[N]` or `[N, 1]`
    strings. Its config adds the subclass's own arguments (the ids are
    int32 whatever the dtype policy, so no dtype is saved).

    Args:
        **kwargs: Keras layer arguments (`name`, ...); a `dtype` is ignored.

    Example:

    ```python
    class SpaceTokenizer(TokenizerBase):
        def __init__(self, sequence_length=8, **kwargs):
            super().__init__(**kwargs)
            self.sequence_length = sequence_length
            self._ready(engine_of(self._tokenize_graph))
    ```
    """

    def __init__(self, **kwargs):
        kwargs.pop("dtype", None)  # the ids are int32 whatever the policy
        super().__init__(dtype="int32", **kwargs)

    def _ready(self, engine):
        self._engine = engine
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        self.built = True

    # Strings in ([N], [N, 1] or a scalar), ids out from the traced `_engine.tokenize` on CPU:
    # the same as `SubwordTokenizer`, which reads nothing else of its layer.
    call = SubwordTokenizer.call
    tokenize = SubwordTokenizer.tokenize
    compute_output_spec = SubwordTokenizer.compute_output_spec

    def get_config(self):
        config = super().get_config()
        config.pop("dtype", None)
        return config
