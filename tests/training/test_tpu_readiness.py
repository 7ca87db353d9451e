"""TPU readiness, checked on CPU: static input shapes and XLA-compilable steps.

A TPU runs only what XLA compiles, with static shapes and no host round trips.
As a proxy, for every family:

- the training data the task produces (`task.epoch_dataset(epoch)`) has fully
  defined shapes (`drop_remainder=True`, fixed-length token ids);
- the model's train step, as the task compiles it (optimizer, loss, metrics),
  wrapped in `tf.function(jit_compile=True)`, lowers to HLO — this fails on
  any op XLA cannot compile — and the HLO holds no host callback or transfer;
- caption decoding (`CaptionGenerator`: greedy, beam, top-k and top-p) does the same.
"""

import os
import re
import runpy

import keras
import pytest
import tensorflow as tf

from mmkeras import zoo
from mmkeras.generation import CaptionGenerator
from mmkeras.tasks import task_for_config

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "examples")
# The tiny models that `examples/train_tpu.py --smoke` trains, with XLA on as on a TPU
# and gradient accumulation (its branch must compile too).
smoke_overrides = runpy.run_path(os.path.join(EXAMPLES, "train_tpu.py"))["smoke_overrides"]
TPU = {"train.jit_compile": True, "train.accumulate": 2}
PRESETS = {
    "clip": "shapes-clip-tiny",
    "siglip": "shapes-siglip-tiny",
    "captioning": "shapes-captioner-tiny",
    "fusion": "shapes-fusion-concat-tiny",
}
# Markers of host callbacks / host transfers in HLO text.
HOST_MARKERS = (
    "__cpu_callback",
    "xla_python",
    "xla_ffi_python",
    "HostCompute",
    "SendToHost",
    "RecvFromHost",
    "is_host_transfer=true",
    "py_func",
)


def _assert_no_host_round_trips(hlo, what):
    assert "ENTRY" in hlo, f"{what}: not an HLO module"
    for marker in HOST_MARKERS:
        assert marker not in hlo, f"{what}: the HLO contains {marker!r} (a host callback or transfer)"
    for target in re.findall(r'custom_call_target="([^"]+)"', hlo):
        assert not any(m.lower() in target.lower() for m in ("callback", "python", "host")), (
            f"{what}: custom-call to {target!r}"
        )


def _fully_defined(spec):
    return all(s.shape.is_fully_defined() for s in tf.nest.flatten(spec))


@pytest.fixture(scope="module")
def tasks(tmp_path_factory):
    root = tmp_path_factory.mktemp("tpu")
    return {
        family: task_for_config(zoo.config(preset, **{**smoke_overrides(family), **TPU}), str(root / family))
        for family, preset in PRESETS.items()
    }


@pytest.mark.parametrize("family", sorted(PRESETS))
def test_train_step_compiles_to_hlo_with_static_shapes(tasks, family):
    task = tasks[family]
    dataset = task.epoch_dataset(tf.constant(0, tf.int64))
    assert _fully_defined(dataset.element_spec), dataset.element_spec
    # The stream `Task.train` fits on keeps the static shapes.
    assert _fully_defined(task.training_stream(0, 1).element_spec)
    batch = next(iter(dataset))
    rows = task.config["train"]["global_batch_size"]
    images = rows // task.config["data"].get("texts_per_image", 1)  # one image per K texts (fusion)
    for path, spec in keras.tree.flatten_with_path(dataset.element_spec):
        assert spec.shape[0] == (images if path[-1] == "images" else rows), path

    model = task.build_model()
    task.compile_model(model, total_steps=4)
    model.optimizer.build(model.trainable_variables)
    step = tf.function(model.train_step, jit_compile=True, autograph=False)
    hlo = step.experimental_get_compiler_ir(batch)(stage="hlo")
    _assert_no_host_round_trips(hlo, f"{family} train step")
    # Lowering only: compiling to machine code as well would cost minutes on 2 CPU cores.


@pytest.mark.parametrize("strategy", ["greedy", "beam", "top_k", "top_p"])
def test_caption_decoding_compiles_to_hlo(tasks, strategy):
    task = tasks["captioning"]
    model = task.build_model()
    generator = CaptionGenerator(model, max_length=6, strategy=strategy, num_beams=2, seed=0)
    assert generator.jit_compile
    images = task.preprocessor(task.data.shapes.images("test")[:2])
    seed = tf.constant([0, 0], tf.int32)
    hlo = generator.generate_fn.experimental_get_compiler_ir(images, seed)(stage="hlo")
    _assert_no_host_round_trips(hlo, f"{strategy} decoding")
    assert "while" in hlo  # the decode loop is one XLA while loop, not a python loop
