"""The `keras-vae` command line, driven by CliRunner on the suite's backend.

Runs use a small .npz of prototype images (no TFDS) unless TFDS is the point.
"""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow_datasets as tfds
from click.testing import CliRunner

from conftest import prototype_images
from keras_vae import __version__
from keras_vae.app.cli import main

# Loading, parsing and the command line are the same code on every backend (the models
# they build are tested per backend elsewhere): one backend runs them.
pytestmark = pytest.mark.backend_independent

FAST = ["--epochs", "2", "--batch-size", "32", "--latent-dim", "2", "--quiet"]


@pytest.fixture
def images_npz(tmp_path):
    x, labels = prototype_images(192)
    path = tmp_path / "prototypes.npz"
    np.savez(path, x_train=x[:128], y_train=labels[:128], x_test=x[128:], y_test=labels[128:])
    return str(path)


@pytest.fixture
def run(tmp_path, images_npz):
    """A finished two-epoch run directory."""
    output = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "--dataset", images_npz, *FAST, "--output", str(output)])
    assert result.exit_code == 0, result.output
    return output


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_one_line_error(result, *fragments):
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_no_download_reports_an_unprepared_tfds_dataset_at_once(tmp_path):
    # cifar10 is a TFDS dataset that the test data dir does not hold: offline, a download would retry for minutes.
    start = time.perf_counter()
    result = invoke("train", "--dataset", "cifar10", "--no-download", *FAST, "--output", tmp_path / "run")
    assert_one_line_error(result, "'cifar10'", "not prepared", "TFDS_DATA_DIR")
    assert time.perf_counter() - start < 10
    assert not (tmp_path / "run").exists()


def test_version_and_help_need_no_keras_import():
    # The console script reads --backend before anything imports Keras (`import keras_vae` does).
    code = "import sys, keras_vae_cli; print('keras' in sys.modules)"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "False"
    assert __version__ in invoke("--version").output
    for command in ("train", "evaluate", "sample", "diagnose", "export", "lr-find"):
        result = invoke(command, "--help")
        assert result.exit_code == 0 and "--backend" in result.output and "--config" in result.output


def test_train_writes_a_complete_run_directory(run, tmp_path):
    names = set(os.listdir(run))
    assert {
        "model.keras",
        "config.json",
        "history.csv",
        "training_curves.png",
        "diagnosis.txt",
        "summary.json",
    } <= names
    assert {"diagnostics", "checkpoints"} <= names
    assert not [n for n in names if n.startswith(".tmp")]
    figures = set(os.listdir(run / "diagnostics"))
    assert {
        "latent_dynamics.csv",
        "latent_dynamics.json",
        "latent_dynamics.png",
        "latent_space_epoch_002.png",
    } <= figures
    assert "latent_space_epoch_001.png" not in figures  # figures every 5 epochs (--figure-every) and after the last
    assert sorted(os.listdir(run / "checkpoints")) == ["epoch-0001", "epoch-0002"]
    config = json.loads((run / "config.json").read_text())["train"]
    assert config["latent_dim"] == 2 and config["backend"] == keras.backend.backend()
    summary = json.loads((run / "summary.json").read_text())
    test = summary["test"]
    assert summary["epochs"] == 2 and np.isfinite(test["negative_elbo"]) and test["kl_loss"] >= 0
    assert test["negative_elbo"] == pytest.approx(test["reconstruction_loss"] + test["kl_loss"])
    assert keras.models.load_model(run / "model.keras").latent_dim == 2
    assert sorted(os.listdir(tmp_path)) == ["prototypes.npz", "run"]  # nothing left beside it


def test_train_prints_a_progress_bar_and_a_summary(tmp_path, images_npz):
    result = invoke("train", "--dataset", images_npz, "--epochs", "1", "--batch-size", "32", "--output", tmp_path / "r")
    assert result.exit_code == 0, result.output
    assert "4/4" in result.output  # Keras's progress bar: 116 training examples in batches of 32
    for fragment in ("test: negative ELBO", "active units", "diagnosis: needs at least two epochs", "run directory:"):
        assert fragment in result.output


