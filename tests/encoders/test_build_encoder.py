import pytest

from mmkeras.encoders.build_encoder import build_encoder, encoder_arguments


def test_builds_each_local_tower():
    vit = build_encoder({"type": "vit", "image_size": 32, "patch_size": 16, "hidden_dim": 8,
                         "num_layers": 1, "num_heads": 2, "mlp_dim": 16}, dtype="mixed_bfloat16")
    assert vit.get_config()["dtype"] == "mixed_bfloat16"
    text = build_encoder({"type": "text_transformer", "vocabulary_size": 10, "sequence_length": 4,
                          "hidden_dim": 8, "num_layers": 1, "num_heads": 2, "mlp_dim": 16})
    assert text.output_dim == 8
    assert "architecture" in encoder_arguments("cnn")


def test_errors_name_the_field():
    with pytest.raises(ValueError, match="`image_encoder.depth`"):
        build_encoder({"type": "vit", "depth": 3}, field="image_encoder")
    with pytest.raises(ValueError, match=r"valid: \[.cnn.*.vit.\]"):
        build_encoder({"type": "lstm"})
