import tensorflow as tf

from mmkeras.cli import main


def test_classify_with_both_or_one_modality(capsys, image_folder, fusion_export):
    image = str(image_folder / "a" / "img0.jpg")
    serving = tf.saved_model.load(fusion_export).signatures["classify"]
    for args, (image_bytes, text) in [
        (["--image", image, "--text", "two blue squares"], (open(image, "rb").read(), "two blue squares")),
        (["--image", image], (open(image, "rb").read(), "")),
        (["--text", "is there a red circle"], (b"", "is there a red circle")),
    ]:
        assert main(["classify", fusion_export, *args]) == 0
        head, label, prob = capsys.readouterr().out.strip().split("\t")
        out = serving(image_bytes=tf.constant([image_bytes]), text=tf.constant([text]))
        assert head == "answer" and label == out["answer_label"].numpy()[0].decode()
        assert prob == f"(p={float(out['answer_probs'].numpy()[0].max()):.3f})"


def test_classify_errors(tmp_path, capsys, image_folder, fusion_export, dual_encoder_export):
    assert main(["classify", fusion_export]) == 2
    assert "give --image, --text or both" in capsys.readouterr().err
    assert main(["classify", fusion_export, "--image", str(image_folder / "b" / "broken.jpg")]) == 2
    err = capsys.readouterr().err
    assert "cannot read" in err and "could not decode the image bytes" in err and "Graph execution" not in err
    assert main(["classify", fusion_export, "--image", str(tmp_path / "missing.png")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["classify", dual_encoder_export, "--text", "a red circle"]) == 2
    assert "no `classify` signature" in capsys.readouterr().err
