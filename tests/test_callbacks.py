import json
import re
import warnings

import keras
import matplotlib.image
import numpy as np
import pytest

from conftest import prototype_images, small_vae, to_numpy
from keras_vae import callbacks, schedules


def test_callbacks_write_their_files_during_fit(tmp_path):
    x, labels = prototype_images(256)
    vae = small_vae(latent_dim=3)
    vae.compile(beta=schedules.LinearWarmup(16))
    lines = []
    history = vae.fit(
        x,
        epochs=2,
        batch_size=32,
        verbose=0,
        validation_data=(x[:64],),
        callbacks=[
            callbacks.LatentDynamics(x[:200], tmp_path, every_n_steps=4, tensorboard_dir=tmp_path / "tb"),
            callbacks.LatentSpacePlot(x[:200], labels[:200], tmp_path, tensorboard_dir=tmp_path / "tb"),
            callbacks.ImageGrids(x[:16], tmp_path, n_samples=16),
            callbacks.EpochLogger(print_fn=lines.append),
        ],
    ).history
    for epoch in (1, 2):
        for name in ("latent_space", "samples", "reconstructions"):
            image = matplotlib.image.imread(tmp_path / f"{name}_epoch_{epoch:03d}.png")
            assert image.ndim == 3 and image.shape[0] > 50
    assert matplotlib.image.imread(tmp_path / "latent_dynamics.png").ndim == 3
    records = json.loads((tmp_path / "latent_dynamics.json").read_text())
    assert len(records) == 2 * (8 // 4) + 2  # every 4 of 8 steps, plus each epoch end
    assert all(len(r["variance_per_dim"]) == 3 and min(r["variance_per_dim"]) > 0 for r in records)
    assert [r["beta"] for r in records] == sorted(r["beta"] for r in records)
    rows = np.loadtxt(tmp_path / "latent_dynamics.csv", delimiter=",", skiprows=1)
    assert rows.shape == (len(records), 6 + 2 * 3)
    assert "active_units" in history and "mutual_info" in history
    assert list((tmp_path / "tb").iterdir())  # TensorBoard event files
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]  # atomic writes left nothing
    pattern = (
        r"^epoch 00\d \| train loss=\d+\.\d{4} recon=\d+\.\d{4} kl=\d+\.\d{4} beta=\d\.\d{4} \| val loss=\d+\.\d{4}$"
    )
    assert len(lines) == 2 and all(re.match(pattern, line) for line in lines), lines


def test_figures_are_drawn_every_n_epochs_and_after_the_last(tmp_path):
    x, labels = prototype_images(64)
    vae = small_vae(latent_dim=3)
    vae.compile()
    plot = callbacks.LatentSpacePlot(x, labels, tmp_path, every=2, grid_size=0)
    dynamics = callbacks.LatentDynamics(x, tmp_path, figure_every=2)
    vae.fit(x, epochs=3, batch_size=32, verbose=0, callbacks=[plot, dynamics])
    figures = sorted(path.name for path in tmp_path.glob("latent_space_epoch_*.png"))
    assert figures == ["latent_space_epoch_002.png", "latent_space_epoch_003.png"]
    assert len(json.loads((tmp_path / "latent_dynamics.json").read_text())) == 3  # the records, every epoch
    assert dynamics._drawn == 3 and (tmp_path / "latent_dynamics.png").is_file()


def test_the_train_commands_batch_hooks_do_not_hold_the_training_loop(tmp_path):
    # Keras reads every step's logs in the loop (a host round-trip per step) unless every batch hook is
    # async-safe; on backends it deems thread-safe (JAX, PyTorch; not TensorFlow) it then reads them on a thread.
    from keras.src.backend import IS_THREAD_SAFE

    x, _ = prototype_images(32)
    watchers = [callbacks.StopOnNonFiniteLoss(), callbacks.LatentDynamics(x, tmp_path)]
    assert keras.callbacks.CallbackList(watchers)._async_train is IS_THREAD_SAFE
    recording = callbacks.LatentDynamics(x, tmp_path, every_n_steps=4)  # reads the model mid-epoch: in the loop
    assert not keras.callbacks.CallbackList([*watchers, recording])._async_train


def test_latent_plane_is_decoded_when_the_latent_space_is_two_dimensional(tmp_path):
    x, labels = prototype_images(128)
    vae = small_vae(latent_dim=2)
    plot = callbacks.LatentSpacePlot(x, labels, tmp_path, grid_size=5)
    plot.set_model(vae)
    plot.on_epoch_end(0)
    two_panels = matplotlib.image.imread(tmp_path / "latent_space_epoch_001.png")
    assert two_panels.shape[1] > 1.5 * two_panels.shape[0]


