"""mmkeras: a multimodal model zoo for TensorFlow and Keras 3.

Importing mmkeras selects the TensorFlow backend for Keras when the user has not
chosen one, because every model here trains under ``tf.distribute`` and exports
TensorFlow SavedModels.
"""

import os

if "KERAS_BACKEND" not in os.environ:
    os.environ["KERAS_BACKEND"] = "tensorflow"
elif os.environ["KERAS_BACKEND"] != "tensorflow":
    raise ImportError(
        "mmkeras needs the TensorFlow backend for Keras, but KERAS_BACKEND="
        f"{os.environ['KERAS_BACKEND']!r}. Unset it or set it to 'tensorflow'."
    )

__version__ = "0.1.0"

# Importing the sub-packages registers every layer, loss and model for `.keras` loading.
from mmkeras import data, encoders, export, layers, losses, metrics, models, preprocessing, training  # noqa: E402,F401
