import pytest

from mmkeras import zoo


def test_every_preset_resolves_and_has_a_model_card():
    names = zoo.list()
    assert {"shapes-clip-tiny", "shapes-siglip-tiny", "clip-vit-b16", "siglip-vit-b16"} <= set(names)
    for name in names:
        config = zoo.config(name)
        assert config["task"] in ("matching", "captioning", "fusion")
        card = zoo.card(name)
        assert card.startswith(f"# {name}")
        for heading in ("Task", "Parameters", "Intended data"):
            assert heading in card, f"{name}.md lacks {heading}"


def test_build_and_overrides():
    model = zoo.build("shapes-siglip-tiny", **{"model.embed_dim": 32})
    assert model.output["image_embeddings"].shape[-1] == 32
    assert model.loss_name == "siglip"


def test_unknown_preset_and_override_list_valid_names():
    with pytest.raises(ValueError, match="valid presets: .*shapes-clip-tiny"):
        zoo.get("shapes-clip-huge")
    with pytest.raises(ValueError, match="valid fields: .*epochs"):
        zoo.config("shapes-clip-tiny", **{"train.epoch": 1})