def test_epoch_logger_shows_beta_only_when_it_changes_or_is_not_one():
    lines = []
    logger = callbacks.EpochLogger(print_fn=lines.append)
    logs = {"loss": 1.5, "reconstruction_loss": 1.25, "kl_loss": 0.25, "beta": 1.0}
    logger.on_epoch_end(0, dict(logs))
    logger.on_epoch_end(1, dict(logs, val_loss=1.4))
    logger.on_epoch_end(2, dict(logs, beta=0.5))
    logger.on_epoch_end(3, dict(logs, beta=0.5))
    assert lines == [
        "epoch 001 | train loss=1.5000 recon=1.2500 kl=0.2500",
        "epoch 002 | train loss=1.5000 recon=1.2500 kl=0.2500 | val loss=1.4000",
        "epoch 003 | train loss=1.5000 recon=1.2500 kl=0.2500 beta=0.5000",
        "epoch 004 | train loss=1.5000 recon=1.2500 kl=0.2500",
    ]
    first = []
    callbacks.EpochLogger(print_fn=first.append).on_epoch_end(0, dict(logs, beta=0.5))
    assert first == ["epoch 001 | train loss=1.5000 recon=1.2500 kl=0.2500 beta=0.5000"]


def collapsed(vae):
    for variable in vae.encoder.trainable_variables:
        variable.assign(np.zeros(variable.shape, "float32"))
    return vae


