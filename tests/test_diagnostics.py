import json
import math

import keras
import numpy as np
import pytest

from conftest import INPUT_SHAPE, small_vae, to_numpy
from keras_vae import likelihoods
from keras_vae.evaluation import assessment, diagnostics, metrics, variance_phases
from keras_vae.models import VAE
from keras_vae.ops import latent


def test_posterior_equal_to_the_prior_has_no_kl_no_active_units_and_unit_variance():
    zeros = np.zeros((500, 4), "float32")
    np.testing.assert_allclose(to_numpy(latent.kl_per_dimension(zeros, zeros)), 0.0, atol=1e-7)
    np.testing.assert_allclose(to_numpy(latent.posterior_variance(zeros)), 1.0, rtol=1e-6)
    assert int(to_numpy(latent.active_units(zeros))) == 0


def test_an_encoder_that_copies_its_input_into_the_mean_has_every_dimension_active():
    x = np.random.default_rng(0).normal(size=(500, 5)).astype("float32")
    assert int(to_numpy(latent.active_units(x))) == 5
    half_active = x * np.array([1, 1, 1, 0.01, 0.0], "float32")
    assert int(to_numpy(latent.active_units(half_active))) == 3
    log_var = np.full((500, 5), math.log(0.25), "float32")
    np.testing.assert_allclose(to_numpy(latent.posterior_variance(log_var)), 0.25, rtol=1e-5)
    kl = to_numpy(latent.kl_per_dimension(x, log_var))
    expected = 0.5 * (x**2 + 0.25 - math.log(0.25) - 1).mean(0)
    np.testing.assert_allclose(kl, expected, rtol=1e-5)


def prior_vae(bias):
    """Encoder = prior for every x, decoder ignores z: then log p(x) is known exactly."""
    inputs = keras.Input(INPUT_SHAPE)
    flat = keras.layers.Flatten()(inputs)
    heads = [keras.layers.Dense(2, kernel_initializer="zeros", bias_initializer="zeros")(flat) for _ in range(2)]
    encoder = keras.Model(inputs, heads)
    z = keras.Input((2,))
    logits = keras.layers.Dense(
        math.prod(INPUT_SHAPE), kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(bias)
    )(z)
    decoder = keras.Model(z, keras.layers.Reshape(INPUT_SHAPE)(logits))
    return VAE(encoder, decoder, seed=0)


def test_importance_weighted_nll_is_exact_when_the_posterior_is_exact(images):
    vae = prior_vae(bias=0.3)
    x = images[:10]
    exact = -to_numpy(likelihoods.bernoulli_log_prob(x, np.full(x.shape, 0.3, "float32")))
    for chunk_size in (None, 3):
        nll = to_numpy(metrics.importance_weighted_nll(vae, x, num_samples=20, chunk_size=chunk_size, seed=1))
        assert nll.shape == (10,)
        np.testing.assert_allclose(nll, exact, rtol=1e-5)


def test_importance_weighted_nll_is_exact_for_a_linear_gaussian_model():
    # p(z) = N(0, 1), p(x|z) = N(z, s²): p(x) = N(0, 1 + s²), and the exact
    # posterior N(x / (1 + s²), s² / (1 + s²)) makes every importance weight equal.
    s2 = 0.25
    x_in = keras.Input((1,))
    encoder = keras.Model(
        x_in,
        [
            keras.layers.Dense(
                1, kernel_initializer=keras.initializers.Constant(1 / (1 + s2)), bias_initializer="zeros"
            )(x_in),
            keras.layers.Dense(
                1, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(math.log(s2 / (1 + s2)))
            )(x_in),
        ],
    )
    z_in = keras.Input((1,))
    decoder = keras.Model(z_in, keras.layers.Dense(1, kernel_initializer="ones", bias_initializer="zeros")(z_in))
    vae = VAE(encoder, decoder, likelihood=likelihoods.Gaussian(scale=math.sqrt(s2)))
    x = np.linspace(-2.0, 2.0, 9, dtype="float32")[:, None]
    exact = 0.5 * (x[:, 0] ** 2 / (1 + s2) + math.log(2 * math.pi * (1 + s2)))
    nll = to_numpy(metrics.importance_weighted_nll(vae, x, num_samples=7, chunk_size=2, seed=3))
    np.testing.assert_allclose(nll, exact, rtol=1e-4)


