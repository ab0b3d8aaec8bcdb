"""The LSTM encoder and decoder of sentences (token ids), the layers the decoder reads its input with, and its steps.

Both networks take sentences of any length, `(batch, None)`: a batch may be
cut to its longest sentence. `LSTMDecoderSteps` runs a decoder built by
`lstm_decoder` one position at a time, carrying the LSTM's state, for generation.
"""

import keras
from keras import layers, ops

from keras_vae import names
from keras_vae.networks.dense import _posterior_heads

# The layers of `lstm_decoder` that one step of it uses, by role -> their names in the decoder.
DECODER_LAYERS = {
    "embedding": "token_embedding",
    "cell_state": "initial_cell_state",
    "lstm": "decoder_lstm",
    "logits": "likelihood_parameters",
}


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


@keras.saving.register_keras_serializable(package="keras_vae")
class RepeatOverPositions(layers.Layer):
    """A vector per example repeated at every position of a sequence: `[vector, sequence]` → `(batch, length, dim)`.

    `RepeatVector` with the length read from the sequence, so the network takes any length.
    """

    def call(self, inputs):
        vector, sequence = inputs
        repeated = ops.expand_dims(vector, 1)
        return ops.broadcast_to(repeated, (ops.shape(sequence)[0], ops.shape(sequence)[1], ops.shape(vector)[-1]))

    def compute_output_shape(self, input_shapes):
        vector_shape, sequence_shape = input_shapes
        return (vector_shape[0], sequence_shape[1], vector_shape[-1])


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

    The network takes sentences of any length: `input_shape` is checked, and
    its length is not fixed in the `Input`.

    Args:
        input_shape: `(length,)` or `(None,)`, token ids padded with `keras_vae.names.PAD`.
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
    tokens = keras.Input(shape=(None,), name="x")
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
    before i only: the `AutoregressiveVAE` decoder contract. The network takes
    `x` of any length; its layers are named (`DECODER_LAYERS`) so that
    `LSTMDecoderSteps` can run it one position at a time.

    Args:
        output_shape: `(length, vocabulary_size)`; the length may be `None`.
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
    _, vocabulary_size = output_shape
    z = keras.Input(shape=(latent_dim,), name="z")
    tokens = keras.Input(shape=(None,), name="x")
    previous = ShiftRight(names.BOS)(tokens)
    if word_dropout:
        previous = WordDropout(word_dropout)(previous)
    embedded = layers.Embedding(vocabulary_size, embedding_dim, name=DECODER_LAYERS["embedding"])(previous)
    hidden = layers.Concatenate()([embedded, RepeatOverPositions()([z, previous])])
    # As in He et al.'s code: the cell state is a linear map of z, the hidden state its tanh.
    cell_state = layers.Dense(units, name=DECODER_LAYERS["cell_state"])(z)
    hidden = layers.LSTM(units, return_sequences=True, name=DECODER_LAYERS["lstm"])(
        hidden, initial_state=[layers.Activation("tanh")(cell_state), cell_state]
    )
    if dropout:
        hidden = layers.Dropout(dropout)(hidden)
    outputs = layers.Dense(vocabulary_size, name=DECODER_LAYERS["logits"])(hidden)
    return keras.Model([z, tokens], outputs, name=name)


class LSTMDecoderSteps:
    """A decoder built by `lstm_decoder`, one position at a time: the LSTM's state is carried, not recomputed.

    Generating n tokens then takes n LSTM steps instead of the n(n+1)/2 of
    re-running the decoder on each prefix. The state is a list of tensors
    with the batch first, `[z, h, c]`, so that beam search can repeat and
    reorder it. Use `LSTMDecoderSteps.of(decoder)`; dropout layers are left
    out (generation does not train).

    Args:
        embedding, cell_state, lstm, logits: the decoder's layers (`DECODER_LAYERS`).
        start_id: int, the token read before the first position.
    """

    def __init__(self, embedding, cell_state, lstm, logits, start_id=names.BOS):
        self.embedding = embedding
        self.cell_state = cell_state
        self.lstm = lstm
        self.logits = logits
        self.start_id = int(start_id)

    @classmethod
    def of(cls, decoder):
        """The steps of `decoder`, or None when it was not built by `lstm_decoder` (then re-run it whole)."""
        if not isinstance(decoder, keras.Model) or not hasattr(decoder, "get_layer"):
            return None
        found = {}
        for role, name in DECODER_LAYERS.items():
            try:
                found[role] = decoder.get_layer(name)
            except ValueError:
                return None
        expected = {
            "embedding": layers.Embedding,
            "cell_state": layers.Dense,
            "lstm": layers.LSTM,
            "logits": layers.Dense,
        }
        if any(not isinstance(found[role], kind) for role, kind in expected.items()):
            return None
        shifts = [layer for layer in decoder.layers if isinstance(layer, ShiftRight)]
        if len(shifts) != 1:
            return None
        return cls(**found, start_id=shifts[0].start_id)

    def initial_state(self, z):
        """`[z, h, c]` before the first position: c a linear map of z, h its tanh."""
        cell_state = self.cell_state(z)
        return [z, ops.tanh(cell_state), cell_state]

    def first_tokens(self, z):
        """The tokens read at the first position, `(batch,)` int32: the start token."""
        return ops.full((ops.shape(z)[0],), self.start_id, dtype="int32")

    def __call__(self, tokens, state):
        """The logits `(batch, vocabulary_size)` of the next position after reading `tokens` `(batch,)`, and the state."""
        z, hidden, cell = state
        inputs = ops.concatenate([self.embedding(tokens), ops.cast(z, self.lstm.compute_dtype)], axis=-1)
        output, (hidden, cell) = self.lstm.cell(inputs, [hidden, cell])
        return self.logits(output), [z, hidden, cell]
