import keras
from keras import ops

from mmkeras.layers.projection_head import ProjectionHead
from mmkeras.losses.clip_loss import ClipLoss
from mmkeras.losses.cross_replica import gather_global_batch
from mmkeras.losses.logit_scale import LogitScale
from mmkeras.losses.siglip_loss import SigLipLoss
from mmkeras.models.builder import builder_of
from mmkeras.models.saved_parts import from_config_with_parts
from mmkeras.models.compiled_state import restore_compiled_state
from mmkeras.models.locked_tower import call_tower
from mmkeras.preprocessing.multimodal_preprocessor import check_matches_towers

LOSSES = ("clip", "siglip")


@keras.saving.register_keras_serializable(package="mmkeras")
class DualEncoder(keras.Model):
    """Image–text dual encoder trained with a CLIP or SigLIP loss.

    `images -> image tower -> projection -> L2 norm` and `token_ids -> text tower
    -> projection -> L2 norm`, with a learnable logit scale (and bias for SigLIP)
    held by a `LogitScale` layer. The contrastive loss is computed in
    `compute_loss`, so plain `model.fit` on a dataset of
    `{"images", "token_ids"}` trains it, and under any `tf.distribute` strategy
    every replica contrasts its pairs against the embeddings of all replicas.

    Prefer the `dual_encoder(...)` builder; the class is public for
    `isinstance` checks and deserialisation.

    Args:
        image_encoder: an image tower (`{"sequence", "pooled"}` output).
        text_encoder: a text tower (`{"sequence", "pooled", "padding_mask"}`).
        embed_dim: int, width of the shared embedding space.
        loss: "clip" or "siglip".
        projection_hidden_dim: optional int, an MLP projection instead of linear.
        freeze_image_encoder: bool, LiT-style "locked image" training: the
            image tower is frozen (run in inference mode), the projections train.
        siglip_chunk_size: optional int, use the chunked SigLIP loss.
        gather_across_replicas: bool, negatives from all replicas.
        preprocessor: optional `MultimodalPreprocessor` (tokenizer and image
            converter) kept with the model and in its `.keras` file; serving
            exports (`mmkeras.export.export_model`) are built from it.
        dtype: optional dtype policy for the projection heads.
        **kwargs: `keras.Model` arguments such as `name`.

    Inputs: `{"images": [B, H, W, 3] float, "token_ids": [B, L] int32}`.
    Outputs: `{"image_embeddings": [B, E], "text_embeddings": [B, E]}` float32,
    unit norm.

    Example:

    >>> import numpy as np
    >>> from mmkeras.encoders import ViTEncoder, TextTransformerEncoder
    >>> image = ViTEncoder(image_size=32, patch_size=16, hidden_dim=16, num_layers=1,
    ...                    num_heads=2, mlp_dim=32)
    >>> text = TextTransformerEncoder(vocabulary_size=30, sequence_length=6, hidden_dim=16,
    ...                               num_layers=1, num_heads=2, mlp_dim=32)
    >>> model = dual_encoder(image, text, embed_dim=8, loss="siglip")
    >>> batch = {"images": np.zeros((4, 32, 32, 3), "float32"),
    ...          "token_ids": np.tile([[2, 5, 3, 0, 0, 0]], (4, 1)).astype("int32")}
    >>> out = model(batch)
    >>> out["image_embeddings"].shape, out["text_embeddings"].shape
    (TensorShape([4, 8]), TensorShape([4, 8]))
    >>> model.compile(optimizer="adam")
    >>> history = model.fit(batch, epochs=1, verbose=0)
    """

    def __init__(self, image_encoder, text_encoder, embed_dim=256, loss="clip", projection_hidden_dim=None,
                 freeze_image_encoder=False, siglip_chunk_size=None, gather_across_replicas=True,
                 preprocessor=None, dtype=None, **kwargs):
        if loss not in LOSSES:
            raise ValueError(f"`loss` must be one of {LOSSES}, got {loss!r}.")
        if int(embed_dim) < 1:
            raise ValueError(f"`embed_dim` must be a positive int, got {embed_dim!r}.")
        check_matches_towers(preprocessor, image_encoder, token_ids_length=text_encoder.inputs[0].shape[1])

        # === Layers ===
        image_projection = ProjectionHead(
            embed_dim, hidden_dim=projection_hidden_dim, dtype=dtype, name="image_projection"
        )
        text_projection = ProjectionHead(
            embed_dim, hidden_dim=projection_hidden_dim, dtype=dtype, name="text_projection"
        )
        if loss == "clip":
            logit_scale = LogitScale(name="logit_scale")
            contrastive_loss = ClipLoss(gather_across_replicas=gather_across_replicas)
        else:
            logit_scale = LogitScale(init_scale=10.0, max_scale=None, init_bias=-10.0, name="logit_scale")
            contrastive_loss = SigLipLoss(
                chunk_size=siglip_chunk_size, gather_across_replicas=gather_across_replicas
            )

        # === Functional Model ===
        images = keras.Input(image_encoder.inputs[0].shape[1:], name="images")
        token_ids = keras.Input(text_encoder.inputs[0].shape[1:], dtype="int32", name="token_ids")
        image_features = call_tower(image_encoder, images, freeze_image_encoder)
        text_features = text_encoder(token_ids)
        outputs = {
            "image_embeddings": image_projection(image_features["pooled"]),
            "text_embeddings": text_projection(text_features["pooled"]),
        }
        super().__init__(inputs={"images": images, "token_ids": token_ids}, outputs=outputs, **kwargs)

        # === Config ===
        self.image_encoder = image_encoder
        self.text_encoder = text_encoder
        self.preprocessor = preprocessor
        self.logit_scale = logit_scale
        self.logit_scale.build()
        self.contrastive_loss = contrastive_loss
        self.embed_dim = int(embed_dim)
        self.loss_name = loss
        self.projection_hidden_dim = projection_hidden_dim
        self.freeze_image_encoder = bool(freeze_image_encoder)
        self.siglip_chunk_size = siglip_chunk_size
        self.gather_across_replicas = bool(gather_across_replicas)
        self._dtype_arg = None if dtype is None else keras.dtype_policies.get(dtype).name
        # A cheap retrieval signal beside the loss: how often, within a replica's batch, an
        # image's most similar text is its own (train and validation logs: `batch_accuracy`).
        self.batch_accuracy = keras.metrics.Mean(name="batch_accuracy")

    # --- Sub-models -------------------------------------------------------
    @property
    def image_model(self):
        """`images -> image_embeddings` (L2-normalised), sharing weights; built once, so its predict
        function is traced once however often it is used."""
        return self._sub_model("image_model", "images", "image_embeddings")

    @property
    def text_model(self):
        """`token_ids -> text_embeddings` (L2-normalised), sharing weights; built once."""
        return self._sub_model("text_model", "token_ids", "text_embeddings")

    def _sub_model(self, name, input_name, output_name):
        # Kept in the instance dict, outside Keras' attribute tracking: not a layer of this model.
        sub_models = self.__dict__.setdefault("_mmkeras_sub_models", {})
        if name not in sub_models:
            sub_models[name] = keras.Model(self.input[input_name], self.output[output_name], name=name)
        return sub_models[name]

    def similarity(self, image_embeddings, text_embeddings):
        """Pairwise logits `[N_images, N_texts]` (scale * cosine, + bias for SigLIP)."""
        scale = self.logit_scale()
        logits = scale["logit_scale"] * ops.matmul(image_embeddings, ops.transpose(text_embeddings))
        return logits + scale.get("logit_bias", 0.0)

    # --- Training ---------------------------------------------------------
    def compile(self, optimizer="adamw", **kwargs):
        """`keras.Model.compile`; the contrastive loss is built in.

        Pass an optimizer (e.g. from `mmkeras.training.default_optimizer`, AdamW
        with warmup-cosine); a `loss` argument is rejected because the model
        computes its own.
        """
        if kwargs.get("loss") is not None:
            raise ValueError(
                "DualEncoder computes its own contrastive loss; choose it with "
                "`dual_encoder(..., loss='clip'|'siglip')`, not `compile(loss=...)`."
            )
        super().compile(optimizer=optimizer, **kwargs)

    def compile_from_config(self, config):
        restore_compiled_state(self, config)  # `compile` is overridden: Keras would skip it

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = self.contrastive_loss(
            y_pred["image_embeddings"], y_pred["text_embeddings"], **self.logit_scale()
        )
        for extra in self.losses:
            loss = loss + self._aggregate_additional_loss(extra)
        return loss

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        images = ops.cast(y_pred["image_embeddings"], "float32")
        # Each image against the texts the loss sees: the global batch (`gather_across_replicas`).
        (texts,), row_offset, _ = gather_global_batch(
            [ops.cast(y_pred["text_embeddings"], "float32")], gather=self.gather_across_replicas
        )
        best = ops.cast(ops.argmax(ops.matmul(images, ops.transpose(texts)), axis=1), "int32")
        own = row_offset + ops.arange(ops.shape(images)[0], dtype="int32")
        self.batch_accuracy.update_state(ops.cast(ops.equal(best, own), "float32"))
        return super().compute_metrics(x, y, y_pred, sample_weight)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "image_encoder": keras.saving.serialize_keras_object(self.image_encoder),
            "text_encoder": keras.saving.serialize_keras_object(self.text_encoder),
            "embed_dim": self.embed_dim,
            "loss": self.loss_name,
            "projection_hidden_dim": self.projection_hidden_dim,
            "freeze_image_encoder": self.freeze_image_encoder,
            "siglip_chunk_size": self.siglip_chunk_size,
            "gather_across_replicas": self.gather_across_replicas,
            "preprocessor": keras.saving.serialize_keras_object(self.preprocessor),
            "dtype": self._dtype_arg,
        }

    @classmethod
    def from_config(cls, config):
        return from_config_with_parts(cls, config)