def test_importance_weighted_nll_tightens_the_elbo(trained_vae, images):
    vae = trained_vae  # small_vae() after 3 epochs on images
    x = images[:64]
    neg_elbo = np.mean([float(to_numpy(vae.evaluate(x, verbose=0, return_dict=True)["loss"])) for _ in range(5)])
    nll = to_numpy(metrics.importance_weighted_nll(vae, x, num_samples=200, seed=0))
    assert np.all(np.isfinite(nll))
    assert nll.mean() <= neg_elbo + 0.05


def test_latent_statistics_summarise_the_encoder(images):
    vae = small_vae(latent_dim=3)
    stats = latent.latent_statistics(vae, images[:300], batch_size=100)
    assert len(stats["kl_per_dim"]) == len(stats["variance_per_dim"]) == len(stats["activity_per_dim"]) == 3
    np.testing.assert_allclose(stats["kl"], sum(stats["kl_per_dim"]), rtol=1e-5)
    assert 0 <= stats["active_units"] <= 3
    assert stats["mutual_info"] < math.log(100) + 0.2


def healthy_history(epochs=10):
    t = np.arange(epochs)
    kl = 20 - 8 * np.exp(-t)
    reconstruction = 80 + 70 * np.exp(-t / 2)
    return {
        "loss": list(reconstruction + kl),
        "reconstruction_loss": list(reconstruction),
        "kl_loss": list(kl),
        "val_loss": list(reconstruction + kl + 1),
    }


@pytest.mark.backend_independent
def test_diagnose_passes_a_healthy_run_line_by_line():
    diagnosis = diagnostics.diagnose(healthy_history(), latent_dim=32)
    assert diagnosis.healthy, str(diagnosis)
    report = str(diagnosis)
    for line in ("Total loss decreasing", "Reconstruction improving", "KL increasing then stabilizing", "Train ≈ val"):
        assert f"✅ {line}" in report
    assert "healthy" in report.splitlines()[-1]


@pytest.mark.backend_independent
def test_diagnose_names_collapse_and_its_remedies():
    history = healthy_history()
    history["kl_loss"] = [0.5, 0.05, 0.01, 0.005, 0.004, 0.004, 0.004, 0.004, 0.004, 0.004]
    curves = [{"active_units": 0, "mutual_info": 0.01}]
    diagnosis = diagnostics.diagnose(history, latent_dim=32, latent_curves=curves)
    assert not diagnosis.healthy
    failed = {c.name for c in diagnosis.checks if not c.passed}
    assert {"No posterior collapse", "KL in the healthy range"} <= failed
    assert "no active units" in str(diagnosis) and "free bits" in str(diagnosis)
    conclusion = str(diagnosis).splitlines()[-2]
    assert conclusion.startswith("Conclusion: needs attention") and "posterior collapse (" in conclusion
    assert "No posterior collapse" not in conclusion  # a failed check is named by its problem, not its name


@pytest.mark.backend_independent
def test_diagnose_flags_a_train_val_gap_and_needs_two_epochs():
    history = healthy_history()
    history["val_loss"] = [v * 1.5 for v in history["val_loss"]]
    failed = [c.name for c in diagnostics.diagnose(history, latent_dim=32).checks if not c.passed]
    assert failed == ["Train ≈ val"]
    with pytest.raises(ValueError, match="two epochs"):
        diagnostics.diagnose({"loss": [1.0], "reconstruction_loss": [1.0], "kl_loss": [1.0]}, latent_dim=2)


@pytest.mark.backend_independent
def test_read_history_csv_reads_keras_csv_logger(images, tmp_path):
    vae = small_vae()
    vae.compile()
    path = tmp_path / "history.csv"
    history = vae.fit(images[:64], epochs=2, batch_size=32, verbose=0, callbacks=[keras.callbacks.CSVLogger(str(path))])
    read = diagnostics.read_history_csv(path)
    np.testing.assert_allclose(read["loss"], history.history["loss"], rtol=1e-5)
    assert read["epoch"] == [0.0, 1.0]


