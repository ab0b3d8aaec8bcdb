import math

import keras
import numpy as np

from conftest import INPUT_SHAPE, prototype_images, small_vae, to_numpy
from keras_vae import likelihoods
from keras_vae.evaluation.metrics import importance_weighted_nll
from keras_vae.models import VAE
from keras_vae.ops.latent import mutual_information


def test_mutual_information_is_near_zero_when_the_posterior_is_the_prior():
    # The estimate's noise here is 0.5 * sqrt(2 * latent_dim / batch) ≈ 0.02.
    zeros = np.zeros((4096, 4), "float32")
    mi = float(to_numpy(mutual_information(zeros, zeros, seed=keras.random.SeedGenerator(0))))
    assert abs(mi) < 0.1


def test_mutual_information_approaches_log_batch_for_a_sharp_informative_posterior():
    batch = 1024
    rng = np.random.default_rng(0)
    z_mean = rng.normal(scale=10.0, size=(batch, 4)).astype("float32")
    z_log_var = np.full((batch, 4), -8.0, "float32")
    mi = float(to_numpy(mutual_information(z_mean, z_log_var, seed=1)))
    # The bound log(batch) holds up to the noise of one draw of z per example,
    # 0.5 * sqrt(2 * latent_dim / batch) ≈ 0.044 here.
    assert abs(mi - math.log(batch)) < 0.2


def prior_vae(likelihood="bernoulli", bias=0.3):
    """Encoder = prior for every x, decoder ignores z and outputs `bias`: log p(x) is exact."""
    inputs = keras.Input(INPUT_SHAPE)
    flat = keras.layers.Flatten()(inputs)
    heads = [keras.layers.Dense(2, kernel_initializer="zeros", bias_initializer="zeros")(flat) for _ in range(2)]
    z = keras.Input((2,))
    output = keras.layers.Dense(
        math.prod(INPUT_SHAPE), kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(bias)
    )
    decoder = keras.Model(z, keras.layers.Reshape(INPUT_SHAPE)(output(z)))
    return VAE(keras.Model(inputs, heads), decoder, likelihood=likelihood, seed=0), output


def exact_bernoulli_nll(x, logit):
    return -to_numpy(likelihoods.bernoulli_log_prob(x, np.full(x.shape, logit, "float32")))


class Batches(keras.utils.PyDataset):
    def __init__(self, x, batch_size):
        super().__init__()
        self.x, self.batch_size = x, batch_size

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, index):
        return self.x[index * self.batch_size : (index + 1) * self.batch_size]


def test_importance_weighted_nll_reads_data_of_any_size_in_batches():
    x, labels = prototype_images(300)  # more than one batch of EXAMPLES_PER_BATCH
    vae, _ = prior_vae()
    exact = exact_bernoulli_nll(x, 0.3)
    for data in (x, (x, labels), Batches(x, 70)):
        nll = to_numpy(importance_weighted_nll(vae, data, num_samples=3, seed=0))
        assert nll.shape == (300,)
        np.testing.assert_allclose(nll, exact, rtol=1e-5)


def test_importance_weighted_nll_uses_the_current_weights(images):
    vae, output = prior_vae()
    x = images[:10]
    nll = to_numpy(importance_weighted_nll(vae, x, num_samples=4, seed=0))
    np.testing.assert_allclose(nll, exact_bernoulli_nll(x, 0.3), rtol=1e-5)
    output.bias.assign(np.full(output.bias.shape, -1.0, "float32"))
    nll = to_numpy(importance_weighted_nll(vae, x, num_samples=4, seed=0))
    np.testing.assert_allclose(nll, exact_bernoulli_nll(x, -1.0), rtol=1e-5)
    # A learned likelihood parameter is read afresh too.
    vae, _ = prior_vae(likelihoods.Gaussian(scale=0.5, learn_scale="global"), bias=0.2)
    vae.build((None, *INPUT_SHAPE))
    vae.likelihood.log_scale.assign(math.log(2.0))
    exact = -to_numpy(likelihoods.gaussian_log_prob(x, np.full(x.shape, 0.2, "float32"), math.log(2.0)))
    np.testing.assert_allclose(to_numpy(importance_weighted_nll(vae, x, num_samples=4, seed=0)), exact, rtol=1e-5)


def test_importance_weighted_nll_is_reproducible(images):
    vae = small_vae()
    x = images[:20]
    first = to_numpy(importance_weighted_nll(vae, x, num_samples=64, chunk_size=5, seed=3))
    again = to_numpy(importance_weighted_nll(vae, x, num_samples=64, chunk_size=5, seed=3))
    np.testing.assert_array_equal(first, again)
    other = to_numpy(importance_weighted_nll(vae, x, num_samples=64, chunk_size=5, seed=4))
    assert not np.allclose(first, other) and np.allclose(first, other, rtol=0.05)
    from_generator = importance_weighted_nll(vae, x, num_samples=2, seed=keras.random.SeedGenerator(1))
    assert np.all(np.isfinite(to_numpy(from_generator)))


def test_importance_weighted_nll_shows_one_progress_bar(capsys):
    x, _ = prototype_images(300)
    vae, _ = prior_vae()
    importance_weighted_nll(vae, x, num_samples=2, verbose=True)
    assert "300/300" in capsys.readouterr().out


def test_mutual_information_stays_finite_for_an_encoder_sure_to_underflow():
    # σ² = e^-100 is 0 in float32: dividing by it gave 0/0 = NaN on the diagonal.
    z_mean = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    estimate = float(to_numpy(mutual_information(z_mean, np.full((64, 4), -100.0, "float32"), seed=0)))
    assert np.isfinite(estimate) and estimate <= np.log(64) + 1e-3
