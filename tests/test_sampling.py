"""`Likelihood.draw` on every family against SciPy's moments, and the count likelihoods' refusal of non-counts.

Each family draws 20 000 values per parameter setting; means, variances and
zero fractions must lie within 5 standard errors of SciPy's (a seed-independent
bound: a wrong variance or zero mass by a few percent fails it).
"""

import numpy as np
import pytest
from scipy import stats

import keras_vae
from conftest import to_numpy
from keras_vae import likelihoods

DRAWS = 20_000


def assert_moments(draws, distribution=None, mean=None, variance=None, zero=None):
    """Mean, variance and P(0) of `draws` (one column per setting) against a frozen SciPy distribution's,
    or against the moments given."""
    draws = draws.astype("float64")
    if distribution is not None:
        mean, variance = distribution.mean(), distribution.var()
        zero = distribution.pmf(0) if hasattr(distribution, "pmf") else None
    np.testing.assert_array_less(np.abs(draws.mean(0) - mean), 5 * np.sqrt(variance / len(draws)) + 1e-9)
    # Var of the sample variance ≈ (μ4 - σ⁴)/n; μ4 from the draws themselves.
    fourth = ((draws - draws.mean(0)) ** 4).mean(0)
    np.testing.assert_array_less(
        np.abs(draws.var(0) - variance), 5 * np.sqrt((fourth - variance**2) / len(draws)) + 1e-9
    )
    if zero is not None:
        np.testing.assert_array_less(
            np.abs((draws == 0).mean(0) - zero), 5 * np.sqrt(zero * (1 - zero) / len(draws)) + 1e-9
        )


def tiled(values, dtype="float32"):
    return np.tile(np.asarray(values, dtype), (DRAWS, 1))


@pytest.mark.slow  # JAX compiles the gamma and binomial draws for a minute; TF and torch take seconds
def test_count_draws_match_scipy_moments_from_small_to_large_means():
    means = np.array([0.3, 5.0, 15.9, 16.1, 250.0, 4e4, 2e6])
    poisson = to_numpy(likelihoods.Poisson(library="learned").draw(tiled(np.log(means)), seed=0))
    assert_moments(poisson, stats.poisson(means))

    theta = np.array([0.2, 0.5, 2.0, 10.0, 1.0, 100.0, 1e4])
    nb = likelihoods.NegativeBinomial(library="learned")
    nb.build((None, len(means)))
    nb.log_inverse_dispersion.assign(np.log(theta).astype("float32"))
    assert_moments(to_numpy(nb.draw(tiled(np.log(means)), seed=1)), stats.nbinom(theta, theta / (theta + means)))

    zinb = likelihoods.ZeroInflatedNegativeBinomial(library="learned")
    zinb.build((None, len(means)))
    zinb.log_inverse_dispersion.assign(np.log(theta).astype("float32"))
    pi = np.array([0.5, 0.1, 0.3, 0.02, 0.2, 0.05, 0.6])
    decoded = np.stack([tiled(np.log(means)), tiled(np.log(pi / (1 - pi)))], axis=-1)
    draws = to_numpy(zinb.draw(decoded, seed=2))
    nb_mean, nb_var = means, means + means**2 / theta
    zero = pi + (1 - pi) * stats.nbinom.pmf(0, theta, theta / (theta + means))
    mean = (1 - pi) * nb_mean
    assert_moments(draws, mean=mean, variance=(1 - pi) * (nb_var + nb_mean**2) - mean**2, zero=zero)
    assert np.all(draws == np.round(draws)) and np.all(draws >= 0)


def test_other_families_draw_from_their_distributions():
    logits = np.array([-3.0, 0.0, 1.5])
    bernoulli = to_numpy(likelihoods.Bernoulli().draw(tiled(logits), seed=3))
    assert_moments(bernoulli, stats.bernoulli(1 / (1 + np.exp(-logits))))

    gaussian = to_numpy(likelihoods.Gaussian(scale=0.5).draw(tiled([-2.0, 0.0, 7.0]), seed=4))
    assert_moments(gaussian, stats.norm([-2.0, 0.0, 7.0], 0.5))

    categorical_logits = np.log(np.array([1e-6, 0.2, 0.3, 0.5], "float32"))  # id 0 is padding, never drawn
    tokens = to_numpy(likelihoods.Categorical(4).draw(np.tile(categorical_logits, (DRAWS, 1, 1)), seed=5))
    frequencies = np.bincount(tokens.astype(int).ravel(), minlength=4) / DRAWS
    np.testing.assert_allclose(frequencies, [0.0, 0.2, 0.3, 0.5], atol=5 * np.sqrt(0.25 / DRAWS))


def test_without_a_seed_draw_gives_the_most_probable_value():
    log_means = np.log(np.array([[0.4, 3.5, 120.0]], "float32"))
    np.testing.assert_array_equal(to_numpy(likelihoods.Poisson(library="learned").draw(log_means)), [[0, 3, 120]])
    nb = likelihoods.NegativeBinomial(library="learned")  # θ = 1: the mode is 0
    np.testing.assert_array_equal(to_numpy(nb.draw(log_means)), [[0, 0, 0]])
    np.testing.assert_array_equal(to_numpy(likelihoods.Gaussian().draw(log_means)), log_means)
    with pytest.raises(ValueError, match="seed"):
        likelihoods.Poisson().draw(log_means, uniform=np.full((1, 3), 0.5, "float32"))


def test_an_observed_library_model_draws_at_each_examples_library():
    decoded = np.zeros((2, 4), "float32")  # equal proportions; without a seed, the most probable counts
    at_library = to_numpy(likelihoods.Poisson().draw(decoded, library=np.array([4e3, 4e5], "float32")))
    # ⌊μ⌋, and μ = 1000 is exp(log 1000) rounded: 999 or 1000, both modes of a Poisson of mean 1000.
    np.testing.assert_allclose(at_library, [[1e3] * 4, [1e5] * 4], atol=1)
    at_default = to_numpy(likelihoods.Poisson(library_size=400.0).draw(decoded))
    np.testing.assert_allclose(at_default, np.full((2, 4), 100), atol=1)


@pytest.mark.parametrize("likelihood", ["poisson", "nb", "zinb"])
def test_fit_refuses_data_that_are_not_counts_on_its_first_batch(likelihood):
    vae = keras_vae.VAE.from_input_shape((6,), latent_dim=2, likelihood=likelihood)
    vae.compile()
    normalized = np.log1p(np.random.default_rng(0).poisson(5.0, (32, 6))).astype("float32")
    with pytest.raises(
        ValueError, match=r"models counts, but x has values that are not non-negative integers"
    ) as error:
        vae.fit(normalized, epochs=1, batch_size=16, verbose=0)
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="not non-negative integers"):
        vae.fit(-np.ones((16, 6), "float32"), epochs=1, batch_size=16, verbose=0)
    if likelihood == "nb":  # a conditional model's dict inputs: their x is checked
        cvae = keras_vae.ConditionalVAE.from_input_shape((6,), {"batch": 2}, latent_dim=2, likelihood=likelihood)
        cvae.compile()
        with pytest.raises(ValueError, match="not non-negative integers"):
            cvae.fit({"x": normalized, "batch": np.arange(32) % 2}, epochs=1, batch_size=16, verbose=0)
    likelihoods.get(likelihood).check_data(np.array([[0, 3, 10**6]], "float32"))  # counts pass