@pytest.mark.backend_independent
def test_training_curves_figure_is_written(tmp_path):
    import matplotlib.image

    from keras_vae import plotting

    records = [{"epoch": e, "variance_per_dim": [0.1 * e, 0.2]} for e in (1, 2, 3)]
    path = plotting.plot_training_curves(healthy_history(3), str(tmp_path / "curves.png"), latent_records=records)
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[1] > 3 * image.shape[0]  # four panels side by side


@pytest.mark.backend_independent
def test_collapse_curves_figure_has_one_line_per_run_and_a_symlog_kl_axis(tmp_path, monkeypatch):
    import matplotlib.image

    from keras_vae import plotting

    def records(kl):
        return [{"step": s, "kl": kl * s, "mutual_info": 0.1 * s, "active_units": s} for s in (1, 10, 20)]

    figures = []
    save_figure = plotting.save_figure
    monkeypatch.setattr(
        plotting, "save_figure", lambda figure, path: figures.append(figure) or save_figure(figure, path)
    )
    path = plotting.plot_collapse_curves(
        {"basic": records(0.01), "aggressive": records(3.0), "language model": []}, str(tmp_path / "c.png"), title="t"
    )
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[1] > 2.5 * image.shape[0]  # three panels side by side, the legend below
    kl_axis, mi_axis, units_axis = figures[0].axes
    assert kl_axis.get_yscale() == "symlog" and mi_axis.get_yscale() == "linear"
    assert [len(axis.get_lines()) for axis in (kl_axis, mi_axis, units_axis)] == [2, 2, 2]
    np.testing.assert_allclose(kl_axis.get_lines()[1].get_ydata(), [3.0, 30.0, 60.0])
    assert [text.get_text() for text in figures[0].legends[0].get_texts()] == ["basic", "aggressive"]  # no empty entry


# ------------------------------------------------------------------ each check, a curve that passes and one that fails
def _history(kl=None, loss=None, reconstruction=None, val_loss=None):
    history = healthy_history()
    for key, value in (
        ("kl_loss", kl),
        ("loss", loss),
        ("reconstruction_loss", reconstruction),
        ("val_loss", val_loss),
    ):
        if value is not None:
            history[key] = list(value)
    return history


CHECK_CURVES = {
    "Total loss decreasing": ({"loss": [150, 120, 100]}, {"loss": [100, 120, 130]}),
    "Reconstruction improving": ({"reconstruction": [150, 120, 100]}, {"reconstruction": [100, 100, 101]}),
    # The report of issue 23: KL 20.36 → 14.06, falling all along, was passed as "increasing".
    "KL increasing then stabilizing": (
        {"kl": [4, 12, 18, 20, 20.2, 20.1, 20.2, 20.2]},
        {"kl": [20.36, 18.2, 16.5, 15.3, 14.6, 14.3, 14.1, 14.06]},
    ),
    "KL in the healthy range": ({"kl": [10, 15, 16, 16]}, {"kl": [0.5, 0.3, 0.3, 0.3]}),
    "Train ≈ val": ({"val_loss": None}, {"val_loss": "far"}),
}


@pytest.mark.backend_independent
@pytest.mark.parametrize("name", list(CHECK_CURVES))
def test_each_check_passes_its_curve_and_fails_the_opposite(name):
    for curves, expected in zip(CHECK_CURVES[name], (True, False), strict=True):
        history = _history(**{k: v for k, v in curves.items() if k != "val_loss"})
        if curves.get("val_loss") == "far":
            history["val_loss"] = [value * 1.5 for value in history["loss"]]
        epochs = min(len(value) for value in history.values())
        history = {key: value[:epochs] for key, value in history.items()}
        checks = {c.name: c for c in diagnostics.diagnose(history, latent_dim=32).checks}
        assert checks[name].passed is expected, (name, curves, checks[name].detail)


