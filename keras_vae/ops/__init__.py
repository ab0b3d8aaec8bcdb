"""Pure `keras.ops` math of the VAE objective and of the latent code, usable outside the model."""

from keras_vae.ops.kl import free_bits_kl, gaussian_kl
from keras_vae.ops.latent import (
    active_units,
    kl_per_dimension,
    latent_activity,
    latent_statistics,
    mutual_information,
    posterior_variance,
)

__all__ = [
    "active_units",
    "free_bits_kl",
    "gaussian_kl",
    "kl_per_dimension",
    "latent_activity",
    "latent_statistics",
    "mutual_information",
    "posterior_variance",
]
