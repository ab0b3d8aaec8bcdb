"""`keras-vae train --tensorboard --mlflow`: TensorBoard event files and an MLflow run in a local store, offline."""

import glob
import os
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import prototype_images
from keras_vae.app.cli import main

# The wiring is the same code on every backend (Keras's callback and tf.summary write the files).
pytestmark = pytest.mark.backend_independent


def event_tags(directory):
    """`{tag: number of events}` of the TensorBoard event files in `directory`."""
    import tensorflow as tf

    tags = {}
    for path in glob.glob(os.path.join(directory, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                tags[value.tag] = tags.get(value.tag, 0) + 1
    return tags


@pytest.fixture
def images(tmp_path):
    x, labels = prototype_images(96)
    np.savez(tmp_path / "images.npz", x_train=x[:64], y_train=labels[:64], x_test=x[64:], y_test=labels[64:])
    return tmp_path / "images.npz"


def train(images, output, *options):
    arguments = ["train", "--dataset", str(images), "--epochs", "2", "--batch-size", "32", "--latent-dim", "2"]
    return CliRunner().invoke(main, [*arguments, "--quiet", "--output", str(output), *options])


def test_a_run_logs_to_tensorboard_and_to_a_local_mlflow_store(images, tmp_path):
    from mlflow.tracking import MlflowClient  # the mlflow extra, which the test command installs

    store = tmp_path / "mlruns"
    result = train(images, tmp_path / "run", "--tensorboard", "--mlflow", str(store), "--figure-every", "1")
    assert result.exit_code == 0, result.output

    board = tmp_path / "run" / "tensorboard"
    train_tags, validation_tags = event_tags(board / "train"), event_tags(board / "validation")
    for tag in ("epoch_loss", "epoch_reconstruction_loss", "epoch_kl_loss", "epoch_active_units", "epoch_mutual_info"):
        assert train_tags.get(tag) == 2, (tag, train_tags)
    assert validation_tags.get("epoch_loss") == 2, validation_tags
    diagnostics = event_tags(board / "diagnostics")
    for tag in ("latent/variance_0", "latent/variance_1", "latent/kl_0", "latent/kl_1"):
        assert diagnostics.get(tag) == 2, (tag, diagnostics)
    for tag in ("latent_space", "samples", "reconstructions"):  # one image per epoch
        assert diagnostics.get(tag) == 2, (tag, diagnostics)

    client = MlflowClient(store.as_uri())
    (experiment,) = [e for e in client.search_experiments() if e.name == "keras-vae"]
    (logged,) = client.search_runs([experiment.experiment_id])
    assert logged.info.status == "FINISHED" and logged.info.run_name == "run"
    params = logged.data.params
    assert params["latent_dim"] == "2" and params["epochs"] == "2" and params["dataset"].endswith("images.npz")
    losses = client.get_metric_history(logged.info.run_id, "loss")
    assert [metric.step for metric in sorted(losses, key=lambda m: m.step)] == [1, 2]
    assert all(np.isfinite(metric.value) for metric in losses)
    for key in ("val_loss", "kl_loss", "active_units", "mutual_info", "test_negative_elbo"):
        assert key in logged.data.metrics, (key, sorted(logged.data.metrics))
    artifacts = {item.path for item in client.list_artifacts(logged.info.run_id)}
    assert {"config.json", "summary.json", "history.csv", "training_curves.png", "model", "diagnostics"} <= artifacts
    assert {item.path for item in client.list_artifacts(logged.info.run_id, "model")} == {"model/model.keras"}
    figures = {item.path for item in client.list_artifacts(logged.info.run_id, "diagnostics")}
    assert "diagnostics/latent_dynamics.png" in figures and "diagnostics/samples_epoch_002.png" in figures


def test_mlflow_missing_is_one_line_before_anything_is_written(images, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if it were not installed
    result = train(images, tmp_path / "run", "--mlflow")
    assert result.exit_code == 2
    assert "pip install 'keras-vae[mlflow]'" in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()
