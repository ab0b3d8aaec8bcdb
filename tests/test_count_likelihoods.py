"""Count likelihoods against scipy.stats in float64, their gradients, and the layers that use them.

Tolerance: |ours - scipy| ≤ 1e-5 · max(1, |scipy|), elementwise, in float32; the
same at 1e-7 in float64 where the backend has it (not JAX without x64).
"""

import keras
import numpy as np
import pytest
from scipy import stats

from conftest import to_numpy
from keras_vae import likelihoods

FLOAT64 = pytest.param(
    "float64", marks=pytest.mark.skipif(keras.backend.backend() == "jax", reason="JAX has no float64 without x64")
)
TOLERANCE = {"float32": 1e-5, "float64": 1e-7}


def count_cases(n=3000, seed=0):
    """`(x, mean, theta, logits)`, one case per row: zeros, small counts, counts near a mean up to 2e6,
    counts far from it up to 2e6, and exactly 1e6; θ from 1e-4 to 1e6, a fifth of them at each end.

    μ ≥ 1e-3: scipy's nbinom takes p = θ/(θ + μ) and loses 1 - p to rounding when μ/θ ≲ 1e-9."""
    rng = np.random.default_rng(seed)
    mean = np.exp(rng.uniform(np.log(1e-3), np.log(2e6), n))
    theta = np.exp(rng.uniform(np.log(1e-4), np.log(1e6), n))
    theta[::5], theta[1::5] = 1e-4, 1e6
    sd = np.sqrt(mean + mean**2 / theta)
    x = np.select(
        [np.arange(n) % 5 == k for k in range(4)],
        [np.zeros(n), rng.poisson(3, n), np.round(mean + rng.normal(0, 3, n) * sd), rng.integers(0, 2_000_000, n)],
        1e6,
    )
    x = np.clip(x, 0, 2e6)
    logits = rng.normal(0, 4, n)
    return x, mean, theta, logits


def scipy_log_probs(x, log_mean, log_theta, logits):
    """Elementwise float64 references, from the parameters as rounded to the tested dtype."""
    mean, theta = np.exp(log_mean.astype("float64")), np.exp(log_theta.astype("float64"))
    x, pi = x.astype("float64"), 1 / (1 + np.exp(-logits.astype("float64")))
    nb = stats.nbinom.logpmf(x, theta, theta / (theta + mean))
    zinb = np.where(x > 0, np.log1p(-pi) + nb, np.logaddexp(np.log(pi), np.log1p(-pi) + nb))
    return stats.poisson.logpmf(x, mean), nb, zinb


@pytest.mark.parametrize("dtype", ["float32", FLOAT64])
def test_count_log_probs_match_scipy_including_extremes(dtype):
    x, mean, theta, logits = count_cases()
    x, log_mean, log_theta, logits = (np.asarray(v, dtype) for v in (x, np.log(mean), np.log(theta), logits))
    expected_values = scipy_log_probs(x, log_mean, log_theta, logits)
    x, log_mean, log_theta, logits = (v[:, None] for v in (x, log_mean, log_theta, logits))  # one feature
    ours = [
        likelihoods.poisson_log_prob(x, log_mean),
        likelihoods.negative_binomial_log_prob(x, log_mean, log_theta),
        likelihoods.zero_inflated_negative_binomial_log_prob(x, log_mean, log_theta, logits),
    ]
    for name, result, expected in zip(["poisson", "nb", "zinb"], ours, expected_values, strict=True):
        assert keras.backend.standardize_dtype(result.dtype) == dtype, name
        error = np.abs(to_numpy(result) - expected) / np.maximum(1.0, np.abs(expected))
        assert error.max() <= TOLERANCE[dtype], f"{name}: max relative error {error.max():.2e}"


