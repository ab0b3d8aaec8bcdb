"""`keras-vae check` and `keras-vae embed` on a small count run: the posterior predictive check, and
AnnData / .npz written back with the counts untouched."""

import json
import os
import sys
import types

import anndata
import numpy as np
import pytest
from click.testing import CliRunner

from keras_vae import callbacks, plotting
from keras_vae.app.cli import main
from keras_vae.datasets import synthetic

pytestmark = pytest.mark.backend_independent  # the command line; the models are tested per backend elsewhere


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def count_run(tmp_path_factory):
    """A two-epoch ZINB cVAE (batch) on 160 synthetic samples x 24 genes with dropout, and its data."""
    directory = tmp_path_factory.mktemp("counts")
    data = synthetic.bulk_rnaseq(num_samples=160, num_genes=24, median_library_size=2e3, dropout=0.2, seed=1)
    arrays = synthetic.to_arrays(data, seed=1)
    np.savez(directory / "counts.npz", **arrays)
    run = directory / "run"
    result = invoke(
        "train", "--dataset", directory / "counts.npz", "--likelihood", "zinb", "--condition", "batch",
        "--epochs", "2", "--batch-size", "32", "--latent-dim", "2", "--quiet", "--output", run,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return run, arrays


def test_check_writes_the_summary_and_the_figure(count_run):
    run, arrays = count_run
    result = invoke("check", run, "--replicates", "3", "--quiet")
    assert result.exit_code == 0, result.output
    assert "zero fraction" in result.output and "coverage" in result.output
    written = json.loads((run / "predictive_check.json").read_text())
    assert written["replicates"] == 3 and written["examples"] == len(arrays["x_test"])
    observed = np.asarray(written["observed"]["zero_fraction"])
    np.testing.assert_allclose(observed, (arrays["x_test"] == 0).mean(axis=0), atol=1e-12)
    for statistic in ("mean", "variance", "zero_fraction"):
        numbers = written["summary"][statistic]
        assert np.isfinite(numbers["error"]) and 0 <= numbers["coverage"] <= 1
        assert len(written["predicted"][statistic]) == arrays["x_test"].shape[1]
    assert (run / "predictive_check.png").stat().st_size > 0


@pytest.fixture(scope="module")
def h5ad_input(count_run, tmp_path_factory):
    _, arrays = count_run
    path = tmp_path_factory.mktemp("tables") / "input.h5ad"
    obs = {"batch": arrays["batch_test"], "cell_type": np.array(["type"] * len(arrays["x_test"]))}
    table = anndata.AnnData(X=arrays["x_test"].astype(np.float32), obs=obs)
    table.obs_names = [f"sample-{i}" for i in range(table.n_obs)]
    table.write_h5ad(path)
    return path


def test_embed_round_trips_an_h5ad_in_batches_with_the_counts_untouched(count_run, h5ad_input, tmp_path):
    run, arrays = count_run
    output = tmp_path / "embedded.h5ad"
    result = invoke("embed", run, h5ad_input, "--output", output, "--condition", "batch=0", "--batch-size", "7")
    assert result.exit_code == 0, result.output
    original, embedded = anndata.read_h5ad(h5ad_input), anndata.read_h5ad(output)
    np.testing.assert_array_equal(embedded.X, original.X)
    assert list(embedded.obs_names) == list(original.obs_names)
    assert embedded.obsm["X_keras_vae"].shape == (original.n_obs, 2)
    assert np.all(np.isfinite(embedded.obsm["X_keras_vae"]))
    normalized = embedded.layers["keras_vae_normalized"]
    np.testing.assert_allclose(normalized.sum(axis=1), 1e4, rtol=1e-4)
    counterfactual = embedded.layers["keras_vae_counterfactual"]
    assert counterfactual.shape == normalized.shape
    # Samples already in batch 0 decode the same under batch 0; the others change.
    in_batch_0 = arrays["batch_test"] == 0
    np.testing.assert_allclose(counterfactual[in_batch_0], normalized[in_batch_0], rtol=1e-4)
    assert not np.allclose(counterfactual[~in_batch_0], normalized[~in_batch_0], rtol=1e-3)
    settings = json.loads(embedded.uns["keras_vae"])
    assert settings["likelihood"] == "zinb" and settings["counterfactual"] == {"batch": 0}
    assert settings["conditions"] == ["batch"] and settings["library_size"] == 1e4


def test_embed_writes_npz_at_each_rows_own_library(count_run, h5ad_input, tmp_path):
    run, arrays = count_run
    output = tmp_path / "embedded.npz"
    result = invoke("embed", run, h5ad_input, "--output", output, "--library-size", "own")
    assert result.exit_code == 0, result.output
    with np.load(output) as written:
        assert written["latent"].shape == (len(arrays["x_test"]), 2) and "counterfactual" not in written
        np.testing.assert_allclose(written["normalized"].sum(axis=1), arrays["x_test"].sum(axis=1), rtol=1e-4)
        assert json.loads(str(written["settings"]))["library_size"] == "own"


@pytest.mark.parametrize(
    "options, message",
    [
        (["--condition", "donor=1"], "no condition 'donor'"),
        (["--library-size", "-3"], "--library-size must be a positive number"),
        (["--condition", "batch=zero"], "NAME=VALUE"),
    ],
)
def test_embed_refuses_bad_options_in_one_line(count_run, h5ad_input, tmp_path, options, message):
    run, _ = count_run
    result = invoke("embed", run, h5ad_input, "--output", tmp_path / "out.h5ad", *options)
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "out.h5ad").exists()


