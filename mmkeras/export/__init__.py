"""SavedModel export with raw image-bytes / raw-string signatures."""

from mmkeras.export.dual_encoder_export import export_dual_encoder
from mmkeras.export.encoder_export import export_encoder

__all__ = ["export_dual_encoder", "export_encoder"]
