import json
import re
import warnings

import keras
import matplotlib.image
import numpy as np
import pytest

from conftest import prototype_images, small_vae
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
    pattern = r"^epoch 00\d \| train loss=\d+\.\d{4} recon=\d+\.\d{4} kl=\d+\.\d{4} beta=\d\.\d{4} \| val loss=\d+\.\d{4}$"
    assert len(lines) == 2 and all(re.match(pattern, line) for line in lines), lines


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
    with pytest.warns(callbacks.PosteriorCollapseWarning, match="Remedies: lower β") as caught:
        monitor.on_epoch_end(1)
    message = str(next(w.message for w in caught if w.category is callbacks.PosteriorCollapseWarning))
    assert "no latent dimension is active" in message and "free bits" in message and "aggressive" in message
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