@pytest.mark.backend_independent
def test_kl_check_fails_a_kl_still_rising_and_says_why():
    passed, detail, problem = diagnostics.kl_rose_then_settled([1, 4, 8, 12, 16, 20, 24, 28])
    assert not passed and "still moving" in detail and "not settled" in problem
    passed, detail, problem = diagnostics.kl_rose_then_settled([20.36, 18.0, 14.06])
    assert not passed and "fell throughout" in detail and "20.36 → 14.06" in problem


def fake_assessment(verdict_inputs=None, **overrides):
    """An `Assessment` of an informative, used, 8-dimensional code, with `overrides`, judged."""
    values = dict(
        latent_dim=8,
        examples=1000,
        kl=8.0,
        kl_per_dim=[1.0] * 8,
        variance_per_dim=[0.2] * 8,
        activity_per_dim=[0.8] * 8,
        mutual_info_per_dim=[0.5] * 8,
        mutual_info_share=[1 / 8] * 8,
        active=[True] * 8,
        active_rule="",
        mutual_info=3.0,
        mutual_info_interval=(2.9, 3.1),
        mutual_info_bound=math.log(1000),
        log_likelihood_own=-100.0,
        log_likelihood_shuffled=-130.0,
        log_likelihood_prior=-125.0,
        decoder_gap=30.0,
        decoder_gap_interval=(28.0, 32.0),
    )
    values.update(overrides)
    return assessment.judge(assessment.Assessment(**values))


DEAD = dict(mutual_info_per_dim=[0.0] * 8, active=[False] * 8, mutual_info_share=[0.0] * 8)


@pytest.mark.backend_independent
@pytest.mark.parametrize(
    "overrides, verdict",
    [
        ({}, assessment.HEALTHY),
        # No information (the interval reaches 0) and a decoder that scores every z alike.
        (
            dict(
                mutual_info=0.03,
                mutual_info_interval=(-0.15, 0.2),
                decoder_gap=0.01,
                decoder_gap_interval=(-0.05, 0.07),
                **DEAD,
            ),
            assessment.COLLAPSED,
        ),
        # Informative encoder, but the decoder ignores z.
        (dict(decoder_gap=0.02, decoder_gap_interval=(-0.01, 0.05)), assessment.COLLAPSED),
        # β = 8 leaves 6 of 8 dimensions dead, or all of them.
        (dict(beta=8.0, active=[True, True] + [False] * 6), assessment.OVER_REGULARIZED),
        (dict(beta=8.0, mutual_info=0.0, mutual_info_interval=(-0.01, 0.01), **DEAD), assessment.OVER_REGULARIZED),
        # Free bits hold every dimension's KL at the floor with no information in it.
        (dict(free_bits=0.25, kl_per_dim=[0.25] * 8, **DEAD, mutual_info_interval=(0.0, 0.2)), assessment.FORCED),
        # Free bits hold 2 nats of KL that buy 1.5 nats of reconstruction (own z against a prior draw).
        (dict(free_bits=0.25, kl=2.0, log_likelihood_own=-100.0, log_likelihood_prior=-101.5), assessment.FORCED),
        (dict(free_bits=0.25, kl=2.0, log_likelihood_own=-100.0, log_likelihood_prior=-125.0), assessment.HEALTHY),
        (
            dict(
                latent_dim=32,
                active=[True] + [False] * 31,
                kl_per_dim=[1.0] * 32,
                mutual_info_per_dim=[0.5] + [0.0] * 31,
            ),
            assessment.PARTIAL,
        ),
    ],
)
def test_judge_gives_each_verdict_from_its_evidence(overrides, verdict):
    result = fake_assessment(**overrides)
    assert result.verdict == verdict, result.evidence
    assert bool(result.remedies) == (verdict != assessment.HEALTHY)
    assert result.healthy == (verdict == assessment.HEALTHY)
    assert assessment.Assessment.from_dict(json.loads(json.dumps(result.to_dict()))).verdict == verdict


