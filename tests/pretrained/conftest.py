"""Fixtures of the importer tests: the reference checkpoint folders' outputs, and writable copies of them.

A test module names its reference folder FIXTURE (and PHOTOS, where its raw photos are another folder's).
"""

import itertools
import json
import os
import re
import shutil

import keras
import numpy as np
import pytest
import safetensors.numpy
import tensorflow as tf

from mmkeras.export import export_model


@pytest.fixture(scope="module")
def expected(request):
    """The reference outputs of the module's FIXTURE folder: its expected.npz as a dict."""
    return dict(np.load(os.path.join(request.module.FIXTURE, "expected.npz")))


@pytest.fixture(scope="module")
def raw_bytes(request):
    """The bytes of the reference folder's raw photos, raw/0.jpg and raw/1.png, as a string tensor."""
    folder = getattr(request.module, "PHOTOS", request.module.FIXTURE)
    return tf.constant([open(os.path.join(folder, "raw", name), "rb").read() for name in ("0.jpg", "1.png")])


@pytest.fixture(scope="session")
def unit():
    """`unit(x)`: x scaled to unit length along its last axis."""
    return lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)


@pytest.fixture
def round_trip(tmp_path):
    """`round_trip(model, batch, texts) -> loaded`: saves a dual encoder as a .keras file and loads it back.

    Checks that the loaded model gives the same outputs on the batch and the same token ids for the texts.
    """

    def save_and_load(model, batch, texts):
        model.save(tmp_path / "model.keras")
        loaded = keras.saving.load_model(tmp_path / "model.keras")
        for key, value in model(batch).items():
            np.testing.assert_array_equal(loaded(batch)[key], value)
        np.testing.assert_array_equal(loaded.preprocessor.tokenizer(texts), model.preprocessor.tokenizer(texts))
        return loaded

    return save_and_load


@pytest.fixture
def exported(tmp_path, raw_bytes):
    """`exported(model, texts) -> (serving, text_embeddings, inputs)`: exports a dual encoder and loads it back.

    Checks that its embed_text and embed_image signatures, fed the texts and the raw photos, give what the model
    gives through its own preprocessor (`inputs`: what that preprocessor gives for the photos and the texts).
    """

    def export(model, texts):
        export_model(model, str(tmp_path / "export"))
        serving = tf.saved_model.load(str(tmp_path / "export"))
        embedded = serving.signatures["embed_text"](text=tf.constant(texts))["embeddings"].numpy()
        images = serving.signatures["embed_image"](image_bytes=raw_bytes)["embeddings"].numpy()
        inputs = model.preprocessor({"image_bytes": raw_bytes, "text": tf.constant(texts)})
        np.testing.assert_allclose(embedded, model.text_model(inputs["token_ids"]).numpy(), atol=1e-5)
        np.testing.assert_allclose(images, model.image_model(inputs["images"]).numpy(), atol=1e-5)
        return serving, embedded, inputs

    return export


@pytest.fixture
def checkpoint_copy(tmp_path):
    """`copy(source) -> folder`: a fresh copy of a checkpoint folder, to change for a test."""
    numbers = itertools.count()

    def copy(source):
        folder = tmp_path / f"checkpoint_{next(numbers)}"
        shutil.copytree(source, folder)
        return folder

    return copy


@pytest.fixture
def rewrite_tensors():
    """`rewrite(folder, change, name="model.safetensors") -> path`: applies `change(tensors)` to the folder's file."""

    def rewrite(folder, change, name="model.safetensors"):
        path = str(folder / name)
        tensors = safetensors.numpy.load_file(path)
        change(tensors)
        safetensors.numpy.save_file(tensors, path)
        return path

    return rewrite


@pytest.fixture
def pickle_checkpoint(checkpoint_copy):
    """`make(source) -> folder`: a copy whose weights are a pickle file, pytorch_model.bin, instead."""

    def make(source):
        folder = checkpoint_copy(source)
        os.remove(folder / "model.safetensors")
        (folder / "pytorch_model.bin").write_bytes(b"pickle")
        return folder

    return make


