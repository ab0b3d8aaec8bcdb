"""Shared fixtures. The suite runs once per backend: set KERAS_BACKEND per process."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from keras_vae import networks  # noqa: E402
from keras_vae.models import VAE  # noqa: E402

INPUT_SHAPE = (6, 6, 1)


def to_numpy(value):
    return np.asarray(keras.ops.convert_to_numpy(value))


def prototype_images(n=512, seed=0, flip=0.05):
    """Binary images drawn around four random prototypes: easy structure to learn."""
    rng = np.random.default_rng(seed)
    prototypes = rng.random((4, *INPUT_SHAPE)) < 0.5
    labels = rng.integers(0, 4, n)
    noise = rng.random((n, *INPUT_SHAPE)) < flip
    return np.logical_xor(prototypes[labels], noise).astype("float32"), labels


def small_vae(latent_dim=3, likelihood="bernoulli", seed=0):
    keras.utils.set_random_seed(seed)
    return VAE(
        networks.mlp_encoder(INPUT_SHAPE, latent_dim, hidden_units=(16,)),
        networks.mlp_decoder(INPUT_SHAPE, latent_dim, hidden_units=(16,)),
        likelihood=likelihood,
        seed=seed,
    )


@pytest.fixture
def images():
    return prototype_images()[0]
