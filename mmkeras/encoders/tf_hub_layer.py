"""A Keras 3 layer around a TF2 SavedModel / TF-Hub handle.

`hub.KerasLayer` is a Keras 2 (`tf.keras`) layer and fails inside Keras 3
functional models (tensorflow/hub #903). This layer loads the handle with
`hub.load` and is a plain Keras 3 layer: the SavedModel's `tf.Variable`s are
exposed as Keras weights that *share* the underlying TensorFlow variables, so
optimizers, `.keras` files, `tf.distribute` and `tf.saved_model.save` all see
them.

Loading a `.keras` file never loads a SavedModel the caller did not name: in
Keras' safe mode (the default of `keras.saving.load_model`) a stored handle is
refused unless `allow_saved_models` names it (see `check_stored_handle`).
"""

import contextlib
import contextvars
import inspect
import os

import keras
import tensorflow as tf


_ALLOWED_HANDLES = contextvars.ContextVar("mmkeras_allowed_saved_models", default=frozenset())


def _is_local(handle):
    return "://" not in handle and os.path.isdir(handle)


def _normalized(handle):
    handle = os.fspath(handle)
    return os.path.realpath(handle) if _is_local(handle) else handle


@contextlib.contextmanager
def allow_saved_models(handles):
    """Lets `keras.saving.load_model` load the `TFHubLayer` / `TFHubEncoder` handles named here.

    A `.keras` file stores the handle of each hub layer, and loading the file
    loads that SavedModel, whose graph then runs on `predict`. In Keras' safe
    mode (the default) `load_model` refuses every stored handle except those
    allowed by this context manager (local directories are compared by their
    real path; URLs and hub handles exactly). `load_model(..., safe_mode=False)`
    or `keras.config.enable_unsafe_deserialization()` trust the whole file.

    Args:
        handles: a handle or a list of handles (local SavedModel directories,
            or URLs the caller accepts to fetch).

    Example:

    ```python
    with mmkeras.encoders.allow_saved_models(["/models/image_tower"]):
        model = keras.saving.load_model("model.keras")
    ```
    """
    if isinstance(handles, (str, os.PathLike)):
        handles = [handles]
    token = _ALLOWED_HANDLES.set(_ALLOWED_HANDLES.get() | {_normalized(h) for h in handles})
    try:
        yield
    finally:
        _ALLOWED_HANDLES.reset(token)


def check_stored_handle(handle):
    """Raises `ValueError` when Keras deserializes in safe mode and `handle` was not allowed.

    Outside `keras.saving.load_model` (a layer built in code, `from_config` of
    a config in hand) and with safe mode off every handle is allowed.

    Args:
        handle: the handle a config asks to load.

    Example:

    >>> check_stored_handle("http://127.0.0.1:9/model")  # Not deserializing: allowed.
    """
    from keras.src.saving import serialization_lib  # Keras has no public `in_safe_mode`.

    if not serialization_lib.in_safe_mode() or not isinstance(handle, (str, os.PathLike)):
        return
    handle = os.fspath(handle)
    if _normalized(handle) in _ALLOWED_HANDLES.get():
        return
    why = (
        "it is a local SavedModel not allowed by the caller (its graph would run)"
        if _is_local(handle)
        else "it is not a local path (loading would fetch it)"
    )
    raise ValueError(
        f"The Keras file asks to load the SavedModel `handle`={handle!r}, refused in safe mode: {why}. "
        f"To load it, wrap the call in `mmkeras.encoders.allow_saved_models([{handle!r}])`, or, for a file "
        "you trust, pass `safe_mode=False` or call `keras.config.enable_unsafe_deserialization()`."
    )


def _object_graph_variables(root):
    """Lists `(path, tf.Variable)` reachable from `root`, breadth first.

    Paths are object-graph attribute paths ("encoder/layer_0/kernel"), which
    are stable across loads of the same SavedModel; each variable appears once,
    under its shortest path.
    """
    found, seen_objects, seen_vars = [], {id(root)}, set()
    queue = [("", root)]
    while queue:
        prefix, obj = queue.pop(0)
        try:
            children = tf.train.TrackableView.children(obj)
        except Exception:  # Not every trackable lists children (e.g. resources).
            continue
        for name, child in children.items():
            if name == "signatures" or name.startswith("_"):
                continue
            path = f"{prefix}/{name}" if prefix else name
            if isinstance(child, tf.Variable):
                if id(child) not in seen_vars:
                    seen_vars.add(id(child))
                    found.append((path, child))
            elif id(child) not in seen_objects:
                seen_objects.add(id(child))
                queue.append((path, child))
    return found


