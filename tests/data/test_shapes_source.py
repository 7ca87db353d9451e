import numpy as np
import pytest
import tensorflow as tf

from mmkeras.data import Shapes, ShapesSource


def test_records_match_shapes_scenes():
    source = ShapesSource("test", image_size=32, num_examples=3, image_format="png")
    records = list(source)
    scenes = Shapes(image_size=32, num_train=0, num_val=0, num_test=3).scenes("test")
    assert [r["texts"] for r in records] == [s["captions"] for s in scenes]
    assert [r["label"] for r in records] == [s["label"] for s in scenes]
    np.testing.assert_array_equal(tf.io.decode_png(records[1]["image"]).numpy(), scenes[1]["image"])
    assert source.report.kept == 3 and not source.report.skipped
    with pytest.raises(ValueError, match="image_format"):
        ShapesSource(image_format="tiff")
