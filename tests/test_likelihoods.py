import math

import keras
import numpy as np
import pytest

from conftest import to_numpy
from keras_vae import likelihoods, names


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


FAMILIES = [
    likelihoods.Bernoulli(),
    likelihoods.Gaussian(learn_scale="per_feature"),
    likelihoods.Poisson(),
    likelihoods.NegativeBinomial(),
    likelihoods.ZeroInflatedNegativeBinomial(),
    likelihoods.Categorical(5),
]


def test_every_family_is_a_likelihood_registered_under_its_old_name():
    # `.keras` files name a likelihood by this string: it must not change.
    for layer in FAMILIES:
        assert isinstance(layer, likelihoods.Likelihood)
        assert keras.saving.get_registered_name(type(layer)) == f"keras_vae>{type(layer).__name__}"
    for name in names.LIKELIHOODS:
        if name != "categorical":
            assert isinstance(likelihoods.get(name), likelihoods.Likelihood)


def test_the_contract_takes_one_condition_argument_everywhere():
    rng = np.random.default_rng(4)
    for layer in FAMILIES:
        x_shape = (2, 3) if isinstance(layer, likelihoods.Categorical) else (2, 3, 4)
        x = rng.integers(1, 5, x_shape).astype("float32")
        per_feature = layer.parameters_per_feature
        decoded = rng.normal(size=x_shape + ((per_feature,) if per_feature > 1 else ())).astype("float32")
        decoded = keras.ops.convert_to_tensor(decoded)
        layer.build(x_shape)
        assert to_numpy(layer.log_prob(x, decoded, condition=None)).shape == (2,)
        mean = to_numpy(layer.mean(decoded, condition=None))
        parameters = layer.distribution_parameters(decoded, condition=None)
        assert list(parameters)[0] == "mean"
        np.testing.assert_allclose(to_numpy(parameters["mean"]), mean, rtol=1e-6)
        assert layer.encoder_input_transform in (None, "log1p")
        one_example = tuple(decoded.shape[1:])
        assert np.broadcast_shapes(np.shape(layer.initial_decoded(x)), one_example) == one_example


def test_draw_exists_only_where_an_autoregressive_decoder_needs_it():
    logits = keras.ops.convert_to_tensor(np.array([[-2.0, 3.0]], "float32"))
    np.testing.assert_array_equal(to_numpy(likelihoods.Bernoulli().draw(logits, condition=None)), [[0.0, 1.0]])

    class MeanOnly(likelihoods.Likelihood):  # every built-in family draws; a subclass must say how
        def mean(self, decoded, condition=None):
            return decoded

    with pytest.raises(NotImplementedError, match="must implement `draw"):
        MeanOnly().draw(logits)


def test_base_class_declares_the_contract_and_defaults_the_parameters_to_the_mean():
    class Half(likelihoods.Likelihood):
        def mean(self, decoded, condition=None):
            return decoded / 2

    decoded = keras.ops.ones((2, 3))
    layer = Half()
    assert layer.parameters_per_feature == 1 and layer.encoder_input_transform is None
    assert not layer.accepts_flat_features
    np.testing.assert_allclose(to_numpy(layer.distribution_parameters(decoded)["mean"]), np.full((2, 3), 0.5))
    layer.set_condition_dim(4)  # a no-op unless a parameter depends on the condition
    for call in (lambda: layer.log_prob(decoded, decoded), lambda: layer.initial_decoded(np.ones((2, 3)))):
        with pytest.raises(NotImplementedError, match="Half must implement"):
            call()


def test_accepts_flat_features_means_log_prob_is_unchanged_on_flattened_features():
    rng = np.random.default_rng(5)
    x = (rng.random((3, 4, 2)) < 0.5).astype("float32")
    decoded = rng.normal(size=(3, 4, 2)).astype("float32")
    for layer in (likelihoods.Bernoulli(), likelihoods.Gaussian(learn_scale="global")):
        assert layer.accepts_flat_features
        layer.build(x.shape)
        flat = layer.log_prob(x.reshape(3, -1), decoded.reshape(3, -1))
        np.testing.assert_allclose(to_numpy(flat), to_numpy(layer.log_prob(x, decoded)), rtol=1e-6)
    assert not likelihoods.Gaussian(learn_scale="per_feature").accepts_flat_features
    assert not likelihoods.NegativeBinomial().accepts_flat_features


def test_get_refuses_what_it_cannot_build():
    with pytest.raises(ValueError, match="vocabulary size"):
        likelihoods.get("categorical")
    with pytest.raises(TypeError, match="subclass `keras_vae.likelihoods.Likelihood`"):
        likelihoods.get(keras.layers.Dense(2))
    layer = likelihoods.Categorical(7)
    assert likelihoods.get(layer) is layer
