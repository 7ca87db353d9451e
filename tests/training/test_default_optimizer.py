import numpy as np
import pytest

from mmkeras.training import default_optimizer


def test_warmup_then_cosine():
    optimizer = default_optimizer(total_steps=100, learning_rate=1.0, warmup_fraction=0.1)
    schedule = optimizer._learning_rate
    values = np.array([float(schedule(step)) for step in (0, 5, 10, 55, 100)])
    assert values[0] == 0.0 and 0.4 < values[1] < 0.6 and values[2] == pytest.approx(1.0)
    assert values[3] < values[2] and values[4] == pytest.approx(0.01, abs=1e-3)


def test_bad_arguments():
    with pytest.raises(ValueError, match="total_steps"):
        default_optimizer(0)
    with pytest.raises(ValueError, match="warmup_fraction"):
        default_optimizer(10, warmup_fraction=1.5)
