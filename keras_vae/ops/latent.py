"""Statistics of the latent code: KL and σ² per dimension, activity, I(x; z).

Small `keras.ops` functions of the posterior parameters, and `latent_statistics`,
which measures an encoder on a data set with them.
"""

import math

import keras
import numpy as np
from keras import ops

from keras_vae.datasets.batching import numpy_batches
from keras_vae.ops.kl import gaussian_kl


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
    neg_entropy = ops.mean(-0.5 * latent_dim * log_2pi - 0.5 * ops.sum(1.0 + z_log_var, axis=-1))
    epsilon = keras.random.normal(ops.shape(z_mean), dtype=z_mean.dtype, seed=seed)
    z = z_mean + ops.exp(0.5 * z_log_var) * epsilon
    # log q(z_i | x_j) for every pair: shape (z_batch, x_batch).
    # Standardized by exp(-log_var / 2), not divided by exp(log_var): a very sure
    # encoder's variance underflows to 0 in float32 (log_var < -88), and 0/0 is NaN.
    standardized = (ops.expand_dims(z, 1) - ops.expand_dims(z_mean, 0)) * ops.expand_dims(ops.exp(-0.5 * z_log_var), 0)
    log_density = -0.5 * ops.sum(ops.square(standardized), axis=-1) - 0.5 * (
        latent_dim * log_2pi + ops.expand_dims(ops.sum(z_log_var, -1), 0)
    )
    batch = ops.cast(ops.shape(z_mean)[0], z_mean.dtype)
    log_qz = ops.logsumexp(log_density, axis=1) - ops.log(batch)
    return neg_entropy - ops.mean(log_qz)


def kl_per_dimension(z_mean, z_log_var):
    """Batch-mean KL(q(z_j|x) || N(0, 1)) of each latent dimension j, in nats.

    Returns:
        A tensor `(latent_dim,)`; its sum is the mean KL of the batch.
    """
    return ops.mean(gaussian_kl(z_mean, z_log_var), axis=0)


def posterior_variance(z_log_var):
    """Mean encoder variance σ² of each latent dimension over the batch: `(latent_dim,)`."""
    return ops.mean(ops.exp(ops.convert_to_tensor(z_log_var)), axis=0)


def latent_activity(z_mean):
    """Variance across the data of each dimension's posterior mean: `(latent_dim,)`.

    Burda et al. (2016)'s activity statistic `Cov_x(E_q(z|x)[z_j])`.
    """
    return ops.var(ops.convert_to_tensor(z_mean), axis=0)


def active_units(z_mean, threshold=0.01):
    """How many latent dimensions are active: activity above `threshold` (Burda et al., 2016).

    Args:
        z_mean: tensor `(examples, latent_dim)`, posterior means over a data set.
        threshold: float. Defaults to `0.01`.

    Returns:
        An int32 scalar tensor.
    """
    return ops.sum(ops.cast(latent_activity(z_mean) > threshold, "int32"))


def _numpy(value):
    return np.asarray(keras.ops.convert_to_numpy(value))


def encode_data(vae, data, batch_size=128):
    """Posterior means and log-variances of every example: two arrays `(examples, latent_dim)`.

    The encoder runs as the model's compiled `posterior_function` (every
    epoch's diagnostics encode their probe again).
    """
    posterior = None
    means, log_vars = [], []
    for x in numpy_batches(data, batch_size):
        if posterior is None:
            if not vae.built:
                vae.encode(x)  # builds the variables, which a compiled function cannot create
            posterior = vae.posterior_function()
        z_mean, z_log_var = posterior(x)
        means.append(_numpy(z_mean))
        log_vars.append(_numpy(z_log_var))
    if not means:
        raise ValueError("The data yielded no batch to encode.")
    return np.concatenate(means), np.concatenate(log_vars)


def latent_statistics(vae, data, batch_size=128, seed=None):
    """The encoder's state on `data`, as plain Python numbers and lists.

    Returns:
        A dict: `kl` (mean KL, nats), `kl_per_dim`, `variance_per_dim` (mean σ²),
        `activity_per_dim` and `active_units` (Burda et al.), and `mutual_info`
        (He et al.'s estimator averaged over minibatches of `batch_size`, so it
        is bounded by log(batch_size)).

    `seed` (int or `keras.random.SeedGenerator`) drives the draws of z of the
    MI estimate; by default a fixed one, so estimates on the same data compare.
    """
    z_mean, z_log_var = encode_data(vae, data, batch_size)
    # Its own random numbers: watching a run must not change the draws it trains on.
    seed = keras.random.SeedGenerator(0) if seed is None else seed
    total, count = 0.0, 0
    for start in range(0, len(z_mean), batch_size):
        stop = min(start + batch_size, len(z_mean))
        estimate = mutual_information(z_mean[start:stop], z_log_var[start:stop], seed=seed)
        total += float(_numpy(estimate)) * (stop - start)
        count += stop - start
    kl_per_dim = _numpy(kl_per_dimension(z_mean, z_log_var))
    return {
        "kl": float(kl_per_dim.sum()),
        "kl_per_dim": kl_per_dim.tolist(),
        "variance_per_dim": _numpy(posterior_variance(z_log_var)).tolist(),
        "activity_per_dim": _numpy(latent_activity(z_mean)).tolist(),
        "active_units": int(_numpy(active_units(z_mean))),
        "mutual_info": total / count,
    }