def test_diagnose_draws_the_latent_space_by_label_and_by_batch(count_run):
    run, _ = count_run
    result = invoke("diagnose", run, "--projection", "pca")
    assert result.exit_code == 0, result.output
    for name in ("label", "batch"):
        assert (run / f"latent_pca_by_{name}.png").stat().st_size > 0
        assert f"latent_pca_by_{name}.png" in result.output


@pytest.fixture
def without_umap(monkeypatch):
    monkeypatch.setitem(sys.modules, "umap", None)  # `import umap` raises ImportError, installed or not


def test_a_umap_projection_without_the_extra_says_how_to_install_it(without_umap, tmp_path):
    result = invoke(
        "train", "--dataset", tmp_path / "none.npz", "--projection", "umap", "--output", tmp_path / "run", "--quiet"
    )
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and 'pip install "keras-vae[umap]"' in result.output
    assert not (tmp_path / "run").exists()
    result = invoke("diagnose", tmp_path / "no-run", "--projection", "umap")
    assert result.exit_code == 2 and 'pip install "keras-vae[umap]"' in result.output, result.output
    with pytest.raises(ImportError, match=r"keras-vae\[umap\]"):
        callbacks.LatentSpacePlot(np.zeros((10, 4)), None, tmp_path, projection="umap")
    with pytest.raises(ImportError, match=r"keras-vae\[umap\]"):
        plotting.plot_latent_space(np.zeros((10, 3)), str(tmp_path / "latent.png"), projection="umap")


class FakeUMAP:
    """umap-learn's interface (CI does not install the extra: its numba compilation takes a minute)."""

    calls = []

    def __init__(self, n_components, n_neighbors, random_state):
        self.calls.append({"n_components": n_components, "n_neighbors": n_neighbors, "random_state": random_state})

    def fit_transform(self, z):
        return np.asarray(z)[:, :2] * 2.0


def test_the_umap_projection_calls_umap_learn_and_draws_the_latent_space(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "umap", types.SimpleNamespace(UMAP=FakeUMAP, __spec__=object()))
    plotting.check_projection("umap")  # the extra counts as installed
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 120)
    z = 5.0 * np.eye(3)[labels] + rng.normal(size=(120, 3))
    points = plotting.project_2d(z, "umap", seed=7)
    np.testing.assert_allclose(points, z[:, :2] * 2.0)
    assert FakeUMAP.calls[-1] == {"n_components": 2, "n_neighbors": 15, "random_state": 7}
    path = plotting.plot_latent_space(z, str(tmp_path / "latent.png"), labels=labels, projection="umap")
    assert os.path.getsize(path) > 0
