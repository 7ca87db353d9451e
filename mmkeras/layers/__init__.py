"""Shared building blocks used by every mmkeras model family."""

from keras_hub.layers import PositionEmbedding, TokenAndPositionEmbedding

from mmkeras.layers import fusions
from mmkeras.layers.attention_pooling import AttentionPooling
from mmkeras.layers.modality_type_embedding import ModalityTypeEmbedding
from mmkeras.layers.patch_embedding import PatchEmbedding
from mmkeras.layers.projection_head import ProjectionHead
from mmkeras.layers.repeat_to_batch import RepeatToBatch
from mmkeras.layers.transformer_decoder_block import TransformerDecoderBlock
from mmkeras.layers.transformer_encoder_block import TransformerEncoderBlock

__all__ = [
    "AttentionPooling",
    "ModalityTypeEmbedding",
    "PatchEmbedding",
    "PositionEmbedding",
    "ProjectionHead",
    "RepeatToBatch",
    "TokenAndPositionEmbedding",
    "TransformerDecoderBlock",
    "TransformerEncoderBlock",
    "fusions",
]
