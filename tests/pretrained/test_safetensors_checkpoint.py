import json
import struct

import numpy as np
import pytest
import safetensors.numpy

from mmkeras.pretrained import SafetensorsCheckpoint


def test_reads_files_shards_and_bfloat16(tmp_path):
    safetensors.numpy.save_file({"a": np.arange(6, dtype="float16").reshape(2, 3)}, str(tmp_path / "one.safetensors"))
    values = np.array([1.5, -2.0, 3.25], "float32")  # exact in bfloat16
    raw = (values.view("uint32") >> 16).astype("<u2").tobytes()
    header = json.dumps({"b": {"dtype": "BF16", "shape": [3], "data_offsets": [0, len(raw)]}}).encode()
    (tmp_path / "two.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + raw)
    index = {"weight_map": {"a": "one.safetensors", "b": "two.safetensors"}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    checkpoint = SafetensorsCheckpoint(tmp_path)
    assert checkpoint.names == ["a", "b"] and "a" in checkpoint and checkpoint.shape("b") == (3,)
    np.testing.assert_array_equal(checkpoint.get("a", (2, 3)), np.arange(6).reshape(2, 3))
    np.testing.assert_array_equal(checkpoint.get("b"), values)
    assert checkpoint.get("b").dtype == np.float32


def test_errors_name_the_file(tmp_path):
    path = tmp_path / "model.safetensors"
    safetensors.numpy.save_file({"w": np.ones((2, 3), "float32")}, str(path))
    checkpoint = SafetensorsCheckpoint(path)
    with pytest.raises(ValueError, match=r"model\.safetensors: tensor 'w' has shape \(2, 3\), the model needs \(3, 2\)"):
        checkpoint.get("w", (3, 2))
    with pytest.raises(ValueError, match=r"model\.safetensors: tensor 'v' is missing"):
        checkpoint.get("v")
    for name in ("model.pt", "weights.pth", "pytorch_model.bin"):
        (tmp_path / name).write_bytes(b"x")
        with pytest.raises(ValueError, match=rf"{name} is a pickle checkpoint\. .*safetensors"):
            SafetensorsCheckpoint(tmp_path / name)
    (tmp_path / "broken.safetensors").write_bytes(b"\xff" * 12)
    with pytest.raises(ValueError, match="broken.safetensors is not a readable safetensors file"):
        SafetensorsCheckpoint(tmp_path / "broken.safetensors")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="No model.safetensors"):
        SafetensorsCheckpoint(empty)
