"""The LSTM encoder and decoder of sentences (token ids), and the layers the decoder reads its input with."""

import keras
from keras import layers, ops

from keras_vae import names
from keras_vae.networks.dense import _posterior_heads


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
    input_shape,
    latent_dim,
    vocabulary_size,
    embedding_dim=256,
    units=512,
    condition_dim=0,
    input_transform=None,
    name="encoder",
):
    """An LSTM over a sentence's embedded tokens (padding masked); its last state gives the mean and log-variance.

    Args:
        input_shape: `(length,)`, token ids padded with `keras_vae.names.PAD`.
        vocabulary_size: int, the number of token ids.
    """
    if len(tuple(input_shape)) != 1:
        raise ValueError(
            f"The LSTM encoder reads sentences, token ids of shape (length,); got input_shape={tuple(input_shape)}."
        )
    if condition_dim or input_transform is not None:
        raise ValueError(
            "The LSTM encoder takes neither a condition nor an input transform: build your own encoder for that."
        )
    tokens = keras.Input(shape=tuple(input_shape), name="x")
    embedded = layers.Embedding(vocabulary_size, embedding_dim, mask_zero=True)(tokens)
    return keras.Model(tokens, _posterior_heads(layers.LSTM(units)(embedded), latent_dim), name=name)


def lstm_decoder(
    output_shape,
    latent_dim,
    embedding_dim=256,
    units=512,
    word_dropout=0.0,
    dropout=0.0,
    condition_dim=0,
    name="decoder",
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
    hidden = layers.LSTM(units, return_sequences=True)(
        hidden, initial_state=[layers.Activation("tanh")(cell_state), cell_state]
    )
    if dropout:
        hidden = layers.Dropout(dropout)(hidden)
    outputs = layers.Dense(vocabulary_size, name="likelihood_parameters")(hidden)
    return keras.Model([z, tokens], outputs, name=name)
