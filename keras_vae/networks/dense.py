"""MLP and convolutional encoders and decoders, and the helpers every encoder shares.

The encoders' input transform (`log1p` for counts) and posterior heads
(`z_mean`, `z_log_var`) live here; the LSTM encoder reuses the heads.
"""

import math

import keras
from keras import layers, ops

INPUT_TRANSFORMS = (None, "log1p")


@keras.saving.register_keras_serializable(package="keras_vae")
class Log1p(layers.Layer):
    """`log(1 + x)`: what an encoder of count data sees."""

    def call(self, inputs):
        return ops.log1p(inputs)


def _encoder_input(input_shape, input_transform):
    """The encoder's input `x` and what its first layer sees (`x`, or `log(1 + x)`)."""
    if input_transform not in INPUT_TRANSFORMS:
        raise ValueError(f"`input_transform` must be one of {INPUT_TRANSFORMS}; got {input_transform!r}.")
    x = keras.Input(shape=tuple(input_shape), name="x")
    if input_transform is None:
        return x, x
    # Each example's log-counts standardized across its features: deep and shallow
    # libraries alike start the encoder near unit scale (raw log1p of 1000 genes
    # gave initial KLs of thousands of nats).
    return x, layers.LayerNormalization(axis=tuple(range(1, len(input_shape) + 1)))(Log1p()(x))


def _with_condition(main_input, hidden, condition_dim):
    """`(inputs, hidden)`: with a condition, a second input concatenated to `hidden` (batch, units)."""
    if not condition_dim:
        return main_input, hidden
    condition = keras.Input(shape=(condition_dim,), name="condition")
    return [main_input, condition], layers.Concatenate()([hidden, condition])


def _posterior_heads(hidden, latent_dim):
    z_mean = layers.Dense(latent_dim, name="z_mean")(hidden)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(hidden)
    return [z_mean, z_log_var]


def mlp_encoder(
    input_shape,
    latent_dim,
    hidden_units=(512, 256),
    activation="relu",
    condition_dim=0,
    input_transform=None,
    name="encoder",
):
    """An MLP encoder: flatten (and append the condition), `hidden_units` dense layers, then mean and log-variance heads."""
    x, hidden = _encoder_input(input_shape, input_transform)
    inputs, hidden = _with_condition(x, layers.Flatten()(hidden), condition_dim)
    for units in hidden_units:
        hidden = layers.Dense(units, activation=activation)(hidden)
    return keras.Model(inputs, _posterior_heads(hidden, latent_dim), name=name)


def mlp_decoder(output_shape, latent_dim, hidden_units=(256, 512), activation="relu", condition_dim=0, name="decoder"):
    """An MLP decoder: (z and the condition) `hidden_units` dense layers, then one linear unit per output value."""
    z = keras.Input(shape=(latent_dim,), name="z")
    inputs, hidden = _with_condition(z, z, condition_dim)
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


def conv_encoder(
    input_shape, latent_dim, filters=(32, 64), dense_units=256, condition_dim=0, input_transform=None, name="encoder"
):
    """A convolutional encoder: stride-2 3×3 convolutions, (the condition appended), a dense layer and the heads."""
    _check_image_shape(input_shape, 2 ** len(filters))
    x, hidden = _encoder_input(input_shape, input_transform)
    for count in filters:
        hidden = layers.Conv2D(count, 3, strides=2, padding="same", activation="relu")(hidden)
    inputs, hidden = _with_condition(x, layers.Flatten()(hidden), condition_dim)
    hidden = layers.Dense(dense_units, activation="relu")(hidden)
    return keras.Model(inputs, _posterior_heads(hidden, latent_dim), name=name)


def conv_decoder(output_shape, latent_dim, filters=(64, 32), dense_units=256, condition_dim=0, name="decoder"):
    """The mirror of `conv_encoder`: (z and the condition) dense layers, then stride-2 transposed convolutions."""
    _check_image_shape(output_shape, 2 ** len(filters))
    height, width, channels = output_shape
    scale = 2 ** len(filters)
    z = keras.Input(shape=(latent_dim,), name="z")
    inputs, hidden = _with_condition(z, z, condition_dim)
    hidden = layers.Dense(dense_units, activation="relu")(hidden)
    hidden = layers.Dense((height // scale) * (width // scale) * filters[0], activation="relu")(hidden)
    hidden = layers.Reshape((height // scale, width // scale, filters[0]))(hidden)
    for count in filters:
        hidden = layers.Conv2DTranspose(count, 3, strides=2, padding="same", activation="relu")(hidden)
    outputs = layers.Conv2DTranspose(channels, 3, padding="same", name="likelihood_parameters")(hidden)
    return keras.Model(inputs, outputs, name=name)
