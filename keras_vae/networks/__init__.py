"""Encoder and decoder builders: MLP and convolutional, and the autoregressive PixelCNN and LSTM decoders.

Any model can replace them if it keeps the contract that `VAE` relies on:

- an encoder maps `x` of shape `(batch, *input_shape)` to a pair
  `[z_mean, z_log_var]`, both of shape `(batch, latent_dim)`;
- a decoder maps `z` of shape `(batch, latent_dim)` to one tensor shaped like
  `x`, the likelihood's parameters (logits for Bernoulli, the mean for Gaussian),
  with a last axis of the likelihood's `parameters_per_feature` when that is
  above 1 (e.g. 2 for the zero-inflated negative binomial);
- in a `ConditionalVAE`, either may take a second input, the condition vector
  `(batch, condition_dim)`, as `[x, condition]` and `[z, condition]`;
- in an `AutoregressiveVAE`, the decoder takes `[z, x]` and its output at
  position i depends on `z` and on `x` before i only (`pixelcnn_decoder`,
  `lstm_decoder`).

The builders take `condition_dim` (0: no condition input) and the
encoders an `input_transform` (`"log1p"` for counts: the encoder sees
`log(1 + x)`, standardized per example, while the likelihood scores the raw
counts).
"""

import math

import keras
import numpy as np
from keras import layers, ops

from keras_vae import names

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
    input_shape, latent_dim, hidden_units=(512, 256), activation="relu", condition_dim=0, input_transform=None, name="encoder"
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


# Text: sentences as token ids (keras_vae.datasets.text), an LSTM each way -------------------------


@keras.saving.register_keras_serializable(package="keras_vae")
class ShiftRight(layers.Layer):
    """Token ids moved one position later, `start_id` first: position i then reads the token before it."""

    def __init__(self, start_id, **kwargs):
        super().__init__(**kwargs)
        self.start_id = int(start_id)

    def call(self, tokens):
        start = ops.full_like(tokens[:, :1], self.start_id)
        return ops.concatenate([start, tokens[:, :-1]], axis=1)

    def get_config(self):
        return {**super().get_config(), "start_id": self.start_id}


