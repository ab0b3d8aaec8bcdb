"""The objective that training minimises: reconstruction + β · KL, with free bits.

These tests read the loss and the gradients that the backend's train step and
`VAE.loss_terms` produce, so that dropping β, the free-bits clamp or the KL's
sign from the objective fails here on every backend. The KL depends only on the
posterior (not on the draw of ε), so its reference value is computed in NumPy
from `VAE.encode`.
"""

import keras
import numpy as np
import pytest

from conftest import prototype_images, small_vae, to_numpy
from keras_vae import names, schedules

LATENT_DIM = 3


def batch(n=64):
    return prototype_images(n)[0]


def true_kl(vae, x):
    """Mean over the batch of KL(q(z|x) || N(0, I)), in NumPy."""
    z_mean, z_log_var = (to_numpy(t) for t in vae.encode(x))
    return float((0.5 * (z_mean**2 + np.exp(z_log_var) - z_log_var - 1)).sum(-1).mean())


def gradients(fn, variables):
    """d fn() / d variables as NumPy arrays, on whichever backend runs."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            value = fn()
        return [to_numpy(g) for g in tape.gradient(value, variables)]
    if backend == "torch":
        import torch

        return [to_numpy(g) for g in torch.autograd.grad(fn(), [v.value for v in variables])]
    import jax

    def stateless(values):
        with keras.StatelessScope(state_mapping=list(zip(variables, values, strict=True))):
            return fn()

    return [to_numpy(g) for g in jax.grad(stateless)([v.value for v in variables])]


def term_gradients(vae, x, variables):
    """Gradients of each loss term (`loss`, reconstruction, KL) for one and the same draw of ε."""
    state = to_numpy(vae.seed_generator.state)
    result = {}
    for name in (names.LOSS, names.RECONSTRUCTION_LOSS, names.KL_LOSS):
        vae.seed_generator.state.assign(state)
        result[name] = gradients(lambda name=name: vae.loss_terms(x, vae(x, training=True))[name], variables)
    vae.seed_generator.state.assign(state)  # the next step draws the ε these gradients saw
    return result


def log_variance_head(vae):
    return vae.encoder.get_layer("z_log_var").trainable_variables


def assert_all_close(actual, expected, **tolerance):
    for a, e in zip(actual, expected, strict=True):
        np.testing.assert_allclose(a, e, **tolerance)


def compiled_vae(x, **options):
    """A fresh `small_vae`, compiled with `options` and built on `x`."""
    vae = small_vae(LATENT_DIM)
    vae.compile(**options)
    vae(x)
    return vae


@pytest.mark.parametrize("beta", [0.25, 3.0])
def test_training_loss_is_reconstruction_plus_beta_times_kl(beta):
    x = batch()
    vae = compiled_vae(x, beta=beta)
    expected_kl = true_kl(vae, x)
    # The first step's logs are its own forward pass, before the update.
    logs = vae.train_on_batch(x, return_dict=True)
    assert logs["beta"] == pytest.approx(beta)
    assert logs["kl_loss"] == pytest.approx(expected_kl, rel=1e-4)
    assert logs["loss"] == pytest.approx(logs["reconstruction_loss"] + beta * logs["kl_loss"], rel=1e-5)
    # And the model's own terms, for one forward pass.
    terms = {k: float(to_numpy(v)) for k, v in vae.loss_terms(x, vae(x, training=True)).items()}
    assert terms["loss"] == pytest.approx(terms["reconstruction_loss"] + beta * terms["kl_loss"], rel=1e-5)


def test_beta_zero_leaves_only_the_reconstruction_gradient_on_the_encoder():
    x = batch()
    vae = compiled_vae(x, beta=0.0)
    grads = term_gradients(vae, x, log_variance_head(vae))
    # The KL does pull on the log-variance head: a vanishing KL gradient would prove nothing.
    assert max(np.abs(g).max() for g in grads[names.KL_LOSS]) > 1e-3
    assert_all_close(grads[names.LOSS], grads[names.RECONSTRUCTION_LOSS], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("beta", [0.25, 3.0])
def test_the_kl_gradient_on_the_encoder_is_weighted_by_beta(beta):
    x = batch()
    vae = compiled_vae(x, beta=beta)
    grads = term_gradients(vae, x, log_variance_head(vae))
    expected = [r + beta * k for r, k in zip(grads[names.RECONSTRUCTION_LOSS], grads[names.KL_LOSS], strict=True)]
    assert_all_close(grads[names.LOSS], expected, rtol=1e-4, atol=1e-6)
    assert not np.allclose(grads[names.LOSS][0], grads[names.RECONSTRUCTION_LOSS][0], rtol=1e-3, atol=1e-5)


def test_a_train_step_moves_the_encoder_by_beta_times_the_kl_gradient():
    # Two models alike in weights and in ε, one step of plain SGD each: the
    # difference of their updates is the learning rate times β times the KL's gradient.
    x, beta, learning_rate = batch(), 3.0, 0.1
    heads = {}
    for b in (0.0, beta):
        vae = small_vae(LATENT_DIM)
        vae.compile(optimizer=keras.optimizers.SGD(learning_rate), beta=b)
        vae(x)
        if b == 0.0:
            kl_gradient = term_gradients(vae, x, log_variance_head(vae))[names.KL_LOSS]
        vae.train_on_batch(x)
        heads[b] = [to_numpy(v) for v in log_variance_head(vae)]
    difference = [with_kl - without for with_kl, without in zip(heads[beta], heads[0.0], strict=True)]
    assert_all_close(difference, [-learning_rate * beta * g for g in kl_gradient], rtol=2e-3, atol=1e-5)


def test_a_beta_schedule_changes_the_logged_beta_and_the_loss_step_by_step():
    x = batch()
    vae = compiled_vae(x, optimizer=keras.optimizers.SGD(0.0), beta=schedules.LinearWarmup(4, start=0.0, end=2.0))
    expected_kl = true_kl(vae, x)  # the weights stay put: a learning rate of 0
    logged = []
    for _ in range(6):
        vae.reset_metrics()
        logged.append(vae.train_on_batch(x, return_dict=True))
    np.testing.assert_allclose([logs["beta"] for logs in logged], [0.0, 0.5, 1.0, 1.5, 2.0, 2.0], atol=1e-6)
    for logs in logged:
        assert logs["kl_loss"] == pytest.approx(expected_kl, rel=1e-4)
        assert logs["loss"] == pytest.approx(logs["reconstruction_loss"] + logs["beta"] * expected_kl, rel=1e-4)
    assert int(to_numpy(vae.train_iterations)) == 6


def test_free_bits_clamp_the_optimised_kl_but_kl_loss_logs_the_true_kl():
    x, free_bits = batch(), 5.0
    vae = compiled_vae(x, free_bits=free_bits)
    expected_kl = true_kl(vae, x)
    assert expected_kl < free_bits  # every dimension is under the floor
    logs = vae.train_on_batch(x, return_dict=True)
    assert logs["kl_loss"] == pytest.approx(expected_kl, rel=1e-4)
    assert logs["loss"] == pytest.approx(logs["reconstruction_loss"] + LATENT_DIM * free_bits, rel=1e-5)


@pytest.mark.parametrize("free_bits", [0.0, 5.0])
def test_free_bits_cut_the_kl_gradient_of_dimensions_under_the_floor(free_bits):
    x = batch()
    vae = compiled_vae(x, free_bits=free_bits)
    grads = term_gradients(vae, x, log_variance_head(vae))
    expected = grads[names.RECONSTRUCTION_LOSS]
    if not free_bits:  # β = 1, no floor: the KL's own gradient
        expected = [r + k for r, k in zip(expected, grads[names.KL_LOSS], strict=True)]
    assert_all_close(grads[names.LOSS], expected, rtol=1e-4, atol=1e-6)
