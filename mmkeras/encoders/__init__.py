"""Image and text towers. Each returns `{"sequence", "pooled"}` (+ `"padding_mask"` for text)."""

from mmkeras.encoders.cnn_encoder import CNNEncoder
from mmkeras.encoders.encoder import Encoder
from mmkeras.encoders.keras_hub_encoder import KerasHubEncoder
from mmkeras.encoders.text_transformer_encoder import TextTransformerEncoder
from mmkeras.encoders.tf_hub_encoder import TFHubEncoder
from mmkeras.encoders.tf_hub_layer import TFHubLayer, allow_saved_models
from mmkeras.encoders.vit_encoder import ViTEncoder

__all__ = [
    "CNNEncoder",
    "Encoder",
    "KerasHubEncoder",
    "TFHubEncoder",
    "TFHubLayer",
    "TextTransformerEncoder",
    "ViTEncoder",
    "allow_saved_models",
]
