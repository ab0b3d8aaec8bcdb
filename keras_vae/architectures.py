"""Default encoder and decoder builders (MLP and convolutional).

Any model can replace them if it keeps the contract that `VAE` relies on:

- an encoder maps `x` of shape `(batch, *input_shape)` to a pair
  `[z_mean, z_log_var]`, both of shape `(batch, latent_dim)`;
- a decoder maps `z` of shape `(batch, latent_dim)` to one tensor shaped like
  `x`, the likelihood's parameters (logits for Bernoulli, the mean for Gaussian).
"""

import math

import keras
from keras import layers


def _posterior_heads(hidden, latent_dim):
    z_mean = layers.Dense(latent_dim, name="z_mean")(hidden)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(hidden)
    return [z_mean, z_log_var]


def mlp_encoder(input_shape, latent_dim, hidden_units=(512, 256), activation="relu", name="encoder"):
    """An MLP encoder: flatten, `hidden_units` dense layers, then mean and log-variance heads."""
    inputs = keras.Input(shape=tuple(input_shape), name="x")
    hidden = layers.Flatten()(inputs)
    for units in hidden_units:
        hidden = layers.Dense(units, activation=activation)(hidden)
    return keras.Model(inputs, _posterior_heads(hidden, latent_dim), name=name)


def mlp_decoder(output_shape, latent_dim, hidden_units=(256, 512), activation="relu", name="decoder"):
    """An MLP decoder: `hidden_units` dense layers, then one linear unit per feature of `x`."""
    inputs = keras.Input(shape=(latent_dim,), name="z")
    hidden = inputs
    for units in hidden_units:
        hidden = layers.Dense(units, activation=activation)(hidden)
    hidden = layers.Dense(math.prod(output_shape), name="likelihood_parameters")(hidden)
    outputs = layers.Reshape(tuple(output_shape))(hidden)
    return keras.Model(inputs, outputs, name=name)


def _check_image_shape(shape, downsampling):
    if len(shape) != 3 or shape[0] % downsampling or shape[1] % downsampling:
        raise ValueError(
            f"A convolutional VAE needs images (height, width, channels) with height "
            f"and width divisible by {downsampling}; got input_shape={tuple(shape)}. "
            "Pad or resize the images, or use architecture='mlp'."
        )


def conv_encoder(input_shape, latent_dim, filters=(32, 64), dense_units=256, name="encoder"):
    """A convolutional encoder: stride-2 3×3 convolutions, then a dense layer and the heads."""
    _check_image_shape(input_shape, 2 ** len(filters))
    inputs = keras.Input(shape=tuple(input_shape), name="x")
    hidden = inputs
    for count in filters:
        hidden = layers.Conv2D(count, 3, strides=2, padding="same", activation="relu")(hidden)
    hidden = layers.Flatten()(hidden)
    hidden = layers.Dense(dense_units, activation="relu")(hidden)
    return keras.Model(inputs, _posterior_heads(hidden, latent_dim), name=name)


def conv_decoder(output_shape, latent_dim, filters=(64, 32), dense_units=256, name="decoder"):
    """The mirror of `conv_encoder`: dense layers, then stride-2 transposed convolutions."""
    _check_image_shape(output_shape, 2 ** len(filters))
    height, width, channels = output_shape
    scale = 2 ** len(filters)
    inputs = keras.Input(shape=(latent_dim,), name="z")
    hidden = layers.Dense(dense_units, activation="relu")(inputs)
    hidden = layers.Dense((height // scale) * (width // scale) * filters[0], activation="relu")(hidden)
    hidden = layers.Reshape((height // scale, width // scale, filters[0]))(hidden)
    for count in filters:
        hidden = layers.Conv2DTranspose(count, 3, strides=2, padding="same", activation="relu")(hidden)
    outputs = layers.Conv2DTranspose(channels, 3, padding="same", name="likelihood_parameters")(hidden)
    return keras.Model(inputs, outputs, name=name)


ARCHITECTURES = {"mlp": (mlp_encoder, mlp_decoder), "conv": (conv_encoder, conv_decoder)}
