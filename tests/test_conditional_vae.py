"""The conditional VAE: dict inputs, conditional sampling, counterfactuals, every training tool, saving, export."""

import os

import keras
import numpy as np
import pytest

from conftest import to_numpy
from keras_vae import callbacks, hub, likelihoods
from keras_vae.datasets import synthetic
from keras_vae.evaluation import metrics
from keras_vae.models import ConditionalVAE
from keras_vae.ops import latent

FEATURES = 8
CONDITIONS = {"batch": 3, "dose": None}


def shifted_data(n=384, seed=0):
    """Gaussian data whose mean is set by the batch (a large shift) and a dose (a small slope)."""
    rng = np.random.default_rng(seed)
    offsets = rng.normal(0, 3, (3, FEATURES)).astype("float32")
    batch = rng.integers(0, 3, n)
    dose = rng.uniform(-1, 1, n).astype("float32")
    x = offsets[batch] + 0.5 * dose[:, None] + rng.normal(0, 0.3, (n, FEATURES)).astype("float32")
    return {"x": x, "batch": batch, "dose": dose}, offsets


def small_cvae(condition_on=("encoder", "decoder"), likelihood="gaussian", seed=0, input_dim=FEATURES):
    keras.utils.set_random_seed(seed)
    return ConditionalVAE.from_input_shape(
        (input_dim,), CONDITIONS, latent_dim=2, likelihood=likelihood, condition_on=condition_on, seed=seed
    )


def trained_cvae(epochs=25, **kwargs):
    data, offsets = shifted_data()
    cvae = small_cvae(**kwargs)
    cvae.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = cvae.fit(data, epochs=epochs, batch_size=64, verbose=0).history
    return cvae, data, offsets, history


@pytest.fixture(scope="module")
def trained():
    """`trained(condition_on)`: `trained_cvae(condition_on=...)`, trained once per module. Read it, do not train it."""
    cache = {}

    def get(condition_on=("encoder", "decoder")):
        if condition_on not in cache:
            cache[condition_on] = trained_cvae(condition_on=condition_on)
        return cache[condition_on]

    return get


def test_trains_on_dict_inputs_and_lowers_the_loss(trained):
    cvae, data, _, history = trained()
    assert np.all(np.isfinite(history["loss"])) and min(history["kl_loss"]) >= 0
    # The shared run is seeded: its first 8 epochs are an 8-epoch run's.
    assert history["loss"][7] < 0.5 * history["loss"][0]
    z_mean, z_log_var = cvae.encode(data)
    assert to_numpy(z_mean).shape == (384, 2) and to_numpy(z_log_var).shape == (384, 2)
    assert cvae.condition_dim == 4  # three one-hot columns and the dose


@pytest.mark.parametrize("condition_on", [("encoder", "decoder"), ("decoder",)])
def test_conditional_samples_follow_the_condition(trained, condition_on):
    cvae, _, offsets, _ = trained(condition_on)
    for batch in range(3):
        samples = to_numpy(cvae.sample(200, condition={"batch": batch, "dose": 0.0}, seed=batch))
        assert samples.shape == (200, FEATURES)
        distances = np.linalg.norm(offsets - samples.mean(axis=0), axis=1)
        # The decoder's mean under each batch sits at that batch's offset, not another's.
        assert np.argmin(distances) == batch and distances[batch] < 0.5 * np.sort(distances)[1]


def test_counterfactual_decoding_moves_examples_to_the_other_batch(trained):
    cvae, data, offsets, _ = trained()
    in_batch_1 = data["batch"] == 1
    inputs = {name: values[in_batch_1] for name, values in data.items()}
    as_observed = to_numpy(cvae.reconstruct(inputs))
    as_batch_0 = to_numpy(cvae.reconstruct(inputs, condition={"batch": 0}))
    assert np.linalg.norm(as_observed.mean(0) - offsets[1]) < 0.5
    assert np.linalg.norm(as_batch_0.mean(0) - offsets[0]) < 0.5


