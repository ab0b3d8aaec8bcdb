"""Optimizers that Keras 3 lacks (RAdam, Liu et al. 2020), the optimizers by name, and the
learning rate for another batch size (scaling rules and a warm-up).

Importing the module registers the classes for `.keras` files (package `keras_vae`).
"""

import keras

from keras_vae import names
from keras_vae.optimizers.radam import RAdam
from keras_vae.optimizers.scaling import WarmupLearningRate, batch_size_scale


def get(name, **options):
    """A new optimizer by its command-line name (`keras_vae.names.OPTIMIZERS`): Keras's Adam,
    AdamW or SGD, or keras_vae's RAdam, with `options` (`learning_rate`, `beta_1`, ...)."""
    if name not in names.OPTIMIZERS:
        raise ValueError(f"Unknown optimizer {name!r}: use one of {tuple(names.OPTIMIZERS)}.")
    class_name = names.OPTIMIZERS[name]
    optimizer_class = getattr(keras.optimizers, class_name, None) or globals()[class_name]
    return optimizer_class(**options)


__all__ = ["RAdam", "WarmupLearningRate", "batch_size_scale", "get"]
