import json

import numpy as np
import tensorflow as tf

from mmkeras.cli import main


def test_index_embeds_every_readable_image_and_reports_the_rest(tmp_path, capsys, image_folder,
                                                                 dual_encoder_export):
    out = tmp_path / "index"
    assert main(["index", dual_encoder_export, "--images", str(image_folder), "--out", str(out),
                 "--batch-size", "2"]) == 0
    printed = capsys.readouterr().out
    assert "Indexed 5 images" in printed and "skipped 1:" in printed and "broken.jpg" in printed
    info = json.loads((out / "index.json").read_text())
    assert len(info["paths"]) == 5 and not any(p.endswith((".txt", "broken.jpg")) for p in info["paths"])
    assert [s["path"].endswith("broken.jpg") for s in info["skipped"]] == [True]
    assert "could not decode the image bytes" in info["skipped"][0]["reason"]
    embeddings = np.load(out / "embeddings.npy")
    # The stored vectors are the export's own embeddings of those files.
    serving = tf.saved_model.load(dual_encoder_export)
    expected = serving.signatures["embed_image"](
        image_bytes=tf.constant([open(p, "rb").read() for p in info["paths"]]))["embeddings"].numpy()
    np.testing.assert_allclose(embeddings, expected, atol=1e-5)


def test_index_errors_name_the_problem(tmp_path, capsys, image_folder, dual_encoder_export, fusion_export):
    assert main(["index", str(tmp_path), "--images", str(image_folder), "--out", str(tmp_path / "i")]) == 2
    assert "not a SavedModel" in capsys.readouterr().err
    assert main(["index", fusion_export, "--images", str(image_folder), "--out", str(tmp_path / "i")]) == 2
    assert "no `embed_image` signature" in capsys.readouterr().err
    assert main(["index", dual_encoder_export, "--images", str(tmp_path / "none"), "--out", str(tmp_path / "i")]) == 2
    assert "not a folder" in capsys.readouterr().err
