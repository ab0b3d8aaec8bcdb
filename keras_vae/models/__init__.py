from keras_vae.models.autoregressive_vae import AutoregressiveVAE
from keras_vae.models.conditional_vae import ConditionalVAE
from keras_vae.models.language_model import LanguageModel
from keras_vae.models.vae import VAE
from keras_vae.models.vae_gan import VAEGAN

__all__ = ["VAEGAN", "AutoregressiveVAE", "ConditionalVAE", "LanguageModel", "VAE"]
