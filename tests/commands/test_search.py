import json

import numpy as np
import tensorflow as tf

from mmkeras.cli import main


def test_search_prints_the_top_k_by_cosine_similarity(tmp_path, capsys, image_folder, dual_encoder_export):
    index = tmp_path / "index"
    assert main(["index", dual_encoder_export, "--images", str(image_folder), "--out", str(index)]) == 0
    capsys.readouterr()
    assert main(["search", str(index), "a red circle", "--top-k", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "a red circle" and len(lines) == 4
    scores = [float(line.split("\t")[0]) for line in lines[1:]]
    paths = [line.split("\t")[1] for line in lines[1:]]
    # The same ranking from the export directly.
    info = json.loads((index / "index.json").read_text())
    serving = tf.saved_model.load(dual_encoder_export)
    text = serving.signatures["embed_text"](text=tf.constant(["a red circle"]))["embeddings"].numpy()[0]
    similarity = np.load(index / "embeddings.npy") @ text
    order = np.argsort(-similarity, kind="stable")[:3]
    assert paths == [info["paths"][i] for i in order]
    np.testing.assert_allclose(scores, similarity[order], atol=1e-4)


def test_search_errors(tmp_path, capsys):
    assert main(["search", str(tmp_path), "a red circle"]) == 2
    assert "not an index directory" in capsys.readouterr().err
