import numpy as np
import pytest

from mmkeras.layers.fusions import ConcatFusion


def test_absent_equals_zero_features_without_presence_flags(kit):
    inputs = kit.make_inputs()
    layer = ConcatFusion(output_dim=4, append_presence=False, activation=None)
    absent = layer(inputs, presence=kit.presence_of(inputs, absent="image", rows=(0, 1))).numpy()
    zeroed = kit.replaced(inputs, "image", rows=(0, 1), value=0.0)
    np.testing.assert_allclose(absent, layer(zeroed).numpy(), atol=1e-6)
    flagged = ConcatFusion(output_dim=4, activation=None)
    out = flagged(inputs, presence=kit.presence_of(inputs, absent="image", rows=(0, 1))).numpy()
    assert not np.allclose(out, flagged(zeroed).numpy())  # the flag tells them apart


def test_sequence_only_modality_is_mean_pooled(kit):
    inputs = kit.make_inputs()
    del inputs["text"]["pooled"]
    layer = ConcatFusion(output_dim=4, append_presence=False, activation=None)
    out = layer(inputs).numpy()
    seq, mask = inputs["text"]["sequence"], inputs["text"]["padding_mask"]
    mean = (seq * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
    as_pooled = {"image": inputs["image"], "text": {"pooled": mean.astype("float32")}}
    np.testing.assert_allclose(out, layer(as_pooled).numpy(), atol=1e-5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="`output_dim`"):
        ConcatFusion(output_dim=0)
    with pytest.raises(ValueError, match=r"`hidden_dims\[0\]`"):
        ConcatFusion(output_dim=2, hidden_dims=[0])
