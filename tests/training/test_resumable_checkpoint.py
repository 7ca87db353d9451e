import numpy as np
import pytest
import keras

from mmkeras.training.resumable_checkpoint import ResumableCheckpoint


def _model():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(0.1), "mse")
    return model


def test_saves_every_n_steps_keeps_last_n_and_restores_optimizer_state(tmp_path):
    model = _model()
    checkpoint = ResumableCheckpoint(str(tmp_path), every_n_steps=2, keep=2)
    model.fit(np.ones((12, 2)), np.ones((12, 1)), batch_size=2, verbose=0, callbacks=[checkpoint])
    names = sorted(p.name for p in tmp_path.glob("*.index"))
    assert names == ["ckpt-4.index", "ckpt-6.index"]
    fresh = _model()
    assert ResumableCheckpoint(str(tmp_path)).restore(fresh) == 6
    np.testing.assert_array_equal(fresh.get_weights()[0], model.get_weights()[0])
    assert int(fresh.optimizer.iterations.numpy()) == 6


def test_corrupt_newest_checkpoint_falls_back_to_the_previous(tmp_path, capsys):
    model = _model()
    model.fit(np.ones((8, 2)), np.ones((8, 1)), batch_size=2, verbose=0,
              callbacks=[ResumableCheckpoint(str(tmp_path), every_n_steps=2, keep=3)])
    newest = tmp_path / "ckpt-4.data-00000-of-00001"
    newest.write_bytes(newest.read_bytes()[:10])  # a partial write
    assert ResumableCheckpoint(str(tmp_path)).restore(_model()) == 2
    assert "corrupt or partial" in capsys.readouterr().out


def test_no_checkpoint_after_a_non_finite_loss(tmp_path):
    model = _model()
    x = np.ones((8, 2), "float32")
    x[4:] = np.nan  # batches 3 and 4 give NaN losses
    checkpoint = ResumableCheckpoint(str(tmp_path), every_n_steps=1, keep=10)
    model.fit(x, np.ones((8, 1)), batch_size=2, verbose=0, shuffle=False,
              callbacks=[checkpoint, keras.callbacks.TerminateOnNaN()])
    assert checkpoint.saw_non_finite_loss
    assert sorted(p.name for p in tmp_path.glob("*.index")) == ["ckpt-1.index", "ckpt-2.index"]


def test_bad_arguments():
    with pytest.raises(ValueError, match="every_n_steps"):
        ResumableCheckpoint("x", every_n_steps=-1)
    with pytest.raises(ValueError, match="keep"):
        ResumableCheckpoint("x", keep=0)
