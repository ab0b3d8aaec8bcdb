"""He et al. (2019)'s posterior mean space: the synthetic latent sequences and the model's posterior mean on a grid."""

import keras
import numpy as np
import pytest

from conftest import small_vae, to_numpy
from keras_vae import VAE, AutoregressiveVAE, likelihoods, networks
from keras_vae.datasets import synthetic, text
from keras_vae.evaluation import metrics

FEATURES = 8


@pytest.mark.backend_independent
def test_latent_sequences_shapes_dtypes_and_words_only():
    data = synthetic.latent_sequences(num_examples=300, length=7, vocabulary_size=12, units=16, seed=0)
    assert set(data) == {"x", "z"}
    assert data["x"].shape == (300, 7) and data["x"].dtype == np.int32
    assert data["z"].shape == (300,) and data["z"].dtype == np.float32
    # Words only: no <pad>, <unk>, <bos> or <eos>, and every word in use.
    assert set(np.unique(data["x"])) == set(range(len(text.SPECIAL_TOKENS), 12))
    with pytest.raises(ValueError, match="vocabulary_size"):
        synthetic.latent_sequences(vocabulary_size=len(text.SPECIAL_TOKENS) + 1)


@pytest.mark.backend_independent
def test_latent_sequences_are_seeded():
    first, again, other = (synthetic.latent_sequences(num_examples=50, seed=seed) for seed in (3, 3, 4))
    np.testing.assert_array_equal(first["x"], again["x"])
    np.testing.assert_array_equal(first["z"], again["z"])
    assert (first["x"] != other["x"]).mean() > 0.5


@pytest.mark.backend_independent
def test_latent_sequences_depend_on_z_and_are_neither_uniform_nor_deterministic():
    data = synthetic.latent_sequences(num_examples=2000, seed=0)
    x, z = data["x"] - len(text.SPECIAL_TOKENS), data["z"]

    def histogram(rows):
        return np.bincount(x[rows].ravel(), minlength=16) / x[rows].size

    assert 0.5 * np.abs(histogram(z > 1) - histogram(z < -1)).sum() > 0.3  # with z left out: about 0.08, noise
    # Tokens are drawn, not determined by z: sequences whose z differ by
    # about 0.001 (neighbours in z order) still differ at most positions.
    by_z = x[np.argsort(z)]
    assert (by_z[1:] != by_z[:-1]).mean() > 0.5


def bernoulli_vae(kernel, bias):
    """A plain VAE whose decoder is one Dense layer from z to the features' logits, with these weights."""
    keras.utils.set_random_seed(0)
    decoder = keras.Sequential([keras.Input((1,)), keras.layers.Dense(FEATURES)])
    vae = VAE(networks.mlp_encoder((FEATURES,), 1, hidden_units=(4,)), decoder, likelihood="bernoulli", seed=0)
    vae.build((None, FEATURES))
    decoder.layers[-1].set_weights([kernel.reshape(1, FEATURES), bias])
    return vae


@pytest.mark.parametrize("grid", [None, np.linspace(-3.0, 2.0, 41)])
def test_model_posterior_mean_of_a_linear_bernoulli_decoder_matches_numpy(grid):
    rng = np.random.default_rng(0)
    kernel, bias = rng.normal(0.0, 1.5, FEATURES).astype("float32"), rng.normal(0.0, 0.5, FEATURES).astype("float32")
    x = (rng.random((200, FEATURES)) < 0.5).astype("float32")
    mean = metrics.model_posterior_mean(bernoulli_vae(kernel, bias), x, grid=grid)

    z = np.linspace(-4.0, 4.0, 161) if grid is None else grid
    logits = z[:, None, None] * kernel + bias  # (grid, 1, features)
    log_likelihood = (x * -np.logaddexp(0.0, -logits) + (1 - x) * -np.logaddexp(0.0, logits)).sum(-1)
    log_joint = log_likelihood - 0.5 * z[:, None] ** 2
    weights = np.exp(log_joint - log_joint.max(axis=0))
    expected = z @ weights / weights.sum(axis=0)
    assert mean.shape == (200,) and isinstance(mean, np.ndarray)
    np.testing.assert_allclose(mean, expected, atol=1e-4)
    assert np.std(expected) > 0.3  # the data moves the posterior: a test that z = 0 would fail


def test_model_posterior_mean_of_an_lstm_vae_matches_decoding_every_grid_value_at_once():
    vocabulary_size, length, examples = 10, 6, 40
    x = synthetic.latent_sequences(
        num_examples=examples, length=length, vocabulary_size=vocabulary_size, units=8, seed=0
    )["x"]
    keras.utils.set_random_seed(0)
    vae = AutoregressiveVAE(
        networks.lstm_encoder((length,), 1, vocabulary_size, embedding_dim=4, units=8),
        networks.lstm_decoder((length, vocabulary_size), 1, embedding_dim=4, units=8),
        likelihood=likelihoods.Categorical(vocabulary_size),
        seed=0,
    )
    # Larger weights from z to the initial state, so that posteriors move away from the prior's mean.
    for weight in vae.decoder.weights:
        if weight.shape[0] == 1:
            weight.assign(5.0 * to_numpy(weight))
    mean = metrics.model_posterior_mean(vae, x)  # the 161 grid values in 4 chunks, the last one padded

    grid = np.linspace(-4.0, 4.0, 161)
    codes = np.repeat(grid, examples)[:, None].astype("float32")
    repeated = np.tile(x, (len(grid), 1)).astype("float32")
    log_likelihood = to_numpy(vae.likelihood.log_prob(repeated, vae.decoder([codes, repeated]))).reshape(
        len(grid), examples
    )
    log_joint = log_likelihood - 0.5 * grid[:, None] ** 2
    weights = np.exp(log_joint - log_joint.max(axis=0))
    np.testing.assert_allclose(mean, grid @ weights / weights.sum(axis=0), atol=1e-4)
    assert mean.shape == (examples,) and np.isfinite(mean).all()
    assert (np.abs(mean) < 4.0).all() and np.std(mean) > 0.05


def test_model_posterior_mean_needs_one_latent_dimension_and_a_grid():
    with pytest.raises(ValueError, match="latent_dim=3"):
        metrics.model_posterior_mean(small_vae(latent_dim=3), np.zeros((4, 6, 6, 1), "float32"))
    vae = bernoulli_vae(np.ones(FEATURES, "float32"), np.zeros(FEATURES, "float32"))
    with pytest.raises(ValueError, match="evenly spaced"):
        metrics.model_posterior_mean(vae, np.zeros((4, FEATURES), "float32"), grid=[0.0, 1.0, 3.0])
