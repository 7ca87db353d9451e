import copy

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


def test_a_preset_built_on_a_base_holds_only_what_differs(tmp_path, monkeypatch):
    small, tiny = zoo.config("shapes-captioner-small"), zoo.config("shapes-captioner-tiny")
    assert small["train"]["epochs"] == 30 and tiny["train"]["epochs"] == 10
    assert small["name"] == "shapes-captioner-small" and small["description"] != tiny["description"]
    assert {k: v for k, v in small.items() if k not in ("name", "description", "train")} == {
        k: v for k, v in tiny.items() if k not in ("name", "description", "train")}
    assert {k: v for k, v in small["train"].items() if k != "epochs"} == {
        k: v for k, v in tiny["train"].items() if k != "epochs"}
    (tmp_path / "orphan.json").write_text('{"name": "orphan", "base": "nowhere", "train": {"epochs": 1}}')
    (tmp_path / "selfish.json").write_text('{"name": "selfish", "base": "selfish"}')
    monkeypatch.setattr(zoo, "_preset_files", lambda: tmp_path)
    with pytest.raises(ValueError, match="Preset 'orphan' has `base` 'nowhere', which is not another preset"):
        zoo.get("orphan")
    with pytest.raises(ValueError, match="`base` 'selfish'"):
        zoo.get("selfish")


def test_a_base_is_patched_as_a_json_merge_patch(tmp_path, monkeypatch):
    (tmp_path / "parent.json").write_text(
        '{"name": "parent", "model": {"fusion": "early", "fusion_kwargs": {"hidden_dim": 64, "num_layers": 2}},'
        ' "train": {"epochs": 3, "learning_rate": 0.001}}')
    (tmp_path / "child.json").write_text(
        '{"name": "child", "base": "parent", "model": {"fusion": "late", "fusion_kwargs": {"num_layers": null,'
        ' "combine": "mean"}}, "train": null}')
    (tmp_path / "grandchild.json").write_text('{"name": "grandchild", "base": "child", "extra": {"a": null, "b": 1}}')
    monkeypatch.setattr(zoo, "_preset_files", lambda: tmp_path)
    # Objects merge, other values replace, null removes the key (also a whole section).
    assert zoo.get("child") == {"name": "child", "model": {"fusion": "late", "fusion_kwargs": {"hidden_dim": 64,
                                                                                            "combine": "mean"}}}
    assert zoo.get("grandchild")["extra"] == {"b": 1} and zoo.get("grandchild")["model"] == zoo.get("child")["model"]
    assert zoo.get("parent")["train"] == {"epochs": 3, "learning_rate": 0.001}  # the base is untouched


def test_fusion_presets_differ_from_their_base_only_in_the_fusion():
    early = zoo.config("shapes-fusion-early-tiny")
    for name in ("late", "sum", "concat", "gated", "bilinear", "cross-attention", "hybrid"):
        config = zoo.config(f"shapes-fusion-{name}-tiny")
        assert config["model"]["fusion"] == name.replace("-", "_")
        assert {k: v for k, v in config["model"].items() if not k.startswith("fusion")} == {
            k: v for k, v in early["model"].items() if not k.startswith("fusion")}
        # Besides the fusion: early fusion's text tower has one layer (its joint layers read the text), the
        # others two; cross-attention trains on 12,000 scenes (early on 11,000); the six others keep the
        # 10,000 scenes and the tower pretraining they were measured with (1,000 steps at a constant
        # `train.learning_rate`).
        expected = copy.deepcopy(early)
        expected["text_encoder"]["num_layers"] = 2
        if name == "cross-attention":
            expected["data"]["num_train"] = 12000
        else:
            expected["data"]["num_train"] = 10000
            expected["train"].update(tower_pretraining_steps=1000, tower_pretraining_learning_rate=None,
                                     tower_pretraining_schedule="constant")
        assert {k: v for k, v in config.items() if k not in ("name", "description", "model")} == {
            k: v for k, v in expected.items() if k not in ("name", "description", "model")}
    assert zoo.config("shapes-fusion-late-tiny")["model"]["fusion_kwargs"] == {"hidden_dim": 64, "combine": "mean"}
    assert zoo.config("shapes-fusion-gated-tiny")["model"]["fusion_kwargs"] == {"output_dim": 128}


def test_unknown_preset_and_override_list_valid_names():
    with pytest.raises(ValueError, match="valid presets: .*shapes-clip-tiny"):
        zoo.get("shapes-clip-huge")
    with pytest.raises(ValueError, match="valid fields: .*epochs"):
        zoo.config("shapes-clip-tiny", **{"train.epoch": 1})
