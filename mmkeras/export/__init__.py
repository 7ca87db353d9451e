"""SavedModel export with raw image-bytes / raw-string signatures."""

from mmkeras.export.encoder_export import export_encoder
from mmkeras.export.export_model import export_model
from mmkeras.export.serving_signatures import save_signatures

__all__ = ["export_encoder", "export_model", "save_signatures"]
