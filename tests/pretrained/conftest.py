"""Fixtures of the importer tests: writable copies of the reference checkpoint folders."""

import itertools
import os
import shutil

import pytest
import safetensors.numpy


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
    """`rewrite(folder, change) -> path`: applies `change(tensors)` to the folder's model.safetensors."""

    def rewrite(folder, change):
        path = str(folder / "model.safetensors")
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
