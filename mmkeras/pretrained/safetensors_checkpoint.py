"""Tensors of a safetensors checkpoint as NumPy arrays, with errors that name the file, the tensor and the shapes."""

import json
import os

import numpy as np

SAFETENSORS_FILE = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
CONVERT_HINT = (
    "mmkeras reads safetensors only (a pickle checkpoint can run code when it is loaded). Convert it once, "
    "where torch is installed: python -c \"import torch, safetensors.torch as st; "
    "st.save_file({{k: v.contiguous() for k, v in torch.load('{source}', map_location='cpu', "
    "weights_only=True).items()}}, '{target}')\" (for a Hugging Face model directory, "
    "`AutoModel.from_pretrained(DIR).save_pretrained(DIR, safe_serialization=True)` does the same)."
)


class SafetensorsCheckpoint:
    """The tensors of a safetensors checkpoint: one `.safetensors` file or the shards of an index.

    Reads with `safetensors`' NumPy API (torch is never imported); bfloat16
    tensors, which NumPy has no type for, are widened to float32. `get`
    checks each tensor's shape before reading it, so a checkpoint that does
    not fit the model fails with one `ValueError` naming the file, the tensor
    and both shapes.

    Pickle checkpoints (`.bin`, `.pt`, `.pth`, ...) are refused with a message
    saying how to convert them.

    Args:
        path: a `.safetensors` file, a `model.safetensors.index.json` of
            shards, or a directory holding either (`model.safetensors` first).

    Example:

    >>> import os, tempfile, numpy as np, safetensors.numpy
    >>> path = os.path.join(tempfile.mkdtemp(), "model.safetensors")
    >>> safetensors.numpy.save_file({"w": np.ones((2, 3), "float16")}, path)
    >>> checkpoint = SafetensorsCheckpoint(os.path.dirname(path))
    >>> checkpoint.names, checkpoint.shape("w"), checkpoint.get("w", (2, 3)).dtype
    (['w'], (2, 3), dtype('float32'))
    >>> checkpoint.get("w", (3, 2))
    Traceback (most recent call last):
    ...
    ValueError: ...model.safetensors: tensor 'w' has shape (2, 3), the model needs (3, 2).
    """

    def __init__(self, path):
        path = os.fspath(path)
        if os.path.isdir(path):
            path = _find_in_directory(path)
        elif not os.path.exists(path):
            raise ValueError(f"Checkpoint file not found: {path}.")
        _refuse_pickle(path)
        self.path = path
        if path.endswith(".json"):
            self._files = _read_index(path)
        elif path.endswith(".safetensors"):
            self._files = {name: path for name in _header(path)}
        else:
            raise ValueError(f"{path} is not a .safetensors file or a safetensors index (.safetensors.index.json).")
        self._headers = {}

    @property
    def names(self):
        """Sorted names of the tensors in the checkpoint."""
        return sorted(self._files)

    def __contains__(self, name):
        return name in self._files

    def file_of(self, name):
        """The file that holds tensor `name` (the error messages name it)."""
        return self._files.get(name, self.path)

    def shape(self, name):
        """The shape of tensor `name` as a tuple; a `ValueError` naming the file if it is absent."""
        return tuple(self._entry(name)["shape"])

    def get(self, name, shape=None, dtype="float32"):
        """Tensor `name` as a NumPy array of `dtype`.

        Args:
            name: the tensor's name in the checkpoint.
            shape: optional expected shape; a different shape raises a
                `ValueError` naming the file, the tensor and both shapes.
            dtype: NumPy dtype of the returned array.

        Returns:
            A NumPy array.
        """
        found = self.shape(name)
        if shape is not None and tuple(found) != tuple(shape):
            raise ValueError(
                f"{self.file_of(name)}: tensor {name!r} has shape {found}, the model needs {tuple(shape)}."
            )
        entry = self._entry(name)
        if entry["dtype"] == "BF16":  # no NumPy type: read the raw 16 bits, widen to float32
            start, end = entry["data_offsets"]
            with open(self.file_of(name), "rb") as f:
                f.seek(self._data_start(self.file_of(name)) + start)
                raw = np.frombuffer(f.read(end - start), dtype="<u2")
            value = (raw.astype("uint32") << 16).view("float32").reshape(found)
        else:
            import safetensors

            with safetensors.safe_open(self.file_of(name), framework="np") as f:
                value = f.get_tensor(name)
        return np.asarray(value, dtype=dtype)

    def _entry(self, name):
        if name not in self._files:
            raise ValueError(f"{self.path}: tensor {name!r} is missing (the checkpoint has {len(self._files)} tensors).")
        file = self._files[name]
        if file not in self._headers:
            self._headers[file] = _header(file)
        if name not in self._headers[file]:
            raise ValueError(f"{file}: tensor {name!r} is missing (the index names this file for it).")
        return self._headers[file][name]

    def _data_start(self, file):
        with open(file, "rb") as f:
            return 8 + int.from_bytes(f.read(8), "little")


def _refuse_pickle(path):
    if path.lower().endswith(PICKLE_SUFFIXES):
        target = os.path.join(os.path.dirname(path), SAFETENSORS_FILE)
        raise ValueError(f"{path} is a pickle checkpoint. " + CONVERT_HINT.format(source=path, target=target))


def _find_in_directory(directory):
    for name in (SAFETENSORS_FILE, SAFETENSORS_INDEX):
        if os.path.isfile(os.path.join(directory, name)):
            return os.path.join(directory, name)
    files = sorted(os.listdir(directory))
    single = [f for f in files if f.endswith(".safetensors")]
    if len(single) == 1:
        return os.path.join(directory, single[0])
    pickles = [f for f in files if f.lower().endswith(PICKLE_SUFFIXES)]
    if pickles:
        _refuse_pickle(os.path.join(directory, pickles[0]))
    raise ValueError(
        f"No {SAFETENSORS_FILE} (or {SAFETENSORS_INDEX}) in {directory}"
        + (f"; it holds several .safetensors files: {single}." if single else ".")
    )


def _header(file):
    """`{name: {"dtype", "shape", "data_offsets"}}` of a safetensors file, read from its JSON header."""
    try:
        with open(file, "rb") as f:
            size = int.from_bytes(f.read(8), "little")
            if not 0 < size <= os.path.getsize(file) - 8:
                raise ValueError("bad header length")
            header = json.loads(f.read(size))
    except (OSError, ValueError) as error:
        raise ValueError(f"{file} is not a readable safetensors file ({error}).") from None
    header.pop("__metadata__", None)
    return header


def _read_index(path):
    try:
        with open(path, encoding="utf-8") as f:
            weight_map = json.load(f)["weight_map"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path} is not a safetensors index with a 'weight_map' ({error}).") from None
    directory = os.path.dirname(path)
    files = {}
    for name, shard in weight_map.items():
        files[name] = os.path.join(directory, shard)
        if not os.path.isfile(files[name]):
            raise ValueError(f"{path} names the shard {shard} for tensor {name!r}, which is missing.")
    return files
