import pytest

from mmkeras.config import parse_override, resolve_config, validate_config


def test_defaults_fill_in_and_overrides_apply():
    config = resolve_config({"task": "matching", "train": {"epochs": 3}}, {"train.learning_rate": 0.01})
    assert config["train"]["epochs"] == 3
    assert config["train"]["learning_rate"] == 0.01
    assert config["train"]["precision"] == "auto"  # the default: chosen per device at run time


def test_an_int_given_for_a_float_field_becomes_a_float():
    config = resolve_config({"task": "captioning", "train": {"learning_rate": 1}}, {"eval.length_penalty": 0})
    assert config["eval"]["length_penalty"] == 0.0 and isinstance(config["eval"]["length_penalty"], float)
    assert isinstance(config["train"]["learning_rate"], float)
    assert isinstance(config["eval"]["num_beams"], int)  # int fields stay ints


@pytest.mark.parametrize(
    "config,message",
    [
        ({"task": "painting"}, "`task` must be one of"),
        ({"task": "matching", "trian": {}}, "Unknown config section `trian`"),
        ({"task": "matching", "train": {"epochs": "ten"}}, "`train.epochs` must be of type int"),
        ({"task": "matching", "train": {"precision": "fp8"}}, "`train.precision` must be one of"),
        ({"task": "matching", "data": {"imagesize": 3}}, "Unknown config field `data.imagesize`"),
        ({"task": "matching", "train": {"tower_pretraining_schedule": "linear"}},
         "`train.tower_pretraining_schedule` must be one of \\('constant', 'cosine'\\)"),
        ({"task": "matching", "train": {"tower_pretraining_learning_rate": 0}},
         r"`train.tower_pretraining_learning_rate` must be a positive number or null \(`train.learning_rate`\), got 0"),
        ({"task": "matching", "train": {"tower_pretraining_learning_rate": "fast"}},
         "`train.tower_pretraining_learning_rate` must be a positive number or null"),
        ({"task": "matching", "train": {"lora_alpha": -1}},
         r"`train.lora_alpha` must be a positive number or null \(the rank\)"),
        ({"task": "matching", "image_encoder": {"type": "vit", "width": 3}}, "`image_encoder.width`"),
        ({"task": "matching", "image_encoder": {"type": "rnn"}}, "Unknown encoder `type`"),
        ({"task": "matching", "model": {"embedding_dim": 3}}, "`model.embedding_dim`"),
        # Builder and tower arguments are checked against the types of their defaults.
        ({"task": "captioning", "model": {"num_layers": "abc"}}, "`model.num_layers` must be of type int, got 'abc'"),
        ({"task": "captioning", "model": {"tie_weights": 3}}, "`model.tie_weights` must be of type bool, got 3"),
        ({"task": "captioning", "model": {"dropout": "abc"}}, "`model.dropout` must be of type float, got 'abc'"),
        ({"task": "matching", "image_encoder": {"type": "vit", "num_layers": 2.5}},
         "`image_encoder.num_layers` must be of type int, got 2.5"),
        ({"task": "matching", "text_encoder": {"type": "text_transformer", "pooled_only": 1}},
         "`text_encoder.pooled_only` must be of type bool, got 1"),
    ],
)
def test_bad_fields_are_named(config, message):
    with pytest.raises(ValueError, match=message):
        validate_config(config)


def test_argument_types_accept_what_the_builders_take():
    validate_config({"task": "captioning", "model": {"num_layers": 2, "dropout": 0, "hidden_dim": None},
                     "image_encoder": {"type": "vit", "position_stddev": 1, "dtype": "mixed_bfloat16"}})
    # A float-default argument may be a structure: per-modality dropout rates.
    validate_config({"task": "fusion", "model": {"modality_dropout": {"image": 0.1, "text": 0.2}}})


def test_a_head_set_to_null_is_left_out():
    from mmkeras import zoo

    key, value = parse_override("model.heads.cells=null")
    config = zoo.config("shapes-fusion-early-tiny", **{key: value})
    assert list(config["model"]["heads"]) == ["answer", "match"]
    assert sorted(zoo.build("shapes-fusion-early-tiny", **{key: value}).heads) == ["answer", "match"]
    assert list(zoo.config("shapes-fusion-early-tiny")["model"]["heads"]) == ["answer", "match", "cells"]


def test_parse_override():
    assert parse_override("train.epochs=2") == ("train.epochs", 2)
    assert parse_override("train.jit_compile=false") == ("train.jit_compile", False)
    assert parse_override("data.path=a=b") == ("data.path", "a=b")
    with pytest.raises(ValueError, match="section.field=value"):
        parse_override("epochs")


def test_the_image_size_is_set_once_in_data():
    from mmkeras import zoo
    from mmkeras.models import build_from_config

    config = zoo.config("shapes-clip-tiny", **{"data.image_size": 32, "image_encoder.patch_size": 16,
                                               "image_encoder.num_layers": 1, "text_encoder.num_layers": 1})
    model = build_from_config(config)
    assert tuple(model.input["images"].shape[1:3]) == (32, 32)
    assert model.input["token_ids"].shape[1] == config["data"]["sequence_length"]


@pytest.mark.parametrize("field, value", [("image_encoder.image_size", 40), ("text_encoder.sequence_length", 7)])
def test_a_tower_size_that_contradicts_data_fails_naming_both_fields(field, value):
    from mmkeras import zoo

    data_field = "data." + field.split(".")[1]
    with pytest.raises(ValueError, match=rf"`{data_field}` .* and `{field}` \({value}\) disagree"):
        zoo.config("shapes-clip-tiny", **{field: value})
