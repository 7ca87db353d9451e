"""Fixtures of the preprocessing tests: the tokenizers' shared checks, and serving in a fresh Python process.

A tokenizer test module names its reference checkpoint folder FIXTURE (with a tokenizer_cases.json).
"""

import json
import os
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

# What a serving process must be able to do without.
NOT_NEEDED = ("mmkeras", "keras_hub")


@pytest.fixture
def serve_in_fresh_process(tmp_path):
    """`serve_in_fresh_process(script, timeout)` -> the JSON object the script prints last.

    The script runs in `tmp_path`; it must exit 0 and must not import mmkeras or keras_hub.
    """

    def run(script, timeout):
        probe = f"\nimport json, sys\nprint(json.dumps([m for m in {NOT_NEEDED!r} if m in sys.modules]))\n"
        result = subprocess.run(
            [sys.executable, "-c", script + probe],
            capture_output=True,
            text=True,
            cwd=str(tmp_path),
            timeout=timeout,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        )
        assert result.returncode == 0, result.stderr[-2000:]
        *_, report, imported = result.stdout.strip().splitlines()
        assert json.loads(imported) == [], f"the serving process imported {imported}"
        return json.loads(report)

    return run


@pytest.fixture(scope="module")
def cases(request):
    """The reference tokenizer's ids of the module FIXTURE's captions: its tokenizer_cases.json."""
    with open(os.path.join(request.module.FIXTURE, "tokenizer_cases.json"), encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="session")
def check_reference_ids():
    """`check(tokenizer, cases)`: the tokenizer gives the reference ids on every one of the 1,000 or more captions."""

    def check(tokenizer, cases):
        assert len(cases["captions"]) >= 1000
        ids = tokenizer(cases["captions"]).numpy()
        expected = np.array(cases["input_ids"])
        wrong = [cases["captions"][i] for i in np.where((ids != expected).any(axis=1))[0]]
        assert not wrong, f"{len(wrong)} captions differ, e.g. {wrong[:3]}"
        assert ids.dtype == np.int32 and ids.shape == expected.shape

    return check


@pytest.fixture
def check_round_trip(tmp_path):
    """`check(tokenizer, texts) -> config`: the serialized tokenizer and a .keras model of it give the same ids.

    Returns the JSON config, for the test's own checks.
    """

    def check(tokenizer, texts):
        config = json.loads(json.dumps(keras.saving.serialize_keras_object(tokenizer)))
        again = keras.saving.deserialize_keras_object(config)
        np.testing.assert_array_equal(again(texts), tokenizer(texts))
        inputs = keras.Input((), dtype="string")
        model = keras.Model(inputs, tokenizer(inputs))
        model.save(tmp_path / "tokenizer.keras")
        loaded = keras.saving.load_model(tmp_path / "tokenizer.keras")
        np.testing.assert_array_equal(loaded(tf.constant(texts)), tokenizer(texts))
        return config

    return check


@pytest.fixture(scope="session")
def check_in_graphs():
    """`check(tokenizer, texts) -> ids`: a `tf.data` map and a `tf.function` give the eager ids, returned."""

    def check(tokenizer, texts):
        expected = tokenizer(texts).numpy()
        mapped = np.concatenate(list(tf.data.Dataset.from_tensor_slices(texts).batch(2).map(tokenizer)))
        np.testing.assert_array_equal(mapped, expected)
        np.testing.assert_array_equal(tf.function(tokenizer)(tf.constant(texts)), expected)
        return expected

    return check


@pytest.fixture(scope="session")
def check_huge_text():
    """`check(tokenizer)`: a 100 KB caption and a 200 KB word take seconds; max_text_bytes cuts the text."""

    def check(tokenizer):
        caption = "a small brown dog runs on the grass "
        start = time.perf_counter()
        ids = tokenizer([caption * 3000, "x" * 200_000]).numpy()
        assert time.perf_counter() - start < 30  # about 3 s for ClipTokenizer: the 64 KB word is encoded whole
        np.testing.assert_array_equal(ids[0], tokenizer([caption * 3]).numpy()[0])
        short = type(tokenizer).from_config({**tokenizer.get_config(), "max_text_bytes": 8})
        np.testing.assert_array_equal(short([caption]), tokenizer([caption[:8]]))

    return check


@pytest.fixture
def check_export(tmp_path, serve_in_fresh_process):
    """`check(tokenizer, texts)`: a SavedModel of the tokenizer gives its ids in a process without mmkeras."""

    def check(tokenizer, texts):
        module = tf.Module()
        module.tokenize = tf.function(lambda text: tokenizer(text), input_signature=[tf.TensorSpec([None], tf.string)])
        tf.saved_model.save(module, str(tmp_path / "export"))
        script = (
            "import tensorflow as tf, tensorflow_text\n"
            f"ids = tf.saved_model.load('export').tokenize(tf.constant({texts!r}))\n"
            "print(__import__('json').dumps(ids.numpy().tolist()))\n"
        )
        assert serve_in_fresh_process(script, timeout=120) == tokenizer(texts).numpy().tolist()

    return check
