import numpy as np
import pytest
import keras
import tensorflow as tf

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


@pytest.mark.parametrize("stop_at, expected", [(None, 9), (8, 8)])
def test_stop_at_caps_the_count_of_a_chunk_cut_short_by_the_data(tmp_path, stop_at, expected):
    # 8 batches in chunks of 3: Keras reports the last chunk, cut short after 2 batches, as a whole one.
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(0.1), "mse", steps_per_execution=3)
    data = tf.data.Dataset.from_tensor_slices((np.ones((16, 2)), np.ones((16, 1)))).batch(2)
    checkpoint = ResumableCheckpoint(str(tmp_path), every_n_steps=4)
    checkpoint.stop_at = stop_at
    model.fit(data, epochs=1, steps_per_epoch=9, verbose=0, callbacks=[checkpoint])
    assert int(model.optimizer.iterations.numpy()) == 8
    assert int(checkpoint.step.numpy()) == expected
    assert (tmp_path / f"ckpt-{expected}.index").exists()


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