@pytest.fixture
def check_pickle_refused(pickle_checkpoint):
    """`check(load, source, message, file_too=True)`: a copy of `source` whose weights are a pickle is refused.

    `load(folder)` must raise a ValueError matching `message`; with `file_too`, `load` of the pickle file too.
    """

    def check(load, source, message, file_too=True):
        folder = pickle_checkpoint(source)
        for path in (folder, folder / "pytorch_model.bin") if file_too else (folder,):
            with pytest.raises(ValueError, match=message):
                load(path)

    return check


@pytest.fixture
def check_tensor_errors(checkpoint_copy, rewrite_tensors):
    """`check(load, source, missing, resized, shapes, ...) -> folder`: a missing and a misshapen tensor are named.

    In a copy of `source` without the tensor `missing`, `load(folder)` names the file and the tensor; in another,
    whose tensor `resized = (name, columns)` keeps only its first columns, `load_resized` (default `load`) names
    the file, the tensor and then `shapes` (a regular expression). `weights` is the safetensors file's name.
    Returns the second copy.
    """

    def check(load, source, missing, resized, shapes, weights="model.safetensors", load_resized=None):
        folder = checkpoint_copy(source)
        path = rewrite_tensors(folder, lambda t: t.pop(missing), weights)
        with pytest.raises(ValueError, match=rf"{path}: tensor '{re.escape(missing)}' is missing"):
            load(folder)
        folder = checkpoint_copy(source)
        name, columns = resized
        path = rewrite_tensors(folder, lambda t: t.update({name: t[name][:, :columns]}), weights)
        with pytest.raises(ValueError, match=rf"{path}: tensor '{re.escape(name)}' has shape " + shapes):
            (load_resized or load)(folder)
        return folder

    return check


@pytest.fixture
def check_folder_errors(tmp_path):
    """`check(load, folder, other, message)`: another architecture, a missing config.json, a missing folder.

    With config.json's fields updated by the dict `other`, `load(folder)` raises a ValueError matching `message`;
    without config.json, one saying it is missing; and `load` of a folder that is not there, one saying so.
    """

    def check(load, folder, other, message):
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**config, **other}))
        with pytest.raises(ValueError, match=message):
            load(folder)
        os.remove(folder / "config.json")
        with pytest.raises(ValueError, match=r"config\.json is missing"):
            load(folder)
        with pytest.raises(ValueError, match="not found"):
            load(tmp_path / "nowhere")

    return check


@pytest.fixture(scope="session")
def check_embeddings(unit):
    """`check(model, expected, images_key, texts_key)`: a dual encoder's embeddings are the reference's, normalised.

    The towers take the reference's pixel values (NCHW, made NHWC) and input ids; the logit scale is the exp of
    the reference's.
    """

    def check(model, expected, images_key, texts_key):
        images = model.image_model(expected["pixel_values"].transpose(0, 2, 3, 1)).numpy()  # NCHW -> NHWC
        texts = model.text_model(expected["input_ids"].astype("int32")).numpy()  # no attention mask, as used
        assert np.abs(images - unit(expected[images_key])).max() < 1e-4
        assert np.abs(texts - unit(expected[texts_key])).max() < 1e-4
        scale = float(model.logit_scale()["logit_scale"])
        np.testing.assert_allclose(scale, np.exp(expected["logit_scale"]), rtol=1e-5)

    return check


@pytest.fixture(scope="session")
def json_fields():
    """`json_fields(path) -> write`: `write(**fields)` writes the JSON file as it first was, with `fields` set."""

    def fields_of(path):
        original = json.loads(path.read_text())

        def write(**fields):
            path.write_text(json.dumps({**original, **fields}))

        return write

    return fields_of


@pytest.fixture(scope="session")
def check_refused_fields(json_fields):
    """`check(load, path, message, **fields)`: with `fields` set in the JSON file `path`, `load` refuses its folder.

    `load(folder)` must raise a ValueError matching `message`; the file is then written back as it was.
    """

    def check(load, path, message, **fields):
        write = json_fields(path)
        write(**fields)
        with pytest.raises(ValueError, match=message):
            load(path.parent)
        write()

    return check
