"""Training settings outside their range are refused up front, naming the field and the range."""

import pytest

from mmkeras.cli import main
from mmkeras.config import resolve_config


@pytest.mark.parametrize(
    "field, value, allowed",
    [
        ("train.epochs", 0, "[1, inf)"),
        ("train.epochs", -3, "[1, inf)"),
        ("train.global_batch_size", 0, "[1, inf)"),
        ("train.learning_rate", -0.001, "(0, inf)"),
        ("train.learning_rate", 0, "(0, inf)"),
        ("train.weight_decay", -0.1, "[0, inf)"),
        ("train.warmup_fraction", 1.0, "[0, 1)"),
        ("train.steps_per_execution", 0, "[1, inf)"),
        ("train.accumulate", 0, "[1, inf)"),
        ("train.checkpoint_every", -1, "[0, inf)"),
        ("train.keep_checkpoints", 0, "[1, inf)"),
        ("eval.batch_size", 0, "[1, inf)"),
        ("eval.num_beams", 0, "[1, inf)"),
        ("eval.max_length", 0, "[1, inf)"),
        ("data.num_train", 0, "[1, inf)"),
        ("data.num_test", -1, "[0, inf)"),
        ("data.image_size", 0, "[1, inf)"),
        ("data.val_fraction", 1.0, "(0, 1)"),
        ("data.val_fraction", 0.0, "(0, 1)"),
        ("data.vocabulary_size", 0, "[1, inf)"),
        ("train.epochs", None, "[1, inf)"),
    ],
)
def test_out_of_range_settings_name_the_field_and_the_range(field, value, allowed):
    with pytest.raises(ValueError) as error:
        resolve_config({"task": "matching"}, {field: value})
    message = str(error.value)
    assert f"`{field}`" in message and allowed in message and repr(value) in message


def test_settings_at_their_bounds_are_accepted():
    resolve_config({"task": "captioning"}, {"train.epochs": 1, "train.warmup_fraction": 0.0, "train.weight_decay": 0,
                                            "train.checkpoint_every": 0, "data.num_test": 0, "eval.num_beams": 1})


@pytest.mark.parametrize("flags, field", [(["--epochs", "0"], "train.epochs"),
                                          (["--steps-per-execution", "0"], "train.steps_per_execution"),
                                          (["--set", "train.learning_rate=-0.1"], "train.learning_rate")])
def test_the_cli_refuses_them_in_one_line_before_creating_the_run(tmp_path, capsys, flags, field):
    run = tmp_path / "run"
    tiny = ["--set", "data.num_train=16", "--set", "data.num_test=8", "--set", "data.image_size=32",
            "--global-batch", "8", "--no-jit", "--no-eval", "--no-export"]  # if it trained, briefly
    assert main(["train", "shapes-clip-tiny", "--quiet", "--output", str(run), *tiny, *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert field in err and len(err.splitlines()) == 1
    assert not run.exists()
