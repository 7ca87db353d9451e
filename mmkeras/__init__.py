"""mmkeras: a multimodal model zoo for TensorFlow and Keras 3.

Importing mmkeras selects the TensorFlow backend for Keras when the user has not
chosen one, because every model here trains under ``tf.distribute`` and exports
TensorFlow SavedModels.

The sub-packages load on first use (``mmkeras.layers``), so that the command line's
``--help``, ``list`` and ``info`` answer without loading TensorFlow. The first use of
any of them loads them all, which registers every layer, loss and model for `.keras`
loading; so does ``import mmkeras`` when Keras is already imported.
"""

import importlib
import os
import sys

if "KERAS_BACKEND" not in os.environ:
    os.environ["KERAS_BACKEND"] = "tensorflow"
elif os.environ["KERAS_BACKEND"] != "tensorflow":
    raise ImportError(
        "mmkeras needs the TensorFlow backend for Keras, but KERAS_BACKEND="
        f"{os.environ['KERAS_BACKEND']!r}. Unset it or set it to 'tensorflow'."
    )

__version__ = "0.1.0"

__all__ = ["data", "encoders", "export", "layers", "losses", "metrics", "models", "preprocessing", "training"]


def _import_subpackages():
    for name in __all__:
        importlib.import_module(f"{__name__}.{name}")


def __getattr__(name):
    """Imports a sub-package or module on first use: `mmkeras.layers`, `mmkeras.zoo`."""
    if name in __all__:
        _import_subpackages()
        return globals()[name]
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as error:
        if error.name != f"{__name__}.{name}":
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def __dir__():
    return sorted(set(globals()) | set(__all__))


if "keras" in sys.modules:  # Keras is loaded already, so registering the classes costs little.
    _import_subpackages()
