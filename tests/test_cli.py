import json
import os
import subprocess
import sys

import keras
import tensorflow_datasets as tfds
from click.testing import CliRunner

from keras_vae import __version__
from keras_vae.cli import main

TINY_RUN = ["--dataset", "mnist", "--epochs", "1", "--batch-size", "16", "--latent-dim", "4", "--quiet"]


def test_version_and_help_need_no_keras_import():
    code = "import sys; from keras_vae.cli import main; import keras_vae; print('keras' in sys.modules)"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "False"
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output
    result = CliRunner().invoke(main, ["train", "--help"])
    assert result.exit_code == 0 and "--backend" in result.output and "--free-bits" in result.output


def test_train_writes_a_run_directory(tmp_path):
    output = tmp_path / "run"
    with tfds.testing.mock_data(num_examples=48):
        result = CliRunner().invoke(main, ["train", *TINY_RUN, "--output", str(output)])
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(output)) == ["config.json", "history.csv", "model.keras"]
    assert "test negative ELBO" in result.output
    config = json.loads((output / "config.json").read_text())
    assert config["latent_dim"] == 4 and config["backend"] == keras.backend.backend()
    restored = keras.models.load_model(output / "model.keras")
    assert restored.latent_dim == 4
    # No temporary directory is left beside the run.
    assert os.listdir(tmp_path) == ["run"]


def test_an_existing_run_directory_is_not_overwritten_by_accident(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "keep.txt").write_text("results")
    result = CliRunner().invoke(main, ["train", *TINY_RUN, "--output", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "exists" in result.output and "--overwrite" in result.output
    assert (tmp_path / "run" / "keep.txt").read_text() == "results"


def test_backend_option_takes_effect_before_keras_is_imported(tmp_path):
    # Each run of the suite (one per backend) checks its own backend.
    backend = keras.backend.backend()
    script = (
        "import sys, tensorflow_datasets as tfds\n"
        "from keras_vae.cli import main\n"
        "with tfds.testing.mock_data(num_examples=32):\n"
        "    main(sys.argv[1:])\n"
    )
    other = "jax" if backend != "jax" else "torch"  # the environment says otherwise
    env = dict(os.environ, KERAS_BACKEND=other, TF_CPP_MIN_LOG_LEVEL="3")
    command = [sys.executable, "-c", script, "train", *TINY_RUN, "--backend", backend, "--output", str(tmp_path / "r")]
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"on {backend}:" in result.stdout
    assert json.loads((tmp_path / "r" / "config.json").read_text())["backend"] == backend
