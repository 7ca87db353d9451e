"""SavedModel export with raw image-bytes / raw-string signatures."""
