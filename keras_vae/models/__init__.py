from keras_vae.models.autoregressive_vae import AutoregressiveVAE
from keras_vae.models.conditional_vae import ConditionalVAE
from keras_vae.models.vae import VAE

__all__ = ["AutoregressiveVAE", "ConditionalVAE", "VAE"]
