"""A gated PixelCNN decoder of binary images (van den Oord et al., 2016) and its masked-convolution layers."""

import keras
import numpy as np
from keras import layers, ops

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
            raise ValueError(
                f"A masked convolution needs an odd kernel size (it has a centre); got {self.kernel_size}."
            )
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


def pixelcnn_decoder(
    output_shape, latent_dim, filters=32, num_blocks=5, kernel_size=3, condition_dim=0, name="decoder"
):
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
        raise ValueError(
            f"The PixelCNN decoder needs num_blocks >= 1 (the first is the mask A block); got {num_blocks}."
        )
    z = keras.Input(shape=(latent_dim,), name="z")
    x = keras.Input(shape=tuple(output_shape), name="x")
    vertical, horizontal = x, x
    for index in range(num_blocks):
        block = GatedPixelCNNBlock(
            filters, kernel_size, mask_type="A" if index == 0 else "B", name=f"gated_block_{index}"
        )
        vertical, horizontal = block([vertical, horizontal, z])
    outputs = layers.Conv2D(output_shape[-1], 1, name="likelihood_parameters")(horizontal)
    return keras.Model([z, x], outputs, name=name)