def test_config_file_sections_fill_options_and_flags_override_them(tmp_path, images_npz):
    config = tmp_path / "vae.toml"
    config.write_text(
        f'[train]\ndataset = "{images_npz}"\nlatent-dim = 3\nbeta = 0.5\nbeta_schedule = "linear"\n'
        "epochs = 1\nbatch-size = 32\n\n[evaluate]\nnum-samples = 4\n"
    )
    result = invoke("train", "--config", config, "--beta", "0.25", "--quiet", "--output", tmp_path / "r")
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "r" / "config.json").read_text())["train"]
    assert (saved["latent_dim"], saved["beta"], saved["beta_schedule"], saved["epochs"]) == (3, 0.25, "linear", 1)
    # The resolved config is itself a config file: it reproduces the run.
    again = invoke("train", "--config", tmp_path / "r" / "config.json", "--quiet", "--output", tmp_path / "r2")
    assert again.exit_code == 0, again.output
    assert json.loads((tmp_path / "r2" / "config.json").read_text())["train"]["latent_dim"] == 3


@pytest.mark.parametrize(
    "text, fragments",
    [
        ("[train]\nlatent-dimension = 3\n", ["unknown key 'latent-dimension'", "did you mean 'latent-dim'"]),
        ("[trian]\nepochs = 1\n", ["unknown section [trian]", "did you mean 'train'"]),
        ("epochs = 1\n", ["must sit in a command's section"]),
        ("[train\n", ["cannot read"]),
    ],
)
def test_bad_config_files_are_rejected_in_one_line(tmp_path, text, fragments):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    assert_one_line_error(invoke("train", "--config", config, "--output", tmp_path / "r"), *fragments)
    assert not (tmp_path / "r").exists()


def _arrays(tmp_path, name, x):
    path = tmp_path / name
    np.save(path, x)
    return str(path)


def _corrupt_run(tmp_path, images_npz):
    run = tmp_path / "crun"
    assert invoke("train", "--dataset", images_npz, *FAST, "--output", run).exit_code == 0
    (run / "model.keras").unlink()
    (run / "checkpoints" / "epoch-0002" / "model.keras").write_bytes(b"not a zip file")
    return run


def _finished_run(tmp_path, images_npz, *options):
    run = tmp_path / "frun"
    assert invoke("train", "--dataset", images_npz, *FAST, *options, "--output", run).exit_code == 0
    return run


