from mmkeras.commands.evaluate import evaluation_suffix
from mmkeras.config import resolve_config


def test_one_setting_names_one_file_however_it_is_typed():
    def suffix(overrides):
        return evaluation_suffix(overrides, resolve_config({"task": "captioning"}, overrides))

    assert suffix({"eval.num_beams": 6, "eval.length_penalty": 0}) == "-num_beams=6-length_penalty=0.0"
    assert suffix({"eval.length_penalty": 0}) == suffix({"eval.length_penalty": 0.0})
    assert suffix({"eval.length_penalty": 0.5}) == "-length_penalty=0.5"
    assert suffix({}) == ""
