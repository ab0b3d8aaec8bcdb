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
  `lstm_decoder`). The LSTM networks take sentences of any length
  (`keras.Input(shape=(None,))`).

The builders take `condition_dim` (0: no condition input) and the
encoders an `input_transform` (`"log1p"` for counts: the encoder sees
`log(1 + x)`, standardized per example, while the likelihood scores the raw
counts).
"""

from keras_vae import names
from keras_vae.networks.dense import INPUT_TRANSFORMS, Log1p, conv_decoder, conv_encoder, mlp_decoder, mlp_encoder
from keras_vae.networks.lstm import (
    DECODER_LAYERS,
    LSTMDecoderSteps,
    RepeatOverPositions,
    ShiftRight,
    WordDropout,
    lstm_decoder,
    lstm_encoder,
)
from keras_vae.networks.pixelcnn import MASK_TYPES, GatedPixelCNNBlock, MaskedConv2D, pixelcnn_decoder

# Name (`keras_vae.names.ARCHITECTURES`) -> (encoder builder, decoder builder).
ARCHITECTURES = {
    names.MLP: (mlp_encoder, mlp_decoder),
    names.CONV: (conv_encoder, conv_decoder),
    names.LSTM: (lstm_encoder, lstm_decoder),
    names.PIXELCNN: (conv_encoder, pixelcnn_decoder),
}
# The command line offers `names.ARCHITECTURES` before Keras is imported: every one needs builders here.
if set(ARCHITECTURES) != set(names.ARCHITECTURES):
    raise ImportError(
        f"keras_vae.networks builds {sorted(ARCHITECTURES)}, but keras_vae.names lists {sorted(names.ARCHITECTURES)}."
    )

__all__ = [
    "ARCHITECTURES",
    "DECODER_LAYERS",
    "INPUT_TRANSFORMS",
    "MASK_TYPES",
    "GatedPixelCNNBlock",
    "LSTMDecoderSteps",
    "Log1p",
    "MaskedConv2D",
    "RepeatOverPositions",
    "ShiftRight",
    "WordDropout",
    "conv_decoder",
    "conv_encoder",
    "lstm_decoder",
    "lstm_encoder",
    "mlp_decoder",
    "mlp_encoder",
    "pixelcnn_decoder",
]