def test_a_missing_condition_is_one_line_saying_what_to_pass():
    cvae = small_cvae()
    data, _ = shifted_data(8)
    with pytest.raises(ValueError) as error:
        cvae.encode({"x": data["x"], "batch": data["batch"]})
    assert "dose missing" in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(ValueError, match="dict of inputs"):
        cvae.encode(data["x"])
    with pytest.raises(ValueError, match="pass condition="):
        cvae.sample(2)


@pytest.mark.parametrize(
    "conditions",
    [{}, {"x": 2}, {"batch": 1}, {"batch": 2.5}, {"batch": True}],
    ids=["none", "x", "one", "fraction", "bool"],
)
def test_bad_conditions_are_refused(conditions):
    with pytest.raises(ValueError):
        ConditionalVAE.from_input_shape((FEATURES,), conditions)


def test_aggressive_training_and_the_diagnostics_callbacks_take_dict_inputs(tmp_path):
    data, _ = shifted_data(256)
    cvae = small_cvae()
    cvae.compile(aggressive=True, max_inner_steps=4, inner_check_every=2, free_bits=0.1, beta=0.5)
    dynamics = callbacks.LatentDynamics(data, str(tmp_path))
    history = cvae.fit(
        data,
        epochs=2,
        batch_size=64,
        validation_data=(data,),
        callbacks=[
            dynamics,
            callbacks.LatentSpacePlot(data, data["batch"], str(tmp_path)),
            callbacks.CollapseMonitor(data),
        ],
        verbose=0,
    ).history
    assert history["encoder_steps"][0] >= 2 and np.all(np.isfinite(history["val_mutual_info"]))
    assert len(dynamics.records) == 2 and (tmp_path / "latent_space_epoch_002.png").is_file()
    statistics = latent.latent_statistics(cvae, data)
    assert len(statistics["kl_per_dim"]) == 2 and statistics["kl"] >= 0


def test_importance_weighted_nll_is_finite_and_tighter_than_the_elbo(trained):
    cvae, data, _, _ = trained()
    subset = {name: values[:64] for name, values in data.items()}
    elbo = cvae.evaluate(subset, verbose=0, return_dict=True)
    nll = to_numpy(metrics.importance_weighted_nll(cvae, subset, num_samples=64, seed=0))
    assert nll.shape == (64,) and np.all(np.isfinite(nll))
    assert nll.mean() <= elbo["reconstruction_loss"] + elbo["kl_loss"] + 0.05


def test_saved_and_reloaded_model_gives_the_same_outputs(trained, tmp_path):
    cvae, data, _, _ = trained(("decoder",))
    path = str(tmp_path / "cvae.keras")
    cvae.save(path)
    reloaded = keras.saving.load_model(path)
    assert isinstance(reloaded, ConditionalVAE) and reloaded.conditions == CONDITIONS
    assert reloaded.condition_on == ("decoder",)
    np.testing.assert_allclose(to_numpy(reloaded.embed(data)), to_numpy(cvae.embed(data)), atol=1e-6)
    np.testing.assert_allclose(
        to_numpy(reloaded.reconstruct(data, condition={"batch": 2})),
        to_numpy(cvae.reconstruct(data, condition={"batch": 2})),
        atol=1e-5,
    )