def test_log_probs_sum_over_features_and_broadcast_a_per_feature_theta():
    rng = np.random.default_rng(1)
    x = rng.poisson(5, (3, 4, 2)).astype("float32")
    log_mean = rng.normal(1.5, 1, (3, 4, 2)).astype("float32")
    log_theta = rng.normal(0, 1, (4, 2)).astype("float32")
    result = to_numpy(likelihoods.negative_binomial_log_prob(x, log_mean, log_theta))
    mean, theta = np.exp(log_mean.astype("float64")), np.exp(log_theta.astype("float64"))
    expected = stats.nbinom.logpmf(x, theta, theta / (theta + mean)).sum(axis=(1, 2))
    assert result.shape == (3,)
    np.testing.assert_allclose(result, expected, rtol=1e-5)


def gradients(function, *args):
    """d sum(function(*args)) / d args, with the backend's own autodiff."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        args = [tf.constant(a) for a in args]
        with tf.GradientTape() as tape:
            tape.watch(args)
            total = tf.reduce_sum(function(*args))
        return [g.numpy() for g in tape.gradient(total, args)]
    if backend == "jax":
        import jax

        return [np.asarray(g) for g in jax.grad(lambda *a: function(*a).sum(), argnums=tuple(range(len(args))))(*args)]
    import torch

    args = [torch.tensor(a, requires_grad=True) for a in args]
    function(*args).sum().backward()
    return [a.grad.numpy() for a in args]


def test_gradients_are_finite_and_right_at_the_extremes():
    grid = np.array(np.meshgrid([0.0, 1.0, 7.0, 1e6], [1e-6, 1.0, 1e6, 1.001e6], [1e-4, 1.0, 1e6], [-20.0, 0.0, 20.0]))
    x, mean, theta, logits = grid.reshape(4, -1).astype("float32")[..., None]
    log_mean, log_theta = np.log(mean), np.log(theta)
    poisson = gradients(lambda m: likelihoods.poisson_log_prob(x, m), log_mean)
    nb = gradients(lambda m, t: likelihoods.negative_binomial_log_prob(x, m, t), log_mean, log_theta)
    zinb = gradients(
        lambda m, t, z: likelihoods.zero_inflated_negative_binomial_log_prob(x, m, t, z), log_mean, log_theta, logits
    )
    assert all(np.all(np.isfinite(g)) for g in poisson + nb + zinb)
    # d/d log μ is x - μ for the Poisson and θ (x - μ) / (θ + μ) for the NB.
    mean, theta = np.exp(log_mean.astype("float64")), np.exp(log_theta.astype("float64"))
    np.testing.assert_allclose(poisson[0], x - mean, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(nb[0], theta * (x - mean) / (theta + mean), rtol=1e-4, atol=1e-3)


# ---------------------------------------------------------------------- layers
COUNT_LAYERS = [likelihoods.Poisson, likelihoods.NegativeBinomial, likelihoods.ZeroInflatedNegativeBinomial]


def counts(shape=(3, 4, 2), seed=2):
    return np.random.default_rng(seed).poisson(20, shape).astype("float32")


def decoded_for(layer, x, seed=3):
    shape = x.shape + (2,) if layer.parameters_per_feature == 2 else x.shape
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def test_protocol_attributes_and_condition_argument_on_every_likelihood():
    for layer_class in (likelihoods.Bernoulli, likelihoods.Gaussian):
        assert layer_class.parameters_per_feature == 1 and layer_class.encoder_input_transform is None
    x = np.full((2, 3), 0.5, "float32")
    for layer in (likelihoods.Bernoulli(), likelihoods.Gaussian()):
        assert to_numpy(layer.log_prob(x, x, condition=None)).shape == (2,)
        assert list(layer.distribution_parameters(keras.ops.convert_to_tensor(x), condition=None))[0] == "mean"
    assert [c.parameters_per_feature for c in COUNT_LAYERS] == [1, 1, 2]
    assert all(c.encoder_input_transform == "log1p" for c in COUNT_LAYERS)


@pytest.mark.parametrize("layer_class", COUNT_LAYERS)
@pytest.mark.parametrize("library", ["observed", "learned"])
def test_count_layer_shapes_and_parameters(layer_class, library):
    layer = layer_class(library=library)
    x = counts()
    decoded = decoded_for(layer, x)
    log_p = to_numpy(layer.log_prob(x, decoded))
    assert log_p.shape == (3,) and np.all(np.isfinite(log_p)) and np.all(log_p < 0)
    parameters = layer.distribution_parameters(decoded)
    names = {"Poisson": ["mean"], "NegativeBinomial": ["mean", "inverse_dispersion"]}
    assert list(parameters) == names.get(layer_class.__name__, ["mean", "inverse_dispersion", "zero_probability"])
    assert all(to_numpy(value).shape == x.shape for value in parameters.values())
    np.testing.assert_allclose(to_numpy(parameters["mean"]), to_numpy(layer.mean(decoded)), rtol=1e-6)
    mean_decoded = decoded[..., 0] if layer.parameters_per_feature == 2 else decoded
    if library == "learned":
        np.testing.assert_allclose(to_numpy(layer.mean(decoded)), np.exp(mean_decoded), rtol=1e-5)
    else:  # proportions at the default library size
        np.testing.assert_allclose(to_numpy(layer.mean(decoded)).sum(axis=(1, 2)), 1e4, rtol=1e-5)


def test_observed_library_scales_proportions_by_each_examples_total_count():
    layer = likelihoods.Poisson()
    x = counts()
    decoded = decoded_for(layer, x)
    proportions = np.exp(decoded - decoded.max(axis=(1, 2), keepdims=True))
    proportions /= proportions.sum(axis=(1, 2), keepdims=True)
    mean = proportions * x.sum(axis=(1, 2), keepdims=True)
    expected = stats.poisson.logpmf(x, mean).sum(axis=(1, 2))
    np.testing.assert_allclose(to_numpy(layer.log_prob(x, decoded)), expected, rtol=1e-5)
    # The softmax ignores an overall shift of the decoded scale, per example.
    shift = np.arange(3, dtype="float32").reshape(3, 1, 1) * 3.0
    np.testing.assert_allclose(to_numpy(layer.log_prob(x, decoded + shift)), expected, rtol=1e-5)
    at_50_counts = likelihoods.Poisson(library_size=50.0).mean(decoded)
    np.testing.assert_allclose(to_numpy(at_50_counts), 50 * proportions, rtol=1e-5)


@pytest.mark.parametrize("layer_class", COUNT_LAYERS)
def test_an_all_zero_example_has_a_finite_log_likelihood_and_gradient(layer_class):
    layer = layer_class()
    x = counts()
    x[0] = 0.0
    decoded = decoded_for(layer, x)
    log_p = to_numpy(layer.log_prob(x, decoded))
    assert np.all(np.isfinite(log_p))
    if layer_class is likelihoods.Poisson:  # library clamped to 1: μ sums to 1 and log p(0) = -Σμ
        np.testing.assert_allclose(log_p[0], -1.0, rtol=1e-5)
    (grad,) = gradients(lambda d: layer.log_prob(x, d), decoded)
    assert np.all(np.isfinite(grad))


def test_zinb_uses_its_second_channel_as_zero_inflation_logits():
    layer = likelihoods.ZeroInflatedNegativeBinomial(library="learned")
    x = counts()
    x[:, 0] = 0.0
    decoded = decoded_for(layer, x)
    result = to_numpy(layer.log_prob(x, decoded))
    log_theta = np.zeros((4, 2), "float32")  # the initial θ = 1
    expected = likelihoods.zero_inflated_negative_binomial_log_prob(x, decoded[..., 0], log_theta, decoded[..., 1])
    np.testing.assert_allclose(result, to_numpy(expected), rtol=1e-6)
    zero_probability = layer.distribution_parameters(decoded)["zero_probability"]
    np.testing.assert_allclose(to_numpy(zero_probability), 1 / (1 + np.exp(-decoded[..., 1])), rtol=1e-5)


@pytest.mark.parametrize("layer_class", [likelihoods.NegativeBinomial, likelihoods.ZeroInflatedNegativeBinomial])
def test_gene_condition_dispersion_differs_by_condition(layer_class):
    layer = layer_class(dispersion="gene-condition", condition_dim=3)
    x = counts()
    layer.build(x.shape)
    assert tuple(layer.log_inverse_dispersion.shape) == (4, 2)
    kernel = np.array([0.0, 2.0, -3.0], "float32").reshape(3, 1, 1) + np.zeros((4, 2), "float32")
    layer.log_inverse_dispersion_kernel.assign(kernel)
    layer.log_inverse_dispersion.assign(np.full((4, 2), 0.5, "float32"))
    decoded = np.repeat(decoded_for(layer, x)[:1], 3, axis=0)
    x = np.repeat(x[:1], 3, axis=0)  # one example under each of the three conditions
    condition = np.eye(3, dtype="float32")
    theta = to_numpy(layer.distribution_parameters(decoded, condition=condition)["inverse_dispersion"])
    np.testing.assert_allclose(theta, np.exp(0.5 + kernel), rtol=1e-6)
    log_p = to_numpy(layer.log_prob(x, decoded, condition=condition))
    assert len(set(np.round(log_p, 4))) == 3
    with pytest.raises(ValueError, match="needs the `condition`"):
        layer.log_prob(x, decoded)
    with pytest.raises(ValueError, match="condition_dim"):
        layer_class(dispersion="gene-condition").build(x.shape)


def test_a_conditional_vae_sets_the_condition_dim_only_where_none_was_given():
    told = likelihoods.NegativeBinomial(dispersion="gene-condition")
    told.set_condition_dim(3)
    assert told.condition_dim == 3 and told.get_config()["condition_dim"] == 3
    given = likelihoods.ZeroInflatedNegativeBinomial(dispersion="gene-condition", condition_dim=2)
    given.set_condition_dim(3)
    assert given.condition_dim == 2
    poisson = likelihoods.Poisson()
    poisson.set_condition_dim(3)
    assert "condition_dim" not in poisson.get_config()


def test_arguments_are_validated():
    with pytest.raises(ValueError, match="library"):
        likelihoods.Poisson(library="estimated")
    with pytest.raises(ValueError, match="library_size"):
        likelihoods.NegativeBinomial(library_size=0)
    with pytest.raises(ValueError, match="dispersion"):
        likelihoods.ZeroInflatedNegativeBinomial(dispersion="cell")
    with pytest.raises(ValueError, match="condition_dim"):
        likelihoods.NegativeBinomial(condition_dim=0)


@pytest.mark.parametrize(
    "layer",
    [
        likelihoods.Poisson(library="learned", library_size=123.0),
        likelihoods.NegativeBinomial(dispersion="gene-condition", condition_dim=2, library_size=500.0),
        likelihoods.ZeroInflatedNegativeBinomial(library="learned", dispersion="gene"),
    ],
    ids=["poisson", "nb", "zinb"],
)
def test_count_layers_round_trip_through_their_config_with_weights(layer):
    x = counts()
    decoded, condition = decoded_for(layer, x), np.eye(3, 2, dtype="float32")
    layer.build(x.shape)
    for weight in layer.weights:
        weight.assign(np.random.default_rng(4).normal(size=weight.shape).astype("float32"))
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is type(layer) and restored.get_config() == layer.get_config()
    assert restored.built  # from the build config: ready for the weights
    restored.set_weights(layer.get_weights())
    restored_log_p, log_p = (to_numpy(each.log_prob(x, decoded, condition=condition)) for each in (restored, layer))
    np.testing.assert_allclose(restored_log_p, log_p, rtol=1e-6)


def test_get_resolves_the_count_names():
    for name, layer_class in [
        ("poisson", likelihoods.Poisson),
        ("nb", likelihoods.NegativeBinomial),
        ("negative_binomial", likelihoods.NegativeBinomial),
        ("ZINB", likelihoods.ZeroInflatedNegativeBinomial),
        ("zero_inflated_negative_binomial", likelihoods.ZeroInflatedNegativeBinomial),
    ]:
        assert type(likelihoods.get(name)) is layer_class
    with pytest.raises(ValueError, match="Unknown likelihood"):
        likelihoods.get("binomial")
