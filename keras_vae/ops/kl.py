"""The KL part of the VAE objective, as small pure `keras.ops` functions.

Both work on any backend and outside the model.
"""

from keras import ops


def gaussian_kl(z_mean, z_log_var):
    """KL(N(mean, exp(log_var)) || N(0, I)) per example and latent dimension.

    Args:
        z_mean: tensor of shape `(batch, latent_dim)`, the posterior means.
        z_log_var: tensor of the same shape, the posterior log-variances.

    Returns:
        A tensor of shape `(batch, latent_dim)`: `0.5 * (mean² + σ² - log σ² - 1)`,
        which is ≥ 0 everywhere. Sum over the last axis for the KL of each example.
    """
    z_mean = ops.convert_to_tensor(z_mean)
    z_log_var = ops.convert_to_tensor(z_log_var)
    return 0.5 * (ops.square(z_mean) + ops.exp(z_log_var) - z_log_var - 1.0)


def free_bits_kl(kl_per_dim, free_bits):
    """The free-bits KL term of Kingma et al. (2016).

    The KL of each latent dimension is averaged over the batch, clamped below at
    `free_bits` nats, then summed over dimensions. A dimension whose KL is under
    the threshold gets no gradient pushing it further towards the prior.

    Args:
        kl_per_dim: tensor of shape `(batch, latent_dim)`, e.g. from `gaussian_kl`.
        free_bits: float λ ≥ 0, nats per latent dimension. With 0 the result is
            the plain batch-mean KL.

    Returns:
        A scalar tensor.
    """
    kl_per_dim = ops.convert_to_tensor(kl_per_dim)
    mean_kl_per_dim = ops.mean(kl_per_dim, axis=0)
    if free_bits:
        mean_kl_per_dim = ops.maximum(mean_kl_per_dim, free_bits)
    return ops.sum(mean_kl_per_dim)
