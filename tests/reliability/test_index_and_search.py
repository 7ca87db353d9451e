"""`mmkeras index` walks any folder in bounded time; `mmkeras search` refuses an index that does not add up."""

import contextlib
import json
import os
import signal

import numpy as np
import pytest
import tensorflow as tf

from mmkeras.cli import main
from mmkeras.commands.search import add_arguments


class _ToyExport(tf.Module):
    """A stand-in dual-encoder export: `embed_image` refuses non-PNG bytes with an in-graph check."""

    def __init__(self, text_shift=0):
        super().__init__()
        self.text_shift = tf.Variable(text_shift)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def embed_image(self, image_bytes):
        is_png = tf.strings.substr(image_bytes, 0, 4) == b"\x89PNG"
        check = tf.debugging.Assert(
            tf.reduce_all(is_png),
            ["could not decode the image bytes at batch index", tf.argmin(tf.cast(is_png, tf.int32))],
        )
        with tf.control_dependencies([check]):
            image_bytes = tf.identity(image_bytes)

        def colour(data):
            return tf.reduce_mean(tf.cast(tf.io.decode_png(data, channels=3), tf.float32), axis=[0, 1])

        colours = tf.map_fn(colour, image_bytes, fn_output_signature=tf.float32)
        return {"embeddings": tf.math.l2_normalize(colours + 1.0, axis=-1)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def embed_text(self, text):
        which = (tf.strings.length(text) + self.text_shift) % 3
        return {"embeddings": tf.math.l2_normalize(tf.one_hot(which, 3) + 0.1, axis=-1)}


def _save_export(path, text_shift=0):
    module = _ToyExport(text_shift)
    tf.saved_model.save(module, path, signatures={"embed_image": module.embed_image, "embed_text": module.embed_text})
    return path


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    root = tmp_path_factory.mktemp("exports")
    return {"export": _save_export(str(root / "export")), "other": _save_export(str(root / "other"), 1)}


def _png(path, colour):
    path.write_bytes(tf.io.encode_png(np.full((4, 4, 3), colour, np.uint8)).numpy())


@pytest.fixture
def images(tmp_path):
    root = tmp_path / "images"
    (root / "a").mkdir(parents=True)
    for i, colour in enumerate([(250, 0, 0), (0, 250, 0), (0, 0, 250)]):
        _png(root / "a" / f"img{i}.png", colour)
    return root


@contextlib.contextmanager
def _time_limit(seconds):
    def stop(*_):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _index(exports, images, out):
    with _time_limit(20):
        return main(["index", exports["export"], "--images", str(images), "--out", str(out)])


def _error(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


# --- index: symlinks ------------------------------------------------------


def test_index_skips_dangling_links_and_never_follows_a_folder_twice(exports, images, tmp_path, capsys):
    os.symlink(images / "gone.png", images / "a" / "dangling.png")
    os.symlink(images, images / "a" / "loop")  # a/loop -> the root
    os.symlink(images / "a", images / "again")  # a second way into a/
    os.symlink(images / "a", images / "a" / "self")  # a/self -> a/
    out = tmp_path / "index"
    assert _index(exports, images, out) == 0
    info = json.loads((out / "index.json").read_text())
    assert sorted(os.path.relpath(p, images) for p in info["paths"]) == [f"a/img{i}.png" for i in range(3)]
    reasons = {os.path.relpath(s["path"], images): s["reason"] for s in info["skipped"]}
    assert reasons["a/dangling.png"] == "dangling link"
    assert "Indexed 3 images" in capsys.readouterr().out


# --- index: skip reasons --------------------------------------------------


# How a dual-encoder export's `embed_image` words a failed check when called eagerly.
_NESTED_FUNCTION_ERROR = (
    "{{function_node __inference_signature_wrapper_<lambda>_4866}} assertion failed: "
    "[ImagePreprocessor could not decode the image bytes at batch index] [0] [(corrupt data)]\n"
    "\t [[{{function_node __inference_<lambda>_4532}}{{node Assert/Assert}}]]"
)


def test_index_skip_reasons_are_the_failed_check(exports, images, tmp_path, capsys, monkeypatch):
    from mmkeras.commands import index as index_command

    (images / "a" / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "index"
    assert _index(exports, images, out) == 0
    [skipped] = json.loads((out / "index.json").read_text())["skipped"]
    assert skipped["reason"] == "could not decode the image bytes at batch index 0"
    assert f"{skipped['path']}: could not decode the image bytes at batch index 0" in capsys.readouterr().out

    def load_export(export_dir, signature):
        embed = tf.saved_model.load(export_dir).signatures[signature]

        def nested_error(image_bytes):
            try:
                return embed(image_bytes=image_bytes)
            except tf.errors.InvalidArgumentError:
                raise tf.errors.InvalidArgumentError(None, None, _NESTED_FUNCTION_ERROR) from None

        return nested_error

    monkeypatch.setattr(index_command, "load_export", load_export)
    assert _index(exports, images, tmp_path / "again") == 0
    [skipped] = json.loads((tmp_path / "again" / "index.json").read_text())["skipped"]
    assert skipped["reason"] == "ImagePreprocessor could not decode the image bytes at batch index 0 (corrupt data)"


# --- search: the index is checked against its manifest ---------------------


@pytest.fixture
def index(exports, images, tmp_path, capsys):
    out = tmp_path / "index"
    assert _index(exports, images, out) == 0
    capsys.readouterr()
    return out


def _edit(index, **changes):
    info = json.loads((index / "index.json").read_text())
    info.update(changes)
    (index / "index.json").write_text(json.dumps(info))
    return info


@pytest.fixture
def loads(monkeypatch):
    """Records the SavedModels `tf.saved_model.load` opens."""
    calls, original = [], tf.saved_model.load
    monkeypatch.setattr(tf.saved_model, "load", lambda path, *a, **k: calls.append(path) or original(path, *a, **k))
    return calls


def test_search_refuses_an_index_whose_export_was_swapped(exports, index, capsys, loads):
    _edit(index, export_dir=exports["other"])
    assert main(["search", str(index), "red"]) == 2
    message = _error(capsys)
    assert message.startswith("mmkeras search: error:") and "export_dir" in message and "fingerprint" in message
    assert loads == [], "the export was loaded before its fingerprint was checked"

    _edit(index, export_dir=exports["export"])  # The recorded export, wherever it lies, is accepted.
    assert main(["search", str(index), "red"]) == 0
    assert loads == [exports["export"]]


def test_search_refuses_an_export_changed_in_place(images, tmp_path, capsys):
    export = _save_export(str(tmp_path / "export"))
    with _time_limit(20):
        assert main(["index", export, "--images", str(images), "--out", str(tmp_path / "index")]) == 0
    _save_export(export, text_shift=2)  # Exported again over the same folder.
    assert main(["search", str(tmp_path / "index"), "red"]) == 2
    assert "fingerprint" in _error(capsys)


@pytest.mark.parametrize("edit", ["reordered", "renamed", "shortened"])
def test_search_refuses_edited_paths(index, capsys, edit):
    paths = json.loads((index / "index.json").read_text())["paths"]
    changed = {"reordered": paths[::-1], "renamed": [p + ".x" for p in paths], "shortened": paths[:1]}[edit]
    _edit(index, paths=changed)
    assert main(["search", str(index), "red", "--top-k", "3"]) == 2
    assert "paths" in _error(capsys)


def test_search_refuses_replaced_embeddings(index, capsys):
    embeddings = np.load(index / "embeddings.npy")
    np.save(index / "embeddings.npy", embeddings[::-1].copy())
    assert main(["search", str(index), "red"]) == 2
    assert "embeddings.npy" in _error(capsys)


def test_search_refuses_an_index_without_manifest(index, capsys):
    info = json.loads((index / "index.json").read_text())
    (index / "index.json").write_text(json.dumps({k: info[k] for k in ("export_dir", "paths", "dim")}))
    assert main(["search", str(index), "red"]) == 2
    assert "manifest" in _error(capsys)
    (index / "index.json").write_text("{not json")
    assert main(["search", str(index), "red"]) == 2
    assert "index.json" in _error(capsys)


# --- search: the query words ----------------------------------------------


def test_search_refuses_unquoted_words_and_says_how_to_quote(index, capsys):
    assert main(["search", str(index), "a", "dog", "running"]) == 2
    message = _error(capsys)
    assert "quote" in message and '"a dog running"' in message
    assert main(["search", str(index), "a dog running"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "a dog running"
    assert main(["search", str(index), "a red dog", "green"]) == 0  # Quoted queries: one each.
    assert [line for line in capsys.readouterr().out.splitlines() if not line.startswith(" ")] == ["a red dog", "green"]


def test_search_help_says_how_queries_are_read():
    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert "quote" in parser.format_help()
