import pytest

from mmkeras.durations import format_duration


@pytest.mark.parametrize(
    "seconds, text",
    [(0, "0.0 s"), (45.23, "45.2 s"), (59.94, "59.9 s"), (60, "1 min 0 s"), (70.3, "1 min 10 s"),
     (3599.4, "59 min 59 s"), (3599.6, "1 h 0 min"), (3725, "1 h 2 min"), (90000, "25 h 0 min")],
)
def test_largest_fitting_units(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [-1, float("nan"), "70", None, True])
def test_rejects_what_is_not_a_duration(seconds):
    with pytest.raises(ValueError, match="`seconds`"):
        format_duration(seconds)