@builder_of(DualEncoder)
def dual_encoder(*, name="dual_encoder", **arguments):
    """Builds an image–text dual encoder (CLIP or SigLIP).

    Any mmkeras tower works on either side: ViT or keras.applications CNNs,
    Transformer text towers, keras-hub towers from a local preset directory,
    TF-Hub SavedModels through `TFHubEncoder`.

    Args:
        image_encoder: an image tower.
        text_encoder: a text tower.
        embed_dim: int, width of the shared embedding space.
        loss: "clip" (softmax InfoNCE, learnable clamped scale) or "siglip"
            (sigmoid, learnable temperature and bias).
        projection_hidden_dim: optional int, MLP projection heads.
        freeze_image_encoder: bool, LiT-style locked image tower.
        siglip_chunk_size: optional int, chunked SigLIP loss.
        gather_across_replicas: bool, negatives from all replicas.
        preprocessor: optional `MultimodalPreprocessor` kept with the model.
        dtype: optional dtype policy for the heads (towers carry their own).
        name: model name.

    Returns:
        A `DualEncoder` (a functional `keras.Model`).

    Example:

    >>> from mmkeras.encoders import ViTEncoder, TextTransformerEncoder
    >>> model = dual_encoder(
    ...     ViTEncoder(image_size=32, patch_size=16, hidden_dim=16, num_layers=1, num_heads=2, mlp_dim=32),
    ...     TextTransformerEncoder(vocabulary_size=30, sequence_length=6, hidden_dim=16,
    ...                            num_layers=1, num_heads=2, mlp_dim=32),
    ...     embed_dim=8)
    >>> float(model.logit_scale()["logit_scale"]) > 14
    True
    """
    return DualEncoder(name=name, **arguments)
