"""keras-vae: variational autoencoders for Keras 3 that do not silently collapse.

Importing the package does not import Keras: the public names below are loaded
on first use, so a command line can still choose `KERAS_BACKEND` first.
"""

import importlib

from keras_vae.version import __version__

# Public name -> module that defines it.
_LAZY_ATTRIBUTES = {
    "VAE": "keras_vae.models.vae",
    "AutoregressiveVAE": "keras_vae.models.autoregressive_vae",
    "ConditionalVAE": "keras_vae.models.conditional_vae",
    "EncoderDecoderOptimizer": "keras_vae.optimizers",
    "export": "keras_vae.hub",
}
_LAZY_MODULES = (
    "architectures",
    "callbacks",
    "data",
    "diagnostics",
    "downstream",
    "hub",
    "likelihoods",
    "losses",
    "metrics",
    "models",
    "optimizers",
    "plotting",
    "schedules",
    "synthetic",
    "text",
)


def __getattr__(name):
    if name in _LAZY_ATTRIBUTES:
        return getattr(importlib.import_module(_LAZY_ATTRIBUTES[name]), name)
    if name in _LAZY_MODULES:
        return importlib.import_module(f"keras_vae.{name}")
    raise AttributeError(f"module 'keras_vae' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_LAZY_ATTRIBUTES, *_LAZY_MODULES])


__all__ = ["__version__", *_LAZY_ATTRIBUTES, *_LAZY_MODULES]