def test_collapse_monitor_fires_once_on_a_collapsed_model():
    x, _ = prototype_images(256)
    monitor = callbacks.CollapseMonitor(x)
    monitor.set_model(collapsed(small_vae()))
    monitor.on_epoch_end(0)  # a first epoch with the red flags is not yet a collapse (patience 2)
    with pytest.warns(callbacks.PosteriorCollapseWarning, match="Remedies: aggressive encoder training") as caught:
        monitor.on_epoch_end(1)
    message = str(next(w.message for w in caught if w.category is callbacks.PosteriorCollapseWarning))
    assert "the latent code is collapsed" in message and "0/3 dimensions active" in message
    assert "the decoder ignores z" in message and "free bits" in message and "aggressive" in message
    assert [r["verdict"] for r in monitor.records] == ["collapsed", "collapsed"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", callbacks.PosteriorCollapseWarning)
        monitor.on_epoch_end(2)  # once only


def test_collapse_monitor_stays_silent_on_a_healthy_model():
    x, _ = prototype_images(512)
    vae = small_vae()
    vae.compile(optimizer=keras.optimizers.Adam(3e-3))
    vae.fit(x, epochs=6, batch_size=16, verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", callbacks.PosteriorCollapseWarning)
        vae.fit(x, epochs=3, batch_size=16, verbose=0, callbacks=[callbacks.CollapseMonitor(x[:256])])


@pytest.mark.parametrize("remedy", ["aggressive", "free-bits"])
def test_collapse_monitor_remedy_acts_on_an_early_collapse_and_records_why(tmp_path, remedy):
    x, _ = prototype_images(128)
    vae = collapsed(small_vae())
    # Stays collapsed; aggressive mode, once on, stays on for the 3 epochs (its I(x; z) does not rise).
    vae.compile(optimizer=keras.optimizers.Adam(1e-7), max_inner_steps=3, inner_check_every=1, mi_patience=5)
    monitor = callbacks.CollapseMonitor(x, remedy=remedy, train_data=x, output_dir=tmp_path, batch_size=32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", callbacks.PosteriorCollapseWarning)
        history = vae.fit(x, epochs=2, batch_size=32, verbose=0, callbacks=[monitor]).history
    assert history["remedy"] == [1.0, 1.0]
    saved = json.loads((tmp_path / "collapse_monitor.json").read_text())
    assert [(e["epoch"], e["remedy"]) for e in saved["events"]] == [(1, remedy)]
    assert saved["events"][0]["reason"].startswith("collapsed: I(x; z)")
    if remedy == "aggressive":
        assert history["aggressive"][1] == 1.0 and history["encoder_steps"][1] >= 1  # epoch 2 ran inner encoder steps
    else:
        assert vae.free_bits == 0.25
        # The retraced step counts each dimension's KL as at least the new floor: 3 × 0.25 nats above the reconstruction.
        penalty = np.asarray(history["loss"]) - np.asarray(history["reconstruction_loss"])
        np.testing.assert_allclose(penalty, [0.0, 0.75], atol=1e-3)
    # Resumed (a new monitor over the same run directory, the model from its checkpoint): the remedy stays in force.
    resumed = keras.saving.load_model(save(vae, tmp_path / "checkpoint.keras"))
    monitor = callbacks.CollapseMonitor(x, remedy=remedy, train_data=x, output_dir=tmp_path, batch_size=32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", callbacks.PosteriorCollapseWarning)
        history = resumed.fit(x, epochs=3, initial_epoch=2, batch_size=32, verbose=0, callbacks=[monitor]).history
    saved = json.loads((tmp_path / "collapse_monitor.json").read_text())
    assert [record["epoch"] for record in saved["records"]] == [1, 2, 3] and len(saved["events"]) == 1
    if remedy == "aggressive":
        assert history["aggressive"] == [1.0] and history["encoder_steps"][0] >= 1
    else:
        assert resumed.free_bits == 0.25
    healthy_monitor = callbacks.CollapseMonitor(x, remedy=remedy, train_data=x)
    assert not healthy_monitor.remedy_applied
    with pytest.raises(ValueError, match="train_data"):
        callbacks.CollapseMonitor(x, remedy="aggressive")


def save(model, path):
    model.save(path)
    return path


def test_log_variance_forces_split_the_gradient_into_its_two_parts(tmp_path, trained_vae):
    x, _ = prototype_images(64)
    prior = collapsed(small_vae(latent_dim=3))  # the posterior is the prior: σ² = 1, no KL force
    prior.compile()
    forces = callbacks.LogVarianceForces(x, tmp_path)
    forces.set_model(prior)
    np.testing.assert_allclose(forces.forces()[1], 0.0, atol=1e-6)
    # A decoder that reads z: more noise in z costs reconstruction, so that force pushes σ² down (> 0).
    forces = callbacks.LogVarianceForces(x, tmp_path)
    forces.set_model(trained_vae)
    forces.on_epoch_end(0)
    forces.on_epoch_end(1)
    reconstruction, kl = forces.forces()
    log_var = to_numpy(trained_vae.encode(x)[1])
    np.testing.assert_allclose(kl, 0.5 * (np.exp(log_var) - 1).mean(0), rtol=1e-4, atol=1e-6)
    assert np.all(np.isfinite(reconstruction)) and reconstruction.max() > 0
    rows = np.loadtxt(tmp_path / "log_variance_forces.csv", delimiter=",", skiprows=1)
    assert rows.shape == (2 * 3, 5) and [r["epoch"] for r in forces.records] == [1, 2]
    np.testing.assert_allclose(rows[:, 4], rows[:, 2] + rows[:, 3], rtol=1e-4, atol=1e-5)
    assert matplotlib.image.imread(tmp_path / "log_variance_forces.png").ndim == 3


def test_run_checkpoints_resume_training_state_and_stop_before_saving_nan(tmp_path):
    x, _ = prototype_images(128)
    vae = small_vae(latent_dim=2)
    vae.compile(
        optimizer=keras.optimizers.Adam(1e-2), beta=schedules.LinearWarmup(100), aggressive=True, max_inner_steps=3
    )
    checkpoint = callbacks.RunCheckpoint(tmp_path / "checkpoints", keep=2, extra_state=lambda: {"note": "kept"})
    vae.fit(x, epochs=3, batch_size=32, verbose=0, callbacks=[checkpoint])
    paths = callbacks.checkpoint_paths(tmp_path / "checkpoints")
    assert [p.rsplit("-", 1)[-1] for p in paths] == ["0002", "0003"]  # the newest two
    state = json.loads(open(f"{paths[-1]}/state.json").read())
    assert state["epoch"] == 3 and state["note"] == "kept" and len(state["history"]["loss"]) == 3
    restored = keras.models.load_model(f"{paths[-1]}/model.keras")
    # The β schedule's counter, the aggressive-mode state and both optimizers' steps come back.
    to_numpy = keras.ops.convert_to_numpy
    assert int(to_numpy(restored.train_iterations)) == int(to_numpy(vae.train_iterations)) == 12
    assert int(to_numpy(restored.aggressive_mode)) == int(to_numpy(vae.aggressive_mode))
    for part in ("encoder_optimizer", "decoder_optimizer"):
        mine, theirs = getattr(vae.optimizer, part), getattr(restored.optimizer, part)
        assert int(to_numpy(theirs.iterations)) == int(to_numpy(mine.iterations)) > 0
        np.testing.assert_allclose(to_numpy(theirs.variables[-1]), to_numpy(mine.variables[-1]), rtol=1e-6)

    class Diverge(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 4:
                layer = vae.decoder.layers[-2]
                layer.kernel.assign(np.full(layer.kernel.shape, np.inf, "float32"))

    resumed = callbacks.RunCheckpoint(tmp_path / "checkpoints", history=state["history"])
    with pytest.raises(callbacks.NonFiniteLossError, match="epoch 5, batch 1"):
        vae.fit(
            x,
            epochs=6,
            initial_epoch=3,
            batch_size=32,
            verbose=0,
            callbacks=[Diverge(), callbacks.StopOnNonFiniteLoss(), resumed],
        )
    paths = callbacks.checkpoint_paths(tmp_path / "checkpoints")
    assert paths[-1].endswith("epoch-0004")  # the diverged epoch left no checkpoint
    assert len(json.loads(open(f"{paths[-1]}/state.json").read())["history"]["loss"]) == 4
    good = keras.models.load_model(f"{paths[-1]}/model.keras")
    assert all(np.all(np.isfinite(to_numpy(w))) for w in good.weights)
