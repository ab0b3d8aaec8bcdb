"""The calibration runs that fit in CI: the monitor, the train summary and `keras-vae diagnose` give one verdict."""

import json

import matplotlib.image
import numpy as np
import pytest
from click.testing import CliRunner

from conftest import prototype_images
from keras_vae.app.cli import main

# The command line is the same code on every backend (the assessment is tested per backend in test_diagnostics).
pytestmark = pytest.mark.backend_independent


def test_monitor_summary_and_diagnose_agree_on_a_healthy_run(tmp_path):
    x, labels = prototype_images(640)
    dataset = tmp_path / "prototypes.npz"
    np.savez(dataset, x_train=x[:512], y_train=labels[:512], x_test=x[512:], y_test=labels[512:])
    run = tmp_path / "run"
    options = ["--epochs", "3", "--batch-size", "16", "--latent-dim", "3", "--learning-rate", "5e-3", "--quiet"]
    trained = CliRunner().invoke(main, ["train", "--dataset", str(dataset), *options, "--output", str(run)])
    assert trained.exit_code == 0, trained.output
    assert "latent code: healthy; I(x; z)" in trained.output and "diagnosis: healthy" in trained.output
    summary = json.loads((run / "summary.json").read_text())
    monitor = json.loads((run / "diagnostics" / "collapse_monitor.json").read_text())
    saved = json.loads((run / "assessment.json").read_text())
    assert summary["verdict"] == monitor["records"][-1]["verdict"] == saved["verdict"] == "healthy"
    # One estimate of I(x; z), with its interval, in the summary and the saved assessment.
    assert summary["test"]["mutual_info"] == saved["mutual_info"]
    low, high = summary["test"]["mutual_info_interval"]
    assert low <= summary["test"]["mutual_info"] <= high and low > 0.1
    diagnosed = CliRunner().invoke(main, ["diagnose", str(run)])
    assert diagnosed.exit_code == 0, diagnosed.output
    assert "Verdict: healthy" in diagnosed.output and "Conclusion: healthy" in diagnosed.output
    assert f"{saved['mutual_info']:.2f} nats" in diagnosed.output  # the summary's estimate, not a new one
    assert "   dim   KL" in diagnosed.output  # the per-dimension evidence
    figure = matplotlib.image.imread(run / "diagnosis.png")
    assert figure.ndim == 3 and figure.shape[1] > 3 * figure.shape[0]  # four panels side by side
