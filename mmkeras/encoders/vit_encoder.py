import keras
from keras import ops

from mmkeras.encoders.encoder import Encoder
from mmkeras.layers.attention_pooling import AttentionPooling
from mmkeras.layers.patch_embedding import PatchEmbedding
from mmkeras.layers.transformer_encoder_block import TransformerEncoderBlock

VIT_SIZES = {
    "tiny": {"hidden_dim": 192, "num_layers": 12, "num_heads": 3, "mlp_dim": 768},
    "small": {"hidden_dim": 384, "num_layers": 12, "num_heads": 6, "mlp_dim": 1536},
    "base": {"hidden_dim": 768, "num_layers": 12, "num_heads": 12, "mlp_dim": 3072},
}
POOLINGS = ("cls", "mean", "attention", "flatten")


@keras.saving.register_keras_serializable(package="mmkeras")
class ViTEncoder(Encoder):
    """Vision Transformer image tower.

    Patches -> pre-norm Transformer encoder blocks -> final layer norm. Returns
    the token sequence and a pooled vector (class token, mean, attention
    pooling, or every patch token side by side), following the mmkeras encoder
    convention.

    Args:
        image_size: int, side of the (square) input image.
        patch_size: int, side of a patch.
        hidden_dim: int, token width.
        num_layers: int, number of encoder blocks; 0 gives the (conv) stem's
            tokens with their positions, layer-normed, each token seeing only its
            own patch's neighbourhood.
        num_heads: int, attention heads per block.
        mlp_dim: int, MLP width per block.
        pooling: "cls", "mean", "attention" or "flatten". "flatten" keeps
            every patch token in its place: the pooled vector is the tokens
            concatenated in patch order (`[B, T * hidden_dim]`, no class
            token), so a model that reads only pooled vectors (a concat or
            bilinear fusion) can still tell where things are, as a CNN's
            flattened feature map does; the pooled width then grows with
            the number of patches.
        dropout: float, dropout rate in the blocks.
        stem: "linear" patch projection or "conv" stem (see `PatchEmbedding`;
            normalised convolutions, learns much faster from scratch on
            small data).
        position_stddev: float, standard deviation of the learned position
            embedding at initialisation. The usual 0.02 is about a
            fifteenth of what a small linear patch projection outputs and a
            fiftieth of the conv stem's unit-scale tokens, so a tower
            trained from scratch starts out barely saying where its tokens
            are. In a Shapes probe, attention reading "what is in each cell"
            from the tokens only began to localise at 1.0; the Shapes
            captioner, its tower pretrained on what each cell holds, names
            objects at their places with 1.0 and at the wrong places with
            0.02 (see the shapes-captioner-tiny model card).
        pre_norm: bool, a LayerNormalization of the tokens (class token and
            positions included) before the first block, as CLIP's image
            tower has (`pre_layrnorm` in Hugging Face checkpoints).
        layer_norm_epsilon: float, epsilon of every layer norm of the blocks,
            the pre-norm and the final norm (1e-5 in CLIP checkpoints).
        activation: MLP activation of the blocks: "gelu" (tanh
            approximation), "gelu_exact", "quick_gelu" (`x * sigmoid(1.702
            x)`, OpenAI CLIP) or any Keras activation name.
        pooled_only: bool, output only `{"pooled"}`. With "cls" pooling the
            last block then runs its query, attention output and MLP for the
            class token alone (same weights and same pooled vector, about a
            fifth less work for a 4-block tower); dual encoders need nothing
            else. Weights load across both settings.
        dtype: optional dtype policy for every layer, e.g. "mixed_bfloat16".
        **kwargs: `keras.Model` arguments such as `name`.

    Inputs: `images` float `[B, image_size, image_size, 3]` (normalised, e.g. by
    `mmkeras.preprocessing.ImagePreprocessor`).

    Outputs: `{"sequence": [B, T, hidden_dim], "pooled": [B, hidden_dim]}`
    (`pooled` is `[B, T * hidden_dim]` with "flatten"; `{"pooled"}` alone
    with `pooled_only=True`).

    Example:

    >>> import numpy as np
    >>> vit = ViTEncoder(image_size=32, patch_size=8, hidden_dim=16, num_layers=1,
    ...                  num_heads=2, mlp_dim=32)
    >>> out = vit(np.zeros((2, 32, 32, 3), "float32"))
    >>> out["sequence"].shape, out["pooled"].shape
    (TensorShape([2, 17, 16]), TensorShape([2, 16]))
    >>> ViTEncoder.from_size("tiny", image_size=64).output_dim
    192
    """

    def __init__(self, image_size=224, patch_size=16, hidden_dim=768, num_layers=12, num_heads=12,
                 mlp_dim=3072, pooling="cls", dropout=0.0, stem="linear", position_stddev=0.02,
                 pre_norm=False, layer_norm_epsilon=1e-6, activation="gelu", pooled_only=False, dtype=None,
                 **kwargs):
        if pooling not in POOLINGS:
            raise ValueError(f"`pooling` must be one of {POOLINGS}, got {pooling!r}.")
        if int(num_layers) < 0:
            raise ValueError(f"`num_layers` must be >= 0, got {num_layers!r}.")
        if int(num_layers) == 0 and pooled_only and pooling == "cls":
            raise ValueError(
                "`num_layers`=0 with `pooling`='cls' and `pooled_only`: the class token would never see the "
                "patches. Use at least one block, or `pooling`='mean' / 'attention'."
            )
        if not float(position_stddev) > 0.0:
            raise ValueError(f"`position_stddev` must be > 0, got {position_stddev!r}.")

        # === Layers ===
        patch_embedding = PatchEmbedding(
            patch_size, hidden_dim, use_class_token=pooling == "cls", stem=stem,
            position_initializer=keras.initializers.RandomNormal(stddev=float(position_stddev)),
            dtype=dtype, name="patches",
        )
        epsilon = float(layer_norm_epsilon)
        blocks = [
            TransformerEncoderBlock(
                num_heads, mlp_dim, dropout=dropout, activation=activation, layer_norm_epsilon=epsilon,
                dtype=dtype, name=f"block_{i}",
            )
            for i in range(num_layers)
        ]
        first_norm = (
            keras.layers.LayerNormalization(epsilon=epsilon, dtype=dtype, name="pre_norm") if pre_norm else None
        )
        final_norm = keras.layers.LayerNormalization(epsilon=epsilon, dtype=dtype, name="final_norm")
        pool = AttentionPooling(num_heads, dtype=dtype, name="pool") if pooling == "attention" else None

        # === Functional Model ===
        images = keras.Input((image_size, image_size, 3), name="images")
        x = patch_embedding(images)
        if first_norm is not None:
            x = first_norm(x)
        one_token = pooled_only and pooling == "cls"
        for block in blocks[:-1] if one_token else blocks:
            x = block(x)
        if one_token:  # the class token's output is all the pooled vector needs
            x = blocks[-1](x, query_positions=ops.zeros_like(x[:, 0, 0], dtype="int32"))
        sequence = final_norm(x)
        if pooling == "cls":
            pooled = sequence[:, 0]
        elif pooling == "mean":
            pooled = ops.mean(sequence, axis=1)
        elif pooling == "flatten":
            pooled = ops.reshape(sequence, (-1, sequence.shape[1] * sequence.shape[2]))
        else:
            pooled = pool(sequence)
        outputs = {"pooled": pooled} if pooled_only else {"sequence": sequence, "pooled": pooled}
        super().__init__(inputs=images, outputs=outputs, **kwargs)

        # === Config ===
        self._set_config(
            output_dim=pooled.shape[-1],
            image_size=int(image_size),
            patch_size=int(patch_size),
            hidden_dim=int(hidden_dim),
            num_layers=int(num_layers),
            num_heads=int(num_heads),
            mlp_dim=int(mlp_dim),
            pooling=pooling,
            dropout=float(dropout),
            stem=stem,
            position_stddev=float(position_stddev),
            pre_norm=bool(pre_norm),
            layer_norm_epsilon=epsilon,
            activation=activation,
            pooled_only=bool(pooled_only),
            dtype=dtype,
        )

    @classmethod
    def from_size(cls, size, image_size=224, patch_size=16, **kwargs):
        """Builds a standard size: "tiny", "small" or "base"."""
        if size not in VIT_SIZES:
            raise ValueError(f"Unknown ViT size {size!r}; valid sizes: {sorted(VIT_SIZES)}.")
        return cls(image_size=image_size, patch_size=patch_size, **{**VIT_SIZES[size], **kwargs})
