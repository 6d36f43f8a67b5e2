"""Checkpoints and the epoch-end callbacks, on tiny Keras models (every backend)."""

import keras
import numpy as np
import pytest

from keras_morsa.io import read_csv
from keras_morsa.training import checkpoint as ckpt
from keras_morsa.training.callbacks import CheckpointSaver, CsvLog, NonFiniteGuard

pytestmark = pytest.mark.multibackend

X = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
Y = X.sum(axis=1, keepdims=True)


def _model(width=8):
    """A small model with a BN statistic, a SeedGenerator (Dropout) and two optimizers."""
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(width),
            keras.layers.BatchNormalization(),
            keras.layers.Dropout(0.5, seed=3),
            keras.layers.Dense(1),
        ]
    )
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    model.optimizer.build(model.trainable_variables)
    model.d_optimizer = keras.optimizers.SGD(0.1)
    model.d_optimizer.build(model.trainable_variables[:1])
    return model


def test_round_trip_restores_every_variable_and_the_next_loss(tmp_path):
    model = _model()
    for _ in range(3):
        model.train_on_batch(X, Y)
    model.d_optimizer.iterations.assign(7)
    manager = ckpt.CheckpointManager(tmp_path, model, keep=2)
    manager.save(3, {"note": "x"})
    saved = {k: keras.ops.convert_to_numpy(v.value).copy() for k, v in ckpt.checkpoint_variables(model).items()}
    next_loss = float(model.train_on_batch(X, Y))

    fresh = _model()
    assert manager.restore_latest() == 3  # restores `model`, not `fresh`: check the manager is per model
    fresh_manager = ckpt.CheckpointManager(tmp_path, fresh)
    assert fresh_manager.restore(3)["note"] == "x"
    restored = ckpt.checkpoint_variables(fresh)
    assert set(restored) == set(saved)
    assert any(k.startswith("d_optimizer/") for k in saved) and any("seed_generator" in k for k in saved)
    for key, value in saved.items():
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(restored[key].value), value, err_msg=key)
    assert float(fresh.train_on_batch(X, Y)) == pytest.approx(next_loss, rel=1e-6, abs=1e-7)


def test_keeps_the_last_k(tmp_path):
    manager = ckpt.CheckpointManager(tmp_path, _model(), keep=2)
    for step in (2, 4, 6, 8):
        manager.save(step)
    assert manager.steps() == [6, 8]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt_00000006.npz", "ckpt_00000008.npz"]


def test_a_failed_save_leaves_no_partial_file(tmp_path, monkeypatch):
    manager = ckpt.CheckpointManager(tmp_path, _model(), keep=3)
    manager.save(2)

    def torn_savez(f, **arrays):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt.np, "savez", torn_savez)
    with pytest.raises(OSError, match="disk full"):
        manager.save(4)
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt_00000002.npz"]
    assert manager.latest_step() == 2


def test_restore_refuses_a_different_model(tmp_path):
    ckpt.CheckpointManager(tmp_path, _model(width=8)).save(1)
    with pytest.raises(ckpt.CheckpointMismatch, match="shape"):
        ckpt.CheckpointManager(tmp_path, _model(width=6)).restore(1)
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    with pytest.raises(ckpt.CheckpointMismatch, match="missing"):
        ckpt.CheckpointManager(tmp_path, other).restore(1)


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    model = _model()
    x = np.tile(X, (2, 1))
    x[24:] = np.nan  # batch 4 of 8-row batches (step 4) is poisoned
    y = np.tile(Y, (2, 1))
    manager = ckpt.CheckpointManager(tmp_path / "ckpt", model, keep=5)
    guard = NonFiniteGuard()
    callbacks = [guard, CsvLog(tmp_path / "log.csv", 0), CheckpointSaver(manager, every=2, num_steps=8)]
    model.fit(x, y, batch_size=8, epochs=4, steps_per_epoch=2, shuffle=False, callbacks=callbacks, verbose=0)
    assert guard.failure[0] == 4 and guard.failure[1] == "loss"
    assert manager.steps() == [2]
    assert [row["step"] for row in read_csv(tmp_path / "log.csv")] == ["2"]


def test_csv_log_resumes_without_duplicate_steps(tmp_path):
    path = tmp_path / "log.csv"
    model = _model()
    data = dict(x=np.tile(X, (8, 1)), y=np.tile(Y, (8, 1)), batch_size=8, steps_per_epoch=2, shuffle=False, verbose=0)
    model.fit(**data, epochs=3, callbacks=[CsvLog(path, 0)])
    with open(path, "a", encoding="utf-8") as f:
        f.write("8,0.5")  # a line torn by a kill
    # "Killed" after step 6 with its last checkpoint at step 4: resume from 4.
    model.fit(**data, epochs=4, initial_epoch=2, callbacks=[CsvLog(path, 4)])
    rows = read_csv(path)
    assert [int(r["step"]) for r in rows] == [2, 4, 6, 8]
    assert {"loss", "it_per_s"} <= set(rows[0]) and all(float(r["it_per_s"]) > 0 for r in rows)


def test_a_truncated_newest_checkpoint_falls_back_to_the_newest_intact_one(tmp_path):
    model = _model()
    manager = ckpt.CheckpointManager(tmp_path, model, keep=3)
    manager.save(2)
    saved = {k: keras.ops.convert_to_numpy(v.value).copy() for k, v in ckpt.checkpoint_variables(model).items()}
    model.train_on_batch(X, Y)
    manager.save(4)
    bad = manager.path(4)
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
    with pytest.warns(ckpt.CheckpointWarning, match=rf"checkpoint {bad} is unreadable .*trying the next older"):
        assert manager.restore_latest() == 2
    for key, variable in ckpt.checkpoint_variables(model).items():
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable.value), saved[key], err_msg=key)
    assert bad.exists()  # left for inspection; the next save of step 4 replaces it


def test_no_intact_checkpoint_is_one_clear_error(tmp_path):
    manager = ckpt.CheckpointManager(tmp_path, _model())
    manager.save(2)
    manager.path(2).write_bytes(b"not a zip")
    (tmp_path / "ckpt_00000004.npz").write_bytes(b"")
    with (
        pytest.warns(ckpt.CheckpointWarning),
        pytest.raises(
            ckpt.CorruptCheckpoint,
            match=r"no readable checkpoint in .*: ckpt_00000004.npz \(.*\); "
            r"ckpt_00000002.npz \(.*\); delete these files",
        ),
    ):
        manager.restore_latest()


def test_check_sees_the_metadata_before_anything_is_assigned(tmp_path):
    model = _model()
    manager = ckpt.CheckpointManager(tmp_path, model)
    manager.save(2, {"note": "old"})
    before = [keras.ops.convert_to_numpy(v.value).copy() for v in model.variables]
    model.train_on_batch(X, Y)
    after = [keras.ops.convert_to_numpy(v.value).copy() for v in model.variables]

    def refuse(path, meta):
        assert path == manager.path(2) and meta["note"] == "old"
        raise ckpt.CheckpointMismatch("refused")

    with pytest.raises(ckpt.CheckpointMismatch, match="refused"):
        manager.restore_latest(check=refuse)
    for variable, value in zip(model.variables, after):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable.value), value)
    assert not all(np.array_equal(a, b) for a, b in zip(before, after))