def _weight_name(variable_name):
    """A Keras-legal variable name (no "/" or ":0") from a TF variable name."""
    return variable_name.split(":")[0].replace("/", "_") or "variable"


@keras.saving.register_keras_serializable(package="mmkeras")
class TFHubLayer(keras.layers.Layer):
    """Wraps a TF2 SavedModel (a TF-Hub handle or a local directory) as a Keras 3 layer.

    The handle is loaded with `hub.load`, so it may be a local SavedModel
    directory, a `gs://` path or a tfhub.dev / Kaggle URL (network permitting).
    `keras.saving.load_model` loads the stored handle only when the caller
    allows it (`allow_saved_models`, or safe mode off).
    The layer calls either the object's `__call__` (the TF2 "reusable SavedModel"
    API) or one of its `signatures`.

    Every `tf.Variable` of the SavedModel becomes a Keras weight sharing the same
    storage: with `trainable=True` they are in `trainable_weights`, `model.fit`
    updates them, and a `.keras` file stores their fine-tuned values (the handle
    itself is re-loaded from `handle` when the file is opened, so it must still
    exist there). Variables the SavedModel marks non-trainable (or that are not
    floating point) stay non-trainable.

    Construct the layer inside `strategy.scope()` to train under a
    `tf.distribute` strategy: the SavedModel's variables are then created as
    distributed variables.

    Inputs are cast to the dtypes of the SavedModel's input signature (so the
    layer runs under `mixed_bfloat16` with a float32 SavedModel), and floating
    outputs are cast to the layer's compute dtype. The computation inside the
    SavedModel keeps its own dtype. The layer XLA-compiles when the SavedModel's
    ops are XLA-compatible.

    Args:
        handle: str or path, the SavedModel directory or hub handle.
        trainable: bool, whether the SavedModel's variables are fine-tuned.
            When the callable takes a `training` argument it receives
            `training and trainable` (so a frozen model keeps, e.g., its batch
            norm statistics).
        signature: optional str, name of a signature to call instead of
            `__call__` (e.g. "serving_default"). Signatures take keyword inputs:
            pass a dict, or a single tensor when the signature has one input.
        signature_outputs_as_dict: bool, with `signature`, return the whole
            output dict. Without it, the signature's single output or the
            `output_key` entry is returned.
        output_key: optional str, the entry to return when the callable returns
            a dict.
        arguments: optional dict of extra keyword arguments for the callable
            (Python values, stored in the config).
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`).

    Example:

    >>> import tempfile, numpy as np, tensorflow as tf, keras
    >>> class Affine(tf.Module):
    ...     def __init__(self):
    ...         self.kernel = tf.Variable(tf.ones((4, 2)))
    ...     @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
    ...     def __call__(self, x):
    ...         return tf.matmul(x, self.kernel)
    >>> path = tempfile.mkdtemp()
    >>> tf.saved_model.save(Affine(), path)
    >>> inputs = keras.Input((4,))
    >>> model = keras.Model(inputs, TFHubLayer(path, trainable=True)(inputs))
    >>> model(np.ones((3, 4), "float32")).shape
    TensorShape([3, 2])
    >>> len(model.trainable_weights)
    1
    """

    def __init__(self, handle, trainable=False, signature=None, signature_outputs_as_dict=False,
                 output_key=None, arguments=None, **kwargs):
        if isinstance(handle, os.PathLike):
            handle = os.fspath(handle)
        if not isinstance(handle, str) or not handle:
            raise ValueError(f"`handle` must be a non-empty string or path, got {handle!r}.")
        if signature is not None and not isinstance(signature, str):
            raise ValueError(f"`signature` must be a string or None, got {signature!r}.")
        if signature_outputs_as_dict and signature is None:
            raise ValueError("`signature_outputs_as_dict=True` needs a `signature`.")
        if signature_outputs_as_dict and output_key is not None:
            raise ValueError("Pass either `output_key` or `signature_outputs_as_dict=True`, not both.")
        if output_key is not None and not isinstance(output_key, str):
            raise ValueError(f"`output_key` must be a string or None, got {output_key!r}.")
        if arguments is not None and not isinstance(arguments, dict):
            raise ValueError(f"`arguments` must be a dict or None, got {type(arguments).__name__}.")
        super().__init__(trainable=trainable, **kwargs)
        self.handle = handle
        self.signature = signature
        self.signature_outputs_as_dict = bool(signature_outputs_as_dict)
        self.output_key = output_key
        self.arguments = dict(arguments or {})

        # === Loaded SavedModel ===
        # Attribute tracking makes the loaded object a TF dependency of the
        # layer, so `tf.saved_model.save` of an enclosing model keeps its
        # resources (tables, assets) alive.
        import tensorflow_hub as hub  # here, not at import: it adds a second to `import mmkeras`

        check_stored_handle(handle)
        try:
            self._hub_module = hub.load(handle)
        except Exception as error:  # hub/TF raise OSError, ValueError, NotFoundError...
            raise ValueError(f"`handle`={handle!r} could not be loaded as a SavedModel: {error}") from error
        self._callable, self._input_spec_structure, self._has_training_arg = self._select_callable()
        self._check_output_key()

        # === Weights ===
        trainable_ids = None
        if hasattr(self._hub_module, "trainable_variables"):
            trainable_ids = {id(v) for v in self._hub_module.trainable_variables}
        hub_weights, weight_keys = [], []
        with keras.name_scope(self.name, caller=self):
            for path, variable in self._hub_variables():
                is_trainable = (
                    (id(variable) in trainable_ids) if trainable_ids is not None else bool(variable.trainable)
                ) and variable.dtype.is_floating
                weight = keras.Variable(
                    variable,
                    dtype=variable.dtype.name,
                    trainable=is_trainable,
                    name=_weight_name(variable.name),
                )
                if weight.value is not variable:  # Keras must share, never copy, the variable.
                    weight._value = variable
                hub_weights.append(weight)
                weight_keys.append(path)
        self._hub_weights = hub_weights
        if not self.trainable:
            # Keras reads per-variable flags when collecting a model's weights;
            # `layer.trainable = True` later re-enables the trainable ones.
            for weight in hub_weights:
                weight.trainable = False
        # Keys of the weights in `.keras` files: object-graph paths, unique and
        # stable across loads of the same SavedModel.
        self._hub_weight_keys = tuple(weight_keys)
        self.built = True

    # --- loading helpers -------------------------------------------------

    def _hub_variables(self):
        found = _object_graph_variables(self._hub_module)
        known = {id(v) for _, v in found}
        # The reusable-SavedModel API may list variables held only by functions.
        extra = [v for v in getattr(self._hub_module, "variables", []) if id(v) not in known]
        found.extend((f"unreachable_variables/{i}", v) for i, v in enumerate(extra))
        return found

    @property
    def hub_module(self):
        """The object `hub.load(handle)` returned (its `signatures`, variables...)."""
        return self._hub_module

    def _select_callable(self):
        module = self._hub_module
        signatures = getattr(module, "signatures", {}) or {}
        if self.signature is not None:
            if self.signature not in signatures:
                raise ValueError(
                    f"`signature`={self.signature!r} is not in the SavedModel at {self.handle!r}; "
                    f"available signatures: {sorted(signatures)}."
                )
            fn = signatures[self.signature]
            return fn, dict(fn.structured_input_signature[1]), False
        if not callable(module):
            raise ValueError(
                f"The SavedModel at `handle`={self.handle!r} has no `__call__`; pass `signature=` "
                f"one of {sorted(signatures)}."
            )
        fn = module.__call__
        try:
            has_training = "training" in inspect.signature(fn).parameters
        except (TypeError, ValueError):
            has_training = False
        spec = None
        input_signature = getattr(fn, "input_signature", None)
        if input_signature:
            spec = input_signature[0]
        else:
            concrete = getattr(fn, "concrete_functions", None) or []
            if concrete and concrete[0].structured_input_signature[0]:
                spec = concrete[0].structured_input_signature[0][0]
        return fn, spec, has_training

    def _check_output_key(self):
        if self.signature is None:
            return
        outputs = self._callable.structured_outputs
        if not isinstance(outputs, dict):
            return
        if self.output_key is not None and self.output_key not in outputs:
            raise ValueError(
                f"`output_key`={self.output_key!r} is not an output of signature {self.signature!r}; "
                f"outputs: {sorted(outputs)}."
            )
        if self.output_key is None and not self.signature_outputs_as_dict and len(outputs) != 1:
            raise ValueError(
                f"Signature {self.signature!r} has outputs {sorted(outputs)}: pass `output_key` "
                "or `signature_outputs_as_dict=True`."
            )

    # --- call ------------------------------------------------------------

    def _cast_inputs(self, inputs):
        def cast(value, spec):
            if isinstance(spec, tf.TensorSpec) and tf.is_tensor(value) and value.dtype != spec.dtype:
                if value.dtype.is_floating and spec.dtype.is_floating:
                    return tf.cast(value, spec.dtype)
                if value.dtype.is_integer and spec.dtype.is_integer:
                    return tf.cast(value, spec.dtype)
            return value

        spec = self._input_spec_structure
        if isinstance(inputs, dict) and isinstance(spec, dict):
            return {k: cast(v, spec.get(k)) for k, v in inputs.items()}
        if not isinstance(inputs, (dict, list, tuple)):
            if isinstance(spec, dict) and len(spec) == 1:
                return cast(inputs, next(iter(spec.values())))
            return cast(inputs, spec)
        return inputs

    def call(self, inputs, training=None):
        inputs = self._cast_inputs(inputs)
        if self.signature is not None:
            if not isinstance(inputs, dict):
                names = list(self._input_spec_structure)
                if len(names) != 1:
                    raise ValueError(
                        f"Signature {self.signature!r} takes inputs {names}: pass `inputs` as a dict."
                    )
                inputs = {names[0]: inputs}
            outputs = self._callable(**inputs, **self.arguments)
        else:
            kwargs = dict(self.arguments)
            if self._has_training_arg:
                if training is None or not self.trainable:
                    kwargs["training"] = False
                elif isinstance(training, bool):
                    kwargs["training"] = training
                else:
                    kwargs["training"] = tf.cast(training, tf.bool)
            outputs = self._callable(inputs, **kwargs)
        if isinstance(outputs, dict):
            if self.output_key is not None:
                if self.output_key not in outputs:
                    raise ValueError(
                        f"`output_key`={self.output_key!r} is not an output of {self.handle!r}; "
                        f"outputs: {sorted(outputs)}."
                    )
                outputs = outputs[self.output_key]
            elif self.signature is not None and not self.signature_outputs_as_dict:
                outputs = next(iter(outputs.values()))
        return tf.nest.map_structure(self._cast_output, outputs)

    def _cast_output(self, value):
        if tf.is_tensor(value) and value.dtype.is_floating and value.dtype != self.compute_dtype:
            return tf.cast(value, self.compute_dtype)
        return value

    # --- serialization ---------------------------------------------------

    def save_own_variables(self, store):
        for key, weight in zip(self._hub_weight_keys, self._hub_weights):
            store[key.replace("/", ".")] = weight

    def load_own_variables(self, store):
        keys = [key.replace("/", ".") for key in self._hub_weight_keys]
        missing = sorted(set(keys) - set(store.keys()))
        if missing:
            raise ValueError(
                f"The saved weights of TFHubLayer {self.name!r} do not match the SavedModel at "
                f"`handle`={self.handle!r}: missing {missing[:5]}."
            )
        for key, weight in zip(keys, self._hub_weights):
            value = store[key]
            if tuple(value.shape) != tuple(weight.shape):
                raise ValueError(
                    f"Saved weight {key!r} has shape {tuple(value.shape)} but the SavedModel at "
                    f"`handle`={self.handle!r} has {tuple(weight.shape)}."
                )
            weight.assign(value)

    @classmethod
    def from_config(cls, config):
        # Checked here too, so the refusal is not wrapped in Keras' TypeError.
        check_stored_handle(config.get("handle"))
        return super().from_config(config)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "handle": self.handle,
                "signature": self.signature,
                "signature_outputs_as_dict": self.signature_outputs_as_dict,
                "output_key": self.output_key,
                "arguments": dict(self.arguments),
            }
        )
        return config