@pytest.mark.backend_independent
def test_diagnose_concludes_with_the_assessment_verdict():
    collapsed = fake_assessment(
        decoder_gap=0.0, decoder_gap_interval=(-0.1, 0.1), **DEAD, mutual_info_interval=(-0.1, 0.1)
    )
    diagnosis = diagnostics.diagnose(healthy_history(), latent_dim=32, assessment=collapsed)
    assert not diagnosis.healthy and diagnosis.verdict == "collapsed"
    assert str(diagnosis).splitlines()[-1].startswith("Conclusion: collapsed")
    assert {c.name for c in diagnosis.checks if not c.passed} == {"No posterior collapse"}
    # KL that only fell: the check says so, but the measured healthy code decides the verdict.
    history = _history(kl=[20.36, 18.2, 16.5, 15.3, 14.6, 14.3, 14.1, 14.06, 14.06, 14.06])
    diagnosis = diagnostics.diagnose(history, latent_dim=32, assessment=fake_assessment())
    assert diagnosis.healthy and "the KL fell throughout (20.36 → 14.06)" in str(diagnosis)


@pytest.mark.backend_independent
def test_code_information_is_zero_for_the_prior_and_bounded_by_log_n():
    # The mixture densities are float32: zero up to its rounding.
    zeros = np.zeros((400, 6))
    mutual_info, (low, high), per_dim = assessment.code_information(zeros, zeros)
    assert abs(mutual_info) < 1e-6 and low - 1e-6 <= mutual_info <= high + 1e-6 and np.allclose(per_dim, 0.0, atol=1e-6)
    rng = np.random.default_rng(0)
    sharp_mean, sharp_log_var = rng.normal(size=(400, 6)) * 3, np.full((400, 6), -8.0)
    mutual_info, (low, high), per_dim = assessment.code_information(sharp_mean, sharp_log_var)
    assert math.log(400) - 0.05 < mutual_info <= math.log(400) + 1e-6 and high - low < 0.05
    one_dim = sharp_mean * np.array([1, 0, 0, 0, 0, 0])  # only dimension 0 varies with x
    _, _, per_dim = assessment.code_information(one_dim, np.full((400, 6), -1.0))
    assert per_dim[0] > 1.0 and np.all(np.abs(per_dim[1:]) < 0.01)


@pytest.mark.backend_independent
def test_variance_phases_find_small_expanding_and_equilibrium():
    sigma2 = [0.05, 0.02, 0.01, 0.03, 0.09, 0.2, 0.21, 0.21, 0.21]
    records = [{"epoch": e + 1, "variance_per_dim": [v, v * 1.1]} for e, v in enumerate(sigma2)]
    phases = variance_phases.variance_phases(records)
    assert [p[0] for p in phases] == [variance_phases.SMALL, variance_phases.EXPANDING, variance_phases.EQUILIBRIUM]
    assert phases[0][1:] == (1.0, 3.0) and phases[1][1:] == (3.0, 6.0) and phases[2][1:] == (6.0, 9.0)
    only_falling = [{"epoch": e + 1, "variance_per_dim": [1.0 / (e + 1)]} for e in range(5)]
    assert variance_phases.EXPANDING not in [p[0] for p in variance_phases.variance_phases(only_falling)]


def test_assess_tells_a_used_code_from_a_collapsed_one(images):
    vae = small_vae()
    vae.compile(optimizer=keras.optimizers.Adam(3e-3))
    vae.fit(images, epochs=6, batch_size=16, verbose=0)
    used = assessment.assess(vae, images[:300], batch_size=100)
    assert used.verdict == assessment.HEALTHY, str(used)
    assert used.decoder_gap_interval[0] > 1.0 and used.mutual_info_interval[0] > 0.5
    assert len(used.kl_per_dim) == len(used.mutual_info_per_dim) == 3 and all(k >= 0 for k in used.kl_per_dim)
    assert used.mutual_info <= used.mutual_info_bound + 1e-6
    collapsed = small_vae()
    for variable in collapsed.encoder.trainable_variables:
        variable.assign(np.zeros(variable.shape, "float32"))
    result = assessment.assess(collapsed, images[:300], batch_size=100)
    assert result.verdict == assessment.COLLAPSED and result.active_units == 0
    assert abs(result.decoder_gap) < 0.2 and result.mutual_info_interval[1] < 0.05
