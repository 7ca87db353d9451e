import pytest

from mmkeras.training import get_strategy, per_replica_batch_size


def test_cpu_and_auto_on_a_cpu_machine():
    assert get_strategy("cpu").num_replicas_in_sync == 1
    assert get_strategy("auto").num_replicas_in_sync == 1


def test_errors():
    with pytest.raises(ValueError, match="valid strategies"):
        get_strategy("horovod")
    with pytest.raises(ValueError, match="no GPU"):
        get_strategy("gpu")
    with pytest.raises(ValueError, match="global_batch_size"):
        per_replica_batch_size(0, get_strategy("cpu"))