BAD_INPUTS = {
    "unknown dataset": (lambda tmp, npz: ["--dataset", "mnsit"], ["mnsit"]),
    "shape for the architecture": (
        lambda tmp, npz: [
            "--dataset",
            _arrays(tmp, "odd.npy", np.zeros((64, 10, 10, 1), "float32")),
            "--architecture",
            "conv",
        ],
        ["divisible by 4", "--architecture mlp"],
    ),
    "values outside [0, 1]": (
        lambda tmp, npz: ["--dataset", _arrays(tmp, "big.npy", np.full((64, 4), 3.5, "float32"))],
        ["Bernoulli", "--likelihood gaussian"],
    ),
    "counts with a Bernoulli likelihood": (
        lambda tmp, npz: ["--dataset", _arrays(tmp, "counts.npy", np.full((64, 4), 3.0, "float32"))],
        ["Bernoulli", "--likelihood nb"],
    ),
    "a count likelihood on non-counts": (
        lambda tmp, npz: [
            "--dataset",
            _arrays(tmp, "real.npy", np.full((64, 4), 0.5, "float32")),
            "--likelihood",
            "zinb",
        ],
        ["models counts", "--likelihood gaussian"],
    ),
    "a condition the data lacks": (
        lambda tmp, npz: [
            "--dataset",
            _arrays(tmp, "plain.npy", np.full((64, 4), 3.0, "float32")),
            "--condition",
            "batch",
        ],
        ["no condition 'batch'", "batch_train"],
    ),
    "NaN in the data": (
        lambda tmp, npz: [
            "--dataset",
            _arrays(tmp, "nan.npy", np.where(np.eye(64, 4) > 0, np.nan, 0.5).astype("float32")),
        ],
        ["NaN"],
    ),
    "existing run directory": (
        lambda tmp, npz: ["--dataset", npz, "--output", tmp],
        ["exists", "--overwrite", "--resume"],
    ),
    "impossible combination": (
        lambda tmp, npz: ["--dataset", npz, "--aggressive", "--lr-schedule", "cosine"],
        ["--aggressive", "--lr-schedule constant"],
    ),
    "resume with other options": (
        lambda tmp, npz: ["--resume", _finished_run(tmp, npz), "--latent-dim", "4"],
        ["drop --latent-dim"],
    ),
    "resume and overwrite": (lambda tmp, npz: ["--resume", tmp, "--overwrite"], ["one of them"]),
    "resume of a non-run": (lambda tmp, npz: ["--resume", tmp], ["not a keras-vae run directory"]),
    "corrupt checkpoint": (
        lambda tmp, npz: ["--resume", _corrupt_run(tmp, npz)],
        ["truncated or unreadable", "epoch-0002"],
    ),
    "unknown option": (lambda tmp, npz: ["--latent-dimension", "3"], ["No such option", "--latent-dim"]),
    "overwrite of a folder that is not a run": (
        lambda tmp, npz: ["--dataset", npz, "--output", tmp, "--overwrite"],
        ["not one (no config.json)"],
    ),
    "a decay factor without a decay": (
        lambda tmp, npz: ["--dataset", npz, "--lr-decay-factor", "0.5"],
        ["--lr-decay-factor", "--lr-decay-patience"],
    ),
    "a decay factor of 1 or more": (
        lambda tmp, npz: ["--dataset", npz, "--lr-decay-patience", "2", "--lr-decay-factor", "1.5"],
        ["--lr-decay-factor", "0<x<1"],
    ),
    "a decay of a scheduled rate": (
        lambda tmp, npz: ["--dataset", npz, "--lr-decay-patience", "2", "--lr-schedule", "cosine"],
        ["--lr-schedule cosine", "--lr-schedule constant"],
    ),
    "model selection without a validation set": (
        lambda tmp, npz: ["--dataset", npz, "--keep-best", "--validation-fraction", "0"],
        ["--keep-best", "--validation-fraction 0.1"],
    ),
    "resume with a longer cosine schedule": (
        lambda tmp, npz: ["--resume", _finished_run(tmp, npz, "--lr-schedule", "cosine"), "--epochs", "5"],
        ["sized for 2 epochs"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_gets_one_line_exit_code_2_and_writes_nothing(tmp_path, images_npz, case):
    make_args, fragments = BAD_INPUTS[case]
    args = make_args(tmp_path, images_npz)
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    resume = "--resume" in args
    default_output = [] if "--output" in args or resume else ["--output", tmp_path / "new"]
    result = invoke("train", *([] if resume else FAST), *args, *default_output)
    assert_one_line_error(result, *fragments)
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before  # nothing written, nothing touched


def test_verbose_shows_the_traceback(tmp_path):
    result = invoke("train", *FAST, "--dataset", "mnsit", "--verbose", "--output", tmp_path / "r")
    assert result.exit_code == 2 and "Traceback" in result.output


def test_a_diverging_run_stops_with_a_clear_message(tmp_path, images_npz):
    result = invoke("train", *FAST, "--dataset", images_npz, "--learning-rate", "1e30", "--output", tmp_path / "r")
    assert result.exit_code == 1, result.output
    assert "training stopped: the loss became" in result.output and "--learning-rate" in result.output
    assert not (tmp_path / "r" / "model.keras").exists()


def test_evaluate_prints_a_table_and_writes_json(run):
    result = invoke("evaluate", run, "--num-samples", "8", "--quiet")
    assert result.exit_code == 0, result.output
    assert "IW-NLL (k=8)" in result.output and "active units" in result.output
    evaluation = json.loads((run / "evaluation.json").read_text())
    assert evaluation["examples"] == 64 and evaluation["importance_samples"] == 8
    assert 0 <= evaluation["active_units"] <= 2 and evaluation["kl_loss"] >= 0
    # log p(x) ≥ ELBO in expectation; with 8 samples the bound is already tighter on average.
    assert np.isfinite(evaluation["importance_weighted_nll"])
    assert evaluation["importance_weighted_nll"] <= evaluation["negative_elbo"] + 1.0
    assert_one_line_error(invoke("evaluate", run, "--split", "test[:10]"), "drop --split")


def test_sample_writes_images_or_arrays(run, tmp_path):
    result = invoke("sample", run, "-n", "12", "--interpolate", "3", "5", "--steps", "6")
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(run / "samples")) == ["interpolation.png", "reconstructions.png", "samples.png"]
    result = invoke("sample", run, "-n", "12", "--steps", "6", "--format", "npy", "--output-dir", tmp_path / "arrays")
    assert result.exit_code == 0, result.output
    samples = np.load(tmp_path / "arrays" / "samples.npy")
    line = np.load(tmp_path / "arrays" / "interpolation.npy")
    assert samples.shape == (12, 6, 6, 1) and line.shape == (8, 6, 6, 1)
    assert np.all((samples >= 0) & (samples <= 1))
    assert_one_line_error(invoke("sample", run, "--interpolate", "0", "999"), "only 64")


def test_diagnose_prints_the_report(run):
    result = invoke("diagnose", run)
    assert result.exit_code == 0, result.output
    assert "Diagnosis:" in result.output and "Conclusion:" in result.output
    assert_one_line_error(invoke("diagnose", run / "missing"), "not a keras-vae run directory")


def test_lr_find_plots_the_range_test_and_suggests_rates(tmp_path, images_npz):
    plot = tmp_path / "lr.png"
    result = invoke(
        "lr-find", "--dataset", images_npz, "--batch-size", "16", "--steps", "30", "--quiet", "--output", plot
    )
    assert result.exit_code == 0, result.output
    assert "suggested learning rates" in result.output and plot.exists()
    curve = json.loads((tmp_path / "lr.json").read_text())
    assert len(curve["learning_rates"]) == len(curve["losses"]) <= 30
    assert_one_line_error(invoke("lr-find", "--min-lr", "1", "--max-lr", "0.1"), "--min-lr")


def test_tfds_datasets_train_by_name(tmp_path):
    # mock_data fakes the records but not `is_prepared`, so the loader
    # downloads: inside mock_data that does nothing.
    with tfds.testing.mock_data(num_examples=64):
        result = invoke("train", "--dataset", "mnist", *FAST, "--output", tmp_path / "r")
    assert result.exit_code == 0, result.output
    assert "mnist (28, 28, 1)" in result.output


def test_a_mixed_bfloat16_run_trains_saves_its_policy_and_leaves_keras_global_policy_alone(tmp_path, images_npz):
    output = tmp_path / "mixed"
    result = invoke(
        "train", "--dataset", images_npz, *FAST, "--epochs", 1, "--output", output, "--dtype-policy", "mixed_bfloat16"
    )
    assert result.exit_code == 0, result.output
    assert keras.config.dtype_policy().name == "float32"
    assert json.loads((output / "config.json").read_text())["train"]["dtype_policy"] == "mixed_bfloat16"
    vae = keras.saving.load_model(output / "model.keras")
    assert vae.encoder.layers[-1].compute_dtype == "bfloat16" and vae.likelihood_dtype == "float32"
    summary = json.loads((output / "summary.json").read_text())
    assert np.isfinite(summary["test"]["negative_elbo"]) and summary["test"]["kl_loss"] >= 0


def _train_command(*args):
    return [sys.executable, "-m", "keras_vae_cli", "train", *map(str, args)]


@pytest.mark.slow  # a training process killed with SIGKILL, then resumed: end to end by nature
def test_a_run_killed_mid_epoch_resumes_to_the_same_number_of_epochs(tmp_path):
    x, labels = prototype_images(1400)
    data = tmp_path / "data.npz"
    np.savez(data, x_train=x[:1200], x_test=x[1200:], y_test=labels[1200:])
    run = tmp_path / "run"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    args = ["--dataset", data, "--epochs", "4", "--batch-size", "16", "--latent-dim", "2", "--quiet", "--output", run]
    process = subprocess.Popen(_train_command(*args), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while not (run / "checkpoints" / "epoch-0001").exists():
            assert process.poll() is None and time.monotonic() < deadline, process.stdout.read().decode()[-3000:]
            time.sleep(0.05)
        time.sleep(0.3)  # into the second epoch
        process.send_signal(signal.SIGKILL)
        process.wait()
    finally:
        process.kill()
    done = sorted(os.listdir(run / "checkpoints"))
    assert done and done[-1] in ("epoch-0001", "epoch-0002", "epoch-0003") and not (run / "model.keras").exists()
    resumed = subprocess.run(_train_command("--resume", run, "--quiet"), env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-3000:]
    assert f"resuming after epoch {int(done[-1][6:])}" in resumed.stdout
    history = np.genfromtxt(run / "history.csv", delimiter=",", names=True)
    assert list(history["epoch"]) == [0, 1, 2, 3] and np.all(np.isfinite(history["loss"]))
    assert json.loads((run / "summary.json").read_text())["epochs"] == 4
    # 1080 training examples in batches of 16: 68 iterations per epoch, counted across the kill.
    restored = keras.models.load_model(run / "model.keras")
    assert int(keras.ops.convert_to_numpy(restored.train_iterations)) == 4 * 68
    assert int(keras.ops.convert_to_numpy(restored.optimizer.decoder_optimizer.iterations)) == 4 * 68


def test_backend_option_takes_effect_before_keras_is_imported(tmp_path, images_npz):
    # Each run of the suite (one per backend) checks its own backend.
    backend = keras.backend.backend()
    other = "jax" if backend != "jax" else "torch"  # the environment says otherwise
    env = dict(os.environ, KERAS_BACKEND=other, TF_CPP_MIN_LOG_LEVEL="3")
    command = _train_command("--dataset", images_npz, *FAST, "--backend", backend, "--output", tmp_path / "r")
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"on {backend}:" in result.stdout
    assert json.loads((tmp_path / "r" / "config.json").read_text())["train"]["backend"] == backend


def test_the_cli_offers_the_schedules_the_library_has():
    # cli.py offers keras_vae.names' lists: each name must build.
    from keras_vae import schedules
    from keras_vae.app import build, cli, config

    choices = {param.name: param.type.choices for param in cli.train.params if hasattr(param.type, "choices")}
    for name in choices["lr_schedule"]:
        assert schedules.learning_rate_schedule(name, 1e-3, 100) is not None
    for name in choices["beta_schedule"]:
        train_config = config.TrainConfig(beta_schedule=name, beta=0.5)
        assert isinstance(build.beta_schedule(train_config, 100), schedules.BetaSchedule)


def test_resume_accepts_the_config_file_that_started_the_run_and_finishes_a_run_killed_at_its_end(tmp_path, images_npz):
    config = tmp_path / "vae.toml"
    config.write_text(f'[train]\ndataset = "{images_npz}"\nlatent-dim = 2\nepochs = 2\nbatch-size = 32\n')
    run = tmp_path / "run"
    assert invoke("train", "--config", config, "--quiet", "--output", run).exit_code == 0
    # Killed after the last checkpoint, before the final files: resume writes them.
    for name in ("model.keras", "summary.json"):
        (run / name).unlink()
    result = invoke("train", "--config", config, "--resume", run, "--quiet")
    assert result.exit_code == 0, result.output
    assert (run / "model.keras").exists() and json.loads((run / "summary.json").read_text())["epochs"] == 2
    assert_one_line_error(invoke("train", "--resume", run), "already trained 2 epochs")


def test_lr_find_reads_the_model_of_a_runs_config(tmp_path, run):
    plot = tmp_path / "lr.png"
    result = invoke("lr-find", "--config", run / "config.json", "--steps", "20", "--quiet", "--output", plot)
    assert result.exit_code in (0, 1), result.output  # 1: too few steps for the loss to fall
    assert plot.exists() and (tmp_path / "lr.json").exists()


@pytest.mark.slow  # train, evaluate, sample and export in one: about 25 s
def test_a_conditional_count_model_trains_evaluates_samples_and_exports(tmp_path):
    from keras_vae.datasets import synthetic

    counts = synthetic.bulk_rnaseq(
        num_samples=160, num_genes=40, num_cell_types=3, num_batches=2, median_library_size=2e3
    )
    path = tmp_path / "counts.npz"
    np.savez(path, **synthetic.to_arrays(counts))
    output = tmp_path / "cvae"
    result = invoke(
        "train", "--dataset", path, "--likelihood", "zinb", "--condition", "batch", *FAST, "--output", output
    )
    assert result.exit_code == 0, result.output
    config = json.loads((output / "config.json").read_text())["train"]
    assert config["condition"] == ["batch"] and config["likelihood"] == "zinb"
    summary = json.loads((output / "summary.json").read_text())
    assert np.isfinite(summary["test"]["negative_elbo"]) and summary["test"]["kl_loss"] >= 0
    assert invoke("evaluate", output, "-k", "8").exit_code == 0
    evaluation = json.loads((output / "evaluation.json").read_text())
    assert evaluation["examples"] == 32 and np.isfinite(evaluation["importance_weighted_nll"])
    result = invoke("sample", output, "-n", "5", "--format", "npy")
    assert result.exit_code == 0, result.output
    samples = np.load(output / "samples" / "samples.npy")
    assert samples.shape == (5, 40) and np.all(samples >= 0)
    result = invoke("export", output, tmp_path / "export")
    assert result.exit_code == 0, result.output
    # Resuming with the same options (the condition given again) is accepted.
    result = invoke("train", "--resume", output, "--condition", "batch", "--quiet")
    assert result.exit_code == 2 and "already trained" in result.output
