import math

import keras
import numpy as np
import pytest

from conftest import to_numpy
from keras_vae import likelihoods


def test_bernoulli_log_prob_matches_the_formula_and_is_stable():
    rng = np.random.default_rng(0)
    x = (rng.random((4, 3, 2)) < 0.5).astype("float32")
    logits = rng.normal(size=(4, 3, 2)).astype("float32")
    p = 1 / (1 + np.exp(-logits))
    expected = (x * np.log(p) + (1 - x) * np.log(1 - p)).sum(axis=(1, 2))
    result = to_numpy(likelihoods.bernoulli_log_prob(x, logits))
    assert result.shape == (4,)
    np.testing.assert_allclose(result, expected, rtol=1e-5)
    extreme = to_numpy(likelihoods.bernoulli_log_prob(x, 1e4 * (2 * x - 1)))
    assert np.all(np.isfinite(extreme)) and np.all(extreme <= 0)


def test_gaussian_log_prob_matches_the_formula():
    rng = np.random.default_rng(1)
    x, mean = rng.normal(size=(2, 5, 7)).astype("float32")
    log_scale = np.log(0.5)
    expected = (-0.5 * ((x - mean) / 0.5) ** 2 - log_scale - 0.5 * math.log(2 * math.pi)).sum(-1)
    np.testing.assert_allclose(to_numpy(likelihoods.gaussian_log_prob(x, mean, log_scale)), expected, rtol=1e-5)


@pytest.mark.parametrize("learn_scale, shape", [(None, None), ("global", ()), ("per_feature", (3, 2))])
def test_gaussian_layer_scale_variants(learn_scale, shape):
    layer = likelihoods.Gaussian(scale=0.5, learn_scale=learn_scale)
    layer.build((None, 3, 2))
    x = np.zeros((4, 3, 2), "float32")
    log_p = to_numpy(layer.log_prob(x, x))
    np.testing.assert_allclose(log_p, 6 * (-math.log(0.5) - 0.5 * math.log(2 * math.pi)), rtol=1e-5)
    if shape is None:
        assert not layer.trainable_weights
    else:
        assert tuple(layer.log_scale.shape) == shape and layer.trainable_weights
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(restored, likelihoods.Gaussian)
    assert restored.get_config() == layer.get_config()


def test_get_resolves_names_and_rejects_unknown_ones():
    assert isinstance(likelihoods.get("bernoulli"), likelihoods.Bernoulli)
    assert isinstance(likelihoods.get("Gaussian"), likelihoods.Gaussian)
    with pytest.raises(ValueError, match="Unknown likelihood"):
        likelihoods.get("binomial")
    with pytest.raises(ValueError, match="learn_scale"):
        likelihoods.Gaussian(learn_scale="everywhere")


def test_distribution_parameters_name_the_mean_first_and_match_the_decoder_output():
    decoded = np.linspace(-3, 3, 12, dtype="float32").reshape(2, 6)
    bernoulli = likelihoods.Bernoulli().distribution_parameters(decoded)
    assert list(bernoulli) == ["mean", "logits"]
    np.testing.assert_allclose(to_numpy(bernoulli["mean"]), 1 / (1 + np.exp(-decoded)), rtol=1e-6)
    gaussian = likelihoods.Gaussian(scale=0.5)
    parameters = gaussian.distribution_parameters(keras.ops.convert_to_tensor(decoded))
    assert list(parameters) == ["mean", "log_scale"]
    np.testing.assert_allclose(to_numpy(parameters["log_scale"]), np.full((2, 6), np.log(0.5)), rtol=1e-6)
