"""Each family's builder takes exactly its class's arguments, documented in the same order."""

import inspect
import re

import pytest

from mmkeras.models import Captioner, DualEncoder, FusionClassifier, captioner, dual_encoder, fusion_classifier

# (class, builder, the builder's own keyword-only arguments)
FAMILIES = [
    (DualEncoder, dual_encoder, ["name"]),
    (Captioner, captioner, ["name"]),
    (FusionClassifier, fusion_classifier, ["encoders", "name"]),
]


def _class_parameters(model_class):
    parameters = list(inspect.signature(model_class.__init__).parameters.values())[1:]
    return [p for p in parameters if p.kind is not inspect.Parameter.VAR_KEYWORD]


def _documented_arguments(function):
    section = inspect.getdoc(function).split("Args:\n", 1)[1]
    section = re.split(r"\n\S", section, maxsplit=1)[0]  # up to the next unindented heading
    return re.findall(r"^    (\**\w+):", section, flags=re.MULTILINE)


@pytest.mark.parametrize("model_class, builder, own", FAMILIES, ids=lambda x: getattr(x, "__name__", ""))
def test_builder_signature_is_the_class_signature(model_class, builder, own):
    parameters = list(inspect.signature(builder).parameters.values())
    shared = len(parameters) - len(own)
    assert parameters[:shared] == _class_parameters(model_class)
    assert [p.name for p in parameters[shared:]] == own
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters[shared:])
    assert inspect.signature(builder).parameters["name"].default == builder.__name__


@pytest.mark.parametrize("model_class, builder, own", FAMILIES, ids=lambda x: getattr(x, "__name__", ""))
def test_docstrings_list_every_argument_in_order(model_class, builder, own):
    names = [p.name for p in _class_parameters(model_class)]
    assert _documented_arguments(model_class) == names + ["**kwargs"]
    assert _documented_arguments(builder) == names + own


def test_builders_reject_unknown_and_missing_arguments():
    with pytest.raises(TypeError, match=r"captioner\(\) got an unexpected keyword argument 'width'"):
        captioner(None, width=3)
    with pytest.raises(TypeError, match=r"dual_encoder\(\) missing a required argument: 'text_encoder'"):
        dual_encoder(None)