@keras.saving.register_keras_serializable(package="keras_vae")
class WordDropout(layers.Layer):
    """In training, each word the decoder reads becomes `<unk>` with probability `rate` (Bowman et al., 2016).

    It weakens the decoder's view of the words before, so it relies more on z.
    Padding and the start token are kept.
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= rate < 1:
            raise ValueError(f"`rate` must be in [0, 1); got {rate}.")
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, tokens, training=False):
        if not training or not self.rate:
            return tokens
        dropped = keras.random.uniform(ops.shape(tokens), seed=self.seed_generator) < self.rate
        dropped = ops.logical_and(dropped, tokens != names.PAD)
        dropped = ops.logical_and(dropped, tokens != names.BOS)
        return ops.where(dropped, ops.full_like(tokens, names.UNK), tokens)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


def lstm_encoder(
    input_shape, latent_dim, vocabulary_size, embedding_dim=256, units=512, condition_dim=0, input_transform=None, name="encoder"
):
    """An LSTM over a sentence's embedded tokens (padding masked); its last state gives the mean and log-variance.

    Args:
        input_shape: `(length,)`, token ids padded with `keras_vae.datasets.text.PAD`.
        vocabulary_size: int, the number of token ids.
    """
    if len(tuple(input_shape)) != 1:
        raise ValueError(f"The LSTM encoder reads sentences, token ids of shape (length,); got input_shape={tuple(input_shape)}.")
    if condition_dim or input_transform is not None:
        raise ValueError("The LSTM encoder takes neither a condition nor an input transform: build your own encoder for that.")
    tokens = keras.Input(shape=tuple(input_shape), name="x")
    embedded = layers.Embedding(vocabulary_size, embedding_dim, mask_zero=True)(tokens)
    return keras.Model(tokens, _posterior_heads(layers.LSTM(units)(embedded), latent_dim), name=name)


def lstm_decoder(
    output_shape, latent_dim, embedding_dim=256, units=512, word_dropout=0.0, dropout=0.0, condition_dim=0, name="decoder"
):
    """He et al. (2019)'s LSTM decoder: z sets the initial state and is read at every step; inputs `[z, x]`.

    Position i reads z and the token before it (`<bos>` first, then `x`
    shifted right), so its logits over the vocabulary depend on the tokens
    before i only: the `AutoregressiveVAE` decoder contract.

    Args:
        output_shape: `(length, vocabulary_size)`.
        embedding_dim, units: int. Default to `256` and `512`.
        word_dropout: float, Bowman et al.'s word dropout on the tokens read. Defaults to `0.0`.
        dropout: float, dropout on the LSTM's outputs. Defaults to `0.0`.
    """
    if len(tuple(output_shape)) != 2:
        raise ValueError(
            f"The LSTM decoder outputs (length, vocabulary_size) logits; got output_shape={tuple(output_shape)}: "
            "use the likelihoods.Categorical likelihood."
        )
    if condition_dim:
        raise ValueError("The LSTM decoder does not take a condition: build your own decoder for that.")
    length, vocabulary_size = output_shape
    z = keras.Input(shape=(latent_dim,), name="z")
    tokens = keras.Input(shape=(length,), name="x")
    previous = ShiftRight(names.BOS)(tokens)
    if word_dropout:
        previous = WordDropout(word_dropout)(previous)
    embedded = layers.Embedding(vocabulary_size, embedding_dim)(previous)
    hidden = layers.Concatenate()([embedded, layers.RepeatVector(length)(z)])
    # As in He et al.'s code: the cell state is a linear map of z, the hidden state its tanh.
    cell_state = layers.Dense(units)(z)
    hidden = layers.LSTM(units, return_sequences=True)(hidden, initial_state=[layers.Activation("tanh")(cell_state), cell_state])
    if dropout:
        hidden = layers.Dropout(dropout)(hidden)
    outputs = layers.Dense(vocabulary_size, name="likelihood_parameters")(hidden)
    return keras.Model([z, tokens], outputs, name=name)


# --- Gated PixelCNN decoder (van den Oord et al., 2016) ---------------------------

MASK_TYPES = ("A", "B", "vertical")


@keras.saving.register_keras_serializable(package="keras_vae")
class MaskedConv2D(layers.Conv2D):
    """A 'same'-padded `Conv2D` whose kernel is multiplied by a fixed causal mask.

    With the kernel's centre at the output pixel, the mask keeps:

    - `"A"`: the taps before the centre in raster (row-major) order;
    - `"B"`: those and the centre;
    - `"vertical"`: the rows up to and including the centre row, all columns.

    Args:
        filters: int, output channels.
        kernel_size: int or pair of odd ints.
        mask_type: one of `"A"`, `"B"`, `"vertical"`. Defaults to `"B"`.
        **kwargs: any other `Conv2D` argument but `padding` (always `"same"`).
    """

    def __init__(self, filters, kernel_size, mask_type="B", **kwargs):
        if kwargs.pop("padding", "same") != "same":  # from_config passes it back
            raise ValueError("A masked convolution pads 'same' (the mask is placed around each output pixel).")
        super().__init__(filters, kernel_size, padding="same", **kwargs)
        if mask_type not in MASK_TYPES:
            raise ValueError(f"`mask_type` must be one of {MASK_TYPES}; got {mask_type!r}.")
        if any(size % 2 == 0 for size in self.kernel_size):
            raise ValueError(f"A masked convolution needs an odd kernel size (it has a centre); got {self.kernel_size}.")
        self.mask_type = mask_type
        height, width = self.kernel_size
        rows, columns = np.meshgrid(np.arange(height) - height // 2, np.arange(width) - width // 2, indexing="ij")
        if mask_type == "vertical":
            keep = rows <= 0
        else:
            keep = (rows < 0) | ((rows == 0) & ((columns < 0) if mask_type == "A" else (columns <= 0)))
        # (height, width, 1, 1): broadcasts over the kernel's input and output channels.
        self.mask = keep.astype("float32")[:, :, None, None]

    def convolution_op(self, inputs, kernel):
        return super().convolution_op(inputs, kernel * ops.convert_to_tensor(self.mask, dtype=kernel.dtype))

    def get_config(self):
        config = super().get_config()
        config["mask_type"] = self.mask_type
        return config


def _shift_down(stack):
    """Each row takes the one above it (the top row zeros): row r then sees rows < r only."""
    return ops.pad(stack, [[0, 0], [1, 0], [0, 0], [0, 0]])[:, :-1]


def _gate(pre_activation):
    tanh_half, sigmoid_half = ops.split(pre_activation, 2, axis=-1)
    return ops.tanh(tanh_half) * ops.sigmoid(sigmoid_half)


@keras.saving.register_keras_serializable(package="keras_vae")
class GatedPixelCNNBlock(layers.Layer):
    """One gated PixelCNN layer: a vertical and a horizontal stack, both conditioned on `z`.

    The vertical stack (a k×k convolution masked to the rows up to the current
    one) sees everything above; a 1×1 link carries it, shifted down one row, to
    the horizontal stack (a 1×k convolution over the current row, left of the
    pixel), so the two together have no blind spot. Each stack's
    pre-activation gets `Dense(z)` added at every pixel and goes through
    `tanh(f) * sigmoid(g)`; the horizontal output is a 1×1 convolution of that,
    plus the input (the residual) in mask B blocks.

    Call it on `[vertical, horizontal, z]`, `(batch, height, width, channels)`
    twice and `(batch, latent_dim)`; it returns `[vertical, horizontal]`, each
    with `filters` channels.

    Args:
        filters: int, channels of both stacks.
        kernel_size: odd int. Defaults to `3`.
        mask_type: `"A"` (the first block: the horizontal stack does not see
            the current pixel, and has no residual) or `"B"` (the others).
            Defaults to `"B"`.

    References:
        van den Oord et al. (2016), Conditional Image Generation with PixelCNN Decoders.
    """

    def __init__(self, filters, kernel_size=3, mask_type="B", **kwargs):
        super().__init__(**kwargs)
        if mask_type not in ("A", "B"):
            raise ValueError(f"A gated PixelCNN block has mask_type 'A' (the first block) or 'B'; got {mask_type!r}.")
        self.filters = filters
        self.kernel_size = kernel_size
        self.mask_type = mask_type
        self.vertical_conv = MaskedConv2D(2 * filters, kernel_size, mask_type="vertical", name="vertical_conv")
        self.horizontal_conv = MaskedConv2D(2 * filters, (1, kernel_size), mask_type=mask_type, name="horizontal_conv")
        self.vertical_to_horizontal = layers.Conv2D(2 * filters, 1, name="vertical_to_horizontal")
        self.latent_bias = layers.Dense(2 * filters, name="latent_bias")
        self.horizontal_output = layers.Conv2D(filters, 1, name="horizontal_output")

    def build(self, input_shape):
        vertical_shape, horizontal_shape, z_shape = input_shape
        self.vertical_conv.build(vertical_shape)
        self.horizontal_conv.build(horizontal_shape)
        self.vertical_to_horizontal.build((*vertical_shape[:-1], 2 * self.filters))
        self.latent_bias.build(z_shape)
        self.horizontal_output.build((*horizontal_shape[:-1], self.filters))

    def call(self, inputs):
        vertical, horizontal, z = inputs
        latent_bias = self.latent_bias(z)[:, None, None, :]
        vertical_features = self.vertical_conv(vertical)
        # The vertical stack at row r has seen row r whole: shifted down, it tells
        # row r's horizontal stack about rows < r only.
        link = self.vertical_to_horizontal(_shift_down(vertical_features))
        vertical_out = _gate(vertical_features + latent_bias)
        horizontal_out = self.horizontal_output(_gate(self.horizontal_conv(horizontal) + link + latent_bias))
        if self.mask_type == "B":  # in the first block it would add the current pixel itself
            horizontal_out = horizontal_out + horizontal
        return [vertical_out, horizontal_out]

    def compute_output_shape(self, input_shape):
        vertical_shape, horizontal_shape, _ = input_shape
        return [(*vertical_shape[:-1], self.filters), (*horizontal_shape[:-1], self.filters)]

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters, "kernel_size": self.kernel_size, "mask_type": self.mask_type})
        return config


def pixelcnn_decoder(output_shape, latent_dim, filters=32, num_blocks=5, kernel_size=3, condition_dim=0, name="decoder"):
    """A gated PixelCNN decoder of binary images: `[z, x]` → the logit of each pixel given `z` and the pixels before it.

    A mask A `GatedPixelCNNBlock`, `num_blocks - 1` mask B ones (each with `z`
    added to its pre-activations), then a 1×1 convolution to one logit per pixel
    (the layer `"likelihood_parameters"`, the model's last). The logit at pixel
    i (row-major) depends on `z` and on pixels j < i only; `x` goes in
    unshifted, the masks keep the order. For training, one teacher-forced pass
    scores every pixel.

    Receptive field: L = `num_blocks` blocks of kernel k reach L·(k // 2)
    pixels to the left in the current row and, above it, the L·(k // 2) + 1
    rows of L·(k // 2) columns either side (6 rows, ±5 columns by default).
    Cost: sampling takes one full decoder pass per pixel (784 for 28×28 images).

    Args:
        output_shape: `(height, width, 1)`, the binary images.
        latent_dim: int, the size of `z`.
        filters: int, channels of each stack. Defaults to `32`.
        num_blocks: int, gated blocks. Defaults to `5`.
        kernel_size: odd int. Defaults to `3`.
        condition_dim: must be 0; there for the other builders' signature.
        name: str. Defaults to `"decoder"`.

    Returns:
        A `keras.Model` with inputs `z` `(batch, latent_dim)` and `x`
        `(batch, *output_shape)`, in that order, and the Bernoulli logits
        `(batch, *output_shape)`.
    """
    if condition_dim:
        raise ValueError(
            "The PixelCNN decoder does not take a condition; use condition_dim=0, or the 'mlp' or 'conv' decoder for a ConditionalVAE."
        )
    if len(output_shape) != 3 or output_shape[-1] != 1:
        raise ValueError(
            f"The PixelCNN decoder models binary images (height, width, 1); got output_shape={tuple(output_shape)}. "
            "Binarize to one channel, or use architecture='conv' for other images."
        )
    if num_blocks < 1:
        raise ValueError(f"The PixelCNN decoder needs num_blocks >= 1 (the first is the mask A block); got {num_blocks}.")
    z = keras.Input(shape=(latent_dim,), name="z")
    x = keras.Input(shape=tuple(output_shape), name="x")
    vertical, horizontal = x, x
    for index in range(num_blocks):
        block = GatedPixelCNNBlock(filters, kernel_size, mask_type="A" if index == 0 else "B", name=f"gated_block_{index}")
        vertical, horizontal = block([vertical, horizontal, z])
    outputs = layers.Conv2D(output_shape[-1], 1, name="likelihood_parameters")(horizontal)
    return keras.Model([z, x], outputs, name=name)


ARCHITECTURES = {
    "mlp": (mlp_encoder, mlp_decoder),
    "conv": (conv_encoder, conv_decoder),
    "lstm": (lstm_encoder, lstm_decoder),
    "pixelcnn": (conv_encoder, pixelcnn_decoder),
}
