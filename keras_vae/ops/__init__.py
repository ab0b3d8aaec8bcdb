"""Pure `keras.ops` math of the VAE objective, of the latent code and of token-by-token decoding, usable outside the model."""

from keras_vae.ops.decoding import beam_search, decode_step_by_step, end_at_first
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
    "beam_search",
    "decode_step_by_step",
    "end_at_first",
    "free_bits_kl",
    "gaussian_kl",
    "kl_per_dimension",
    "latent_activity",
    "latent_statistics",
    "mutual_information",
    "posterior_variance",
]
