"""keras-vae: variational autoencoders for Keras 3 that do not silently collapse.

Importing the package imports Keras (and its backend, chosen by `KERAS_BACKEND`)
and registers every serializable class, so `keras.saving.load_model` reads a
saved VAE after a plain `import keras_vae`, and every module the documentation
names is reachable from it. matplotlib is imported when a figure is first drawn.
"""

from keras_vae import (
    callbacks,
    datasets,
    distribute,
    evaluation,
    likelihoods,
    lr_finder,
    names,
    networks,
    ops,
    optimizers,
    plotting,
    schedules,
)
from keras_vae.hub import export
from keras_vae.models import VAE, VAEGAN, AutoregressiveVAE, ConditionalVAE, LanguageModel
from keras_vae.trainers.optimizer import EncoderDecoderOptimizer, MultiPartOptimizer
from keras_vae.version import __version__

__all__ = [
    "VAE",
    "VAEGAN",
    "AutoregressiveVAE",
    "ConditionalVAE",
    "EncoderDecoderOptimizer",
    "LanguageModel",
    "MultiPartOptimizer",
    "__version__",
    "callbacks",
    "datasets",
    "distribute",
    "evaluation",
    "export",
    "likelihoods",
    "lr_finder",
    "names",
    "networks",
    "ops",
    "optimizers",
    "plotting",
    "schedules",
]
