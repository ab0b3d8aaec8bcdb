import numpy as np
import pytest

from conftest import to_numpy
from keras_vae.ops.kl import free_bits_kl, gaussian_kl


def test_gaussian_kl_is_zero_at_the_prior_and_positive_elsewhere():
    zeros = np.zeros((5, 3), "float32")
    assert to_numpy(gaussian_kl(zeros, zeros)).shape == (5, 3)
    np.testing.assert_allclose(to_numpy(gaussian_kl(zeros, zeros)), 0.0, atol=1e-7)
    rng = np.random.default_rng(0)
    mean, log_var = rng.normal(size=(2, 64, 4)).astype("float32")
    kl = to_numpy(gaussian_kl(mean, log_var))
    assert np.all(kl >= 0) and np.all(np.isfinite(kl))
    expected = 0.5 * (mean**2 + np.exp(log_var) - log_var - 1)
    np.testing.assert_allclose(kl, expected, rtol=1e-5)


def test_free_bits_clamps_each_dimension_below_lambda():
    kl_per_dim = np.array([[0.0, 0.5, 3.0], [0.2, 0.5, 1.0]], "float32")  # batch means 0.1, 0.5, 2.0
    np.testing.assert_allclose(to_numpy(free_bits_kl(kl_per_dim, 0.0)), 2.6, rtol=1e-6)
    np.testing.assert_allclose(to_numpy(free_bits_kl(kl_per_dim, 0.3)), 0.3 + 0.5 + 2.0, rtol=1e-6)
    np.testing.assert_allclose(to_numpy(free_bits_kl(kl_per_dim, 1.0)), 1.0 + 1.0 + 2.0, rtol=1e-6)


@pytest.mark.parametrize("free_bits", [0.0, 0.5, 2.0])
def test_free_bits_term_is_at_least_the_true_kl(free_bits):
    kl_per_dim = np.random.default_rng(1).exponential(size=(32, 6)).astype("float32")
    true_kl = kl_per_dim.sum(-1).mean()
    assert to_numpy(free_bits_kl(kl_per_dim, free_bits)) >= true_kl - 1e-5
    assert to_numpy(free_bits_kl(kl_per_dim, free_bits)) >= 6 * free_bits - 1e-5
