"""SavedModel export with raw image-bytes / raw-string signatures."""

from mmkeras.export.captioner_export import export_captioner
from mmkeras.export.dual_encoder_export import export_dual_encoder
from mmkeras.export.encoder_export import export_encoder
from mmkeras.export.fusion_export import export_fusion_classifier
from mmkeras.export.serving_signatures import save_signatures

__all__ = ["export_captioner", "export_dual_encoder", "export_encoder", "export_fusion_classifier", "save_signatures"]
