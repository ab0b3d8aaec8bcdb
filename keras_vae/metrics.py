"""Diagnostics of the latent code as small `keras.ops` functions, usable without callbacks."""

import math

import keras
from keras import ops

from keras_vae.losses import gaussian_kl


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


def importance_weighted_nll(vae, x, num_samples=5000, chunk_size=None, seed=None, verbose=False):
    """-log p(x) of each example, estimated with `num_samples` importance samples.

    `log p(x) ≈ logsumexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)] - log K`
    with `z_k ~ q(z|x)` (Burda et al., 2016): an upper bound on the NLL that
    tightens as K grows, and equals the negative ELBO's expectation at K = 1.
    The samples are drawn `chunk_size` at a time and combined with a running
    log-sum-exp, so memory does not grow with K (K = 5000 fits).

    Args:
        vae: a `keras_vae.VAE`.
        x: a batch of inputs.
        num_samples: int K. Defaults to `5000`.
        chunk_size: samples per chunk; by default about 8192 decoded examples at once.
        seed: int or `keras.random.SeedGenerator`.
        verbose: bool, show a progress bar over the samples.

    Returns:
        A tensor `(batch,)`, in nats.
    """
    x = ops.cast(x, vae.compute_dtype)
    batch = int(x.shape[0])
    z_mean, z_log_var = vae.encode(x)
    chunk_size = chunk_size or max(1, 8192 // batch)
    if not isinstance(seed, keras.random.SeedGenerator):
        seed = keras.random.SeedGenerator(seed)
    log_2pi = math.log(2.0 * math.pi)
    progress = keras.utils.Progbar(num_samples, unit_name="sample") if verbose else None
    total, done = None, 0
    while done < num_samples:
        count = min(chunk_size, num_samples - done)
        epsilon = keras.random.normal((count, batch, vae.latent_dim), dtype=z_mean.dtype, seed=seed)
        z = ops.expand_dims(z_mean, 0) + ops.exp(0.5 * ops.expand_dims(z_log_var, 0)) * epsilon
        decoded = vae.decoder(ops.reshape(z, (count * batch, vae.latent_dim)))
        repeated = ops.reshape(ops.broadcast_to(ops.expand_dims(x, 0), (count, *x.shape)), (count * batch, *x.shape[1:]))
        log_likelihood = ops.reshape(vae.likelihood.log_prob(repeated, decoded), (count, batch))
        log_prior = -0.5 * ops.sum(ops.square(z) + log_2pi, axis=-1)
        log_posterior = -0.5 * ops.sum(ops.square(epsilon) + log_2pi + ops.expand_dims(z_log_var, 0), axis=-1)
        chunk = ops.logsumexp(log_likelihood + log_prior - log_posterior, axis=0)
        total = chunk if total is None else ops.logaddexp(total, chunk)
        done += count
        if progress is not None:
            progress.update(done)
    return -(total - math.log(num_samples))
