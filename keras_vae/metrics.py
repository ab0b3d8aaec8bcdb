"""Diagnostics of the latent code as small pure `keras.ops` functions."""

import math

import keras
from keras import ops


def mutual_information(z_mean, z_log_var, seed=None):
    """He et al. (2019)'s minibatch estimate of I(x; z) under q(z|x).

    `I = E_x E_q(z|x)[log q(z|x)] - E_q(z)[log q(z)]`, where the aggregate
    posterior q(z) is approximated by the mixture of the batch's posteriors, with
    one z drawn from each posterior. Because q(z) is a mixture of `batch`
    components, the estimate is bounded above by `log(batch)` (up to the noise
    of the single draw of z per example): compare values computed with the same
    batch size.

    Args:
        z_mean: tensor `(batch, latent_dim)`, the posterior means.
        z_log_var: tensor `(batch, latent_dim)`, the posterior log-variances.
        seed: a `keras.random.SeedGenerator` or int for the draws of z.

    Returns:
        A scalar tensor, in nats.
    """
    z_mean = ops.convert_to_tensor(z_mean)
    z_log_var = ops.convert_to_tensor(z_log_var)
    latent_dim = z_mean.shape[-1]
    log_2pi = math.log(2.0 * math.pi)
    # E_q(z|x)[log q(z|x)] = -H[q(z|x)], in closed form for a diagonal Gaussian.
    neg_entropy = ops.mean(
        -0.5 * latent_dim * log_2pi - 0.5 * ops.sum(1.0 + z_log_var, axis=-1)
    )
    epsilon = keras.random.normal(ops.shape(z_mean), dtype=z_mean.dtype, seed=seed)
    z = z_mean + ops.exp(0.5 * z_log_var) * epsilon
    # log q(z_i | x_j) for every pair: shape (z_batch, x_batch).
    deviation = ops.expand_dims(z, 1) - ops.expand_dims(z_mean, 0)
    log_density = -0.5 * ops.sum(
        ops.square(deviation) / ops.expand_dims(ops.exp(z_log_var), 0), axis=-1
    ) - 0.5 * (latent_dim * log_2pi + ops.expand_dims(ops.sum(z_log_var, -1), 0))
    batch = ops.cast(ops.shape(z_mean)[0], z_mean.dtype)
    log_qz = ops.logsumexp(log_density, axis=1) - ops.log(batch)
    return neg_entropy - ops.mean(log_qz)