def test_an_export_takes_the_conditions_by_name(trained, tmp_path):
    tf = pytest.importorskip("tensorflow")
    cvae, data, _, _ = trained()
    differences = hub.export(cvae, str(tmp_path / "export"))
    assert set(differences) >= {"decode/mean", "encode/z_mean"}
    loaded = tf.saved_model.load(str(tmp_path / "export"))
    inputs = {name: values[:5] for name, values in data.items()}
    observed = {"batch": tf.constant(inputs["batch"], tf.float32), "dose": tf.constant(inputs["dose"])}
    # A counterfactual through the signatures: embed under the observed batch, decode under batch 0.
    z = loaded.signatures["embed"](x=tf.constant(inputs["x"]), **observed)["z_mean"]
    decoded = loaded.signatures["decode"](z=z, batch=tf.zeros(5), dose=observed["dose"])["mean"]
    expected = to_numpy(cvae.reconstruct(inputs, condition={"batch": 0}))
    np.testing.assert_allclose(decoded.numpy(), expected, atol=1e-4, rtol=1e-4)
    reconstructed = loaded.signatures["reconstruct"](x=tf.constant(inputs["x"]), **observed)["mean"]
    np.testing.assert_allclose(reconstructed.numpy(), to_numpy(cvae.reconstruct(inputs)), atol=1e-4, rtol=1e-4)
    assert hub.read_metadata(str(tmp_path / "export"))["conditions"] == CONDITIONS


@pytest.mark.parametrize(
    "likelihood",
    ["poisson", "nb", "zinb", likelihoods.NegativeBinomial(dispersion="gene-condition")],
    ids=["poisson", "nb", "zinb", "nb-gene-condition"],
)
def test_count_models_train_without_nan_on_synthetic_rnaseq(likelihood):
    counts = synthetic.bulk_rnaseq(num_samples=256, num_genes=60, num_cell_types=3, num_batches=2, dropout=0.1, seed=1)
    data = {"x": counts.counts.astype("float32"), "batch": counts.batch}
    keras.utils.set_random_seed(0)
    cvae = ConditionalVAE.from_input_shape((60,), {"batch": 2}, latent_dim=3, likelihood=likelihood, seed=0)
    cvae.compile(beta=0.5, free_bits=0.05)
    cvae.initialize_decoder_bias(data)
    history = cvae.fit(data, epochs=4, batch_size=32, verbose=0).history
    for key in ("loss", "reconstruction_loss", "kl_loss"):
        assert np.all(np.isfinite(history[key])), history[key]
    assert history["loss"][-1] < history["loss"][0] and min(history["kl_loss"]) >= 0
    samples = to_numpy(cvae.sample(5, condition={"batch": 1}))
    assert samples.shape == (5, 60) and np.all(np.isfinite(samples)) and np.all(samples >= 0)


@pytest.mark.slow  # the example's full-size data (2000 samples x 1000 genes), its probes and figures
def test_the_rnaseq_example_logs_in_the_diagnostics_guides_format_and_plots_by_cell_type_and_batch(
    tmp_path, monkeypatch, capsys
):
    import re
    import runpy

    # In this process: what is tested is the script, not a process boundary.
    example = os.path.join(os.path.dirname(__file__), os.pardir, "examples", "rnaseq_cvae.py")
    monkeypatch.setattr("sys.argv", [example, "--epochs", "2", "--replicates", "2", "--output", str(tmp_path)])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(example, run_name="__main__")
    stdout = capsys.readouterr().out
    assert exit_.value.code == 0, stdout[-2000:]
    epoch_lines = [line for line in stdout.splitlines() if line.startswith("epoch ")]
    pattern = (
        r"epoch 00[12] \| train loss=\d+\.\d{4} recon=\d+\.\d{4} kl=\d+\.\d{4}( beta=0\.5000)? \| val loss=\d+\.\d{4}"
    )
    assert len(epoch_lines) == 2 and all(re.fullmatch(pattern, line) for line in epoch_lines), epoch_lines
    assert "Diagnosis:" in stdout and "latent space (held out): cell type" in stdout
    for name in ("latent_by_cell_type.png", "latent_by_batch.png", "training_curves.png", "predictive_check.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert "integration (held out): silhouette by cell type" in stdout and "posterior predictive check" in stdout
    try:  # UMAP figures with the [umap] extra; without it, one line that says how to install it
        import umap  # noqa: F401

        assert all((tmp_path / f"latent_by_{by}_umap.png").stat().st_size > 0 for by in ("cell_type", "batch"))
    except ImportError:
        assert 'no UMAP figures: The UMAP projection needs umap-learn: pip install "keras-vae[umap]"' in stdout
