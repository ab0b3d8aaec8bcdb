"""Shared data, models and fixtures. The suite runs once per backend: set KERAS_BACKEND per process.

Only the public package is imported here (`import keras_vae`), so that a test
passing here does not lean on an import that a user would not make.
Session-scoped fixtures train a model once per test run; a test that takes one
reads it and must not train it further or change its weights.
"""

import functools
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# A JAX run spends most of its time in XLA compiling tiny computations, and
# LLVM's optimizations cost more there than they save: about a quarter of the
# JAX run's time. Set before Keras imports JAX; subprocesses inherit it.
if "--xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_backend_optimization_level=0".strip()

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import keras_vae  # noqa: E402

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
    return keras_vae.VAE(
        keras_vae.networks.mlp_encoder(INPUT_SHAPE, latent_dim, hidden_units=(16,)),
        keras_vae.networks.mlp_decoder(INPUT_SHAPE, latent_dim, hidden_units=(16,)),
        likelihood=likelihood,
        seed=seed,
    )


@pytest.fixture
def images():
    return prototype_images()[0]


@pytest.fixture
def small_default_networks(monkeypatch):
    """`from_input_shape` and the command line build their default networks small in this test.

    For tests of what is built from them (a command, a model's methods), not of
    the networks' sizes: the defaults take far longer to trace and train.
    """
    small = {
        "pixelcnn": (
            functools.partial(keras_vae.networks.conv_encoder, filters=(8, 8), dense_units=16),
            functools.partial(keras_vae.networks.pixelcnn_decoder, filters=8, num_blocks=2),
        ),
        "lstm": (
            functools.partial(keras_vae.networks.lstm_encoder, embedding_dim=8, units=16),
            functools.partial(keras_vae.networks.lstm_decoder, embedding_dim=8, units=16),
        ),
    }
    for architecture, builders in small.items():
        monkeypatch.setitem(keras_vae.networks.ARCHITECTURES, architecture, builders)


@pytest.fixture(scope="session")
def trained_vae():
    """`small_vae()` after three epochs on the 512 prototype images: read it, do not train it."""
    vae = small_vae()
    vae.compile()
    vae.fit(prototype_images()[0], epochs=3, batch_size=32, verbose=0)
    return vae
