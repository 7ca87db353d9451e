import keras
from keras import ops

from mmkeras.validation import check_int

STEMS = ("linear", "conv")


@keras.saving.register_keras_serializable(package="mmkeras")
class PatchEmbedding(keras.layers.Layer):
    """Splits images into patches, embeds them and adds learned positions.

    The image is cut into non-overlapping `patch_size` x `patch_size` patches by
    a strided convolution. An optional learned class token is prepended, and a
    learned position embedding (one row per patch, plus the class token) is added.

    With `stem="conv"` the patches come from a small convolutional stem instead:
    per factor 2 of `patch_size`, one 3x3 stride-2 convolution (He-normal
    initialised), a LayerNormalization over its channels and a GELU, widening
    to `hidden_dim`; then a 1x1 projection and a LayerNormalization of each
    token, before the positions are added. The token grid is the same; early
    convolutions make a ViT trained from scratch learn local shape and colour
    much sooner (Xiao et al., 2021, "Early Convolutions Help Transformers See
    Better", whose stem normalises every convolution too). The normalisations
    matter: without them a glorot-initialised stem shrinks its signal about
    2.5x per convolution, so at the start the tokens say mostly where they are
    (the positions) rather than what they see, and a Shapes tower learned
    shapes far more slowly.

    Args:
        patch_size: int, side of a square patch in pixels. The image side must
            be divisible by it.
        hidden_dim: int, width of each patch embedding.
        use_class_token: bool, prepend a learned `[CLS]` token.
        stem: "linear" (one strided patch projection) or "conv" (a
            convolutional stem; `patch_size` must then be a power of 2).
        kernel_initializer: initializer of the patch projection (the conv
            stem's 3x3 convolutions are always He-normal: GELU follows them).
        position_initializer: initializer of the learned position embedding
            (default: normal, stddev 0.02). Its scale against the patch
            projection's output decides how strongly a token says *where* it
            is at the start of training; see `ViTEncoder`'s `position_stddev`.
        **kwargs: standard `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Example:

    >>> import numpy as np
    >>> layer = PatchEmbedding(patch_size=16, hidden_dim=32)
    >>> layer(np.zeros((2, 64, 64, 3), "float32")).shape
    TensorShape([2, 17, 32])
    >>> PatchEmbedding(patch_size=8, hidden_dim=32, stem="conv")(np.zeros((2, 64, 64, 3), "float32")).shape
    TensorShape([2, 65, 32])
    """

    def __init__(self, patch_size, hidden_dim, use_class_token=True, kernel_initializer="glorot_uniform",
                 stem="linear", position_initializer=None, **kwargs):
        super().__init__(**kwargs)
        patch_size = check_int("patch_size", patch_size, minimum=1)
        hidden_dim = check_int("hidden_dim", hidden_dim, minimum=1)
        self.patch_size = int(patch_size)
        self.hidden_dim = int(hidden_dim)
        self.use_class_token = bool(use_class_token)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.position_initializer = keras.initializers.get(
            position_initializer or keras.initializers.RandomNormal(stddev=0.02)
        )
        if stem not in STEMS:
            raise ValueError(f"`stem` must be one of {STEMS}, got {stem!r}.")
        if stem == "conv" and self.patch_size & (self.patch_size - 1):
            raise ValueError(f"`stem`='conv' needs a power-of-2 `patch_size`, got {patch_size!r}.")
        self.stem = stem

        # === Layers ===
        self.stem_layers = []
        self.token_norm = None
        if stem == "conv":
            depth = self.patch_size.bit_length() - 1
            for i in range(depth):
                width = max(8, self.hidden_dim >> (depth - 1 - i))
                self.stem_layers += [
                    keras.layers.Conv2D(
                        width, 3, strides=2, padding="same", kernel_initializer="he_normal",
                        dtype=self.dtype_policy, name=f"stem_{i}",
                    ),
                    keras.layers.LayerNormalization(epsilon=1e-6, dtype=self.dtype_policy, name=f"stem_{i}_norm"),
                    keras.layers.Activation("gelu", dtype=self.dtype_policy, name=f"stem_{i}_gelu"),
                ]
            self.token_norm = keras.layers.LayerNormalization(
                epsilon=1e-6, dtype=self.dtype_policy, name="token_norm"
            )
        size = 1 if stem == "conv" else self.patch_size
        self.projection = keras.layers.Conv2D(
            self.hidden_dim, kernel_size=size, strides=size, padding="valid", name="projection",
            kernel_initializer=self.kernel_initializer, dtype=self.dtype_policy,
        )

    def build(self, input_shape):
        height, width = input_shape[1], input_shape[2]
        if height is None or width is None:
            raise ValueError(
                f"PatchEmbedding needs a static image size, got input shape {tuple(input_shape)}."
            )
        if height % self.patch_size or width % self.patch_size:
            raise ValueError(
                f"Image size {height}x{width} is not divisible by `patch_size`={self.patch_size}."
            )
        shape = tuple(input_shape)
        for layer in self.stem_layers:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.projection.build(shape)
        if self.token_norm is not None:
            self.token_norm.build(self.projection.compute_output_shape(shape))
        self.num_patches = (height // self.patch_size) * (width // self.patch_size)
        if self.use_class_token:
            self.class_token = self.add_weight(
                shape=(1, 1, self.hidden_dim), initializer="zeros", name="class_token"
            )
        self.position_embedding = self.add_weight(
            shape=(1, self.num_patches + int(self.use_class_token), self.hidden_dim),
            initializer=self.position_initializer,
            name="position_embedding",
        )

    def call(self, images):
        x = images
        for layer in self.stem_layers:
            x = layer(x)
        x = self.projection(x)
        if self.token_norm is not None:
            x = self.token_norm(x)
        batch = ops.shape(x)[0]
        x = ops.reshape(x, (batch, self.num_patches, self.hidden_dim))
        if self.use_class_token:
            cls = ops.broadcast_to(ops.cast(self.class_token, x.dtype), (batch, 1, self.hidden_dim))
            x = ops.concatenate([cls, x], axis=1)
        return x + ops.cast(self.position_embedding, x.dtype)

    def compute_output_shape(self, input_shape):
        patches = (input_shape[1] // self.patch_size) * (input_shape[2] // self.patch_size)
        return (input_shape[0], patches + int(self.use_class_token), self.hidden_dim)

    # === Config ===
    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "patch_size": self.patch_size,
                "hidden_dim": self.hidden_dim,
                "use_class_token": self.use_class_token,
                "stem": self.stem,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "position_initializer": keras.initializers.serialize(self.position_initializer),
            }
        )
        return config
