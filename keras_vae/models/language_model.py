"""An LSTM language model: the text VAE's decoder without a latent code, the baseline its perplexity is read against."""

import keras
import numpy as np
from keras import layers, ops

from keras_vae import names
from keras_vae.datasets.batching import numpy_batches
from keras_vae.likelihoods.categorical import Categorical, categorical_log_prob
from keras_vae.models.own_loss import ComputesOwnLoss
from keras_vae.networks.lstm import ShiftRight
from keras_vae.trainers import scale_loss_for_replicas


def lstm_language_model_network(vocabulary_size, embedding_dim=256, units=512, dropout=0.0, name="language_model"):
    """`networks.lstm_decoder` without z: position i reads the token before it; sentences of any length.

    Args:
        vocabulary_size: int, the number of token ids.
        embedding_dim, units: int, as the decoder's. Default to `256` and `512`.
        dropout: float, dropout on the LSTM's outputs. Defaults to `0.0`.
    """
    tokens = keras.Input(shape=(None,), name="x")
    embedded = layers.Embedding(vocabulary_size, embedding_dim)(ShiftRight(names.BOS)(tokens))
    hidden = layers.LSTM(units, return_sequences=True)(embedded)
    if dropout:
        hidden = layers.Dropout(dropout)(hidden)
    return keras.Model(tokens, layers.Dense(vocabulary_size)(hidden), name=name)


@keras.saving.register_keras_serializable(package="keras_vae")
class LanguageModel(ComputesOwnLoss, keras.Model):
    """p(x) = Π_i p(x_i | x_<i): the LSTM decoder of a text VAE with no latent code.

    He et al. (2019) and Bowman et al. (2016) report a text VAE's perplexity
    beside such a model's: a code pays only if the VAE's importance-weighted
    NLL beats it. Its loss is the mean negative log-likelihood of a sentence
    in nats (padding not scored), the same quantity as a VAE's reconstruction
    term, so `fit`, `evaluate` and the training logs read alike.

    Args:
        network: a Keras model from token ids `(batch, length)` to logits
            `(batch, length, vocabulary_size)` that reads, at position i, only
            the tokens before i (`lstm_language_model_network`).

    Example:
    ```python
    model = keras_vae.models.LanguageModel.from_vocabulary_size(10_000)
    model.compile()
    model.fit(train_ids, epochs=5, batch_size=32)
    model.perplexity(test_ids)
    ```
    """

    def __init__(self, network, **kwargs):
        super().__init__(**kwargs)
        self.network = network

    @classmethod
    def from_vocabulary_size(cls, vocabulary_size, embedding_dim=256, units=512, dropout=0.0):
        """A language model with the text VAE decoder's default sizes."""
        return cls(lstm_language_model_network(vocabulary_size, embedding_dim, units, dropout))

    def initialize_output_bias(self, x):
        """Starts the model at the unigram distribution: the output layer's bias set to the log frequency of each
        token in the token-id array `x` (padding left out), as `VAE.initialize_decoder_bias` does for the text VAE.

        Call it once, before training; without it, a few hundred iterations are
        spent learning word frequencies (measured on 1500 PTB documents, 6
        epochs: 446 against 407 nats per document for the text VAE, which starts there).
        """
        output = self.network.layers[-1]
        frequencies = Categorical(output.units).initial_decoded(np.asarray(x))
        output.bias.assign(np.asarray(frequencies, "float32"))

    def call(self, x, training=False):
        return self.network(x, training=training)

    def compile(self, optimizer=names.ADAM, **kwargs):
        """Configures training. With no arguments: Adam; the loss is the model's own."""
        self.refuse_loss_arguments(kwargs)
        super().compile(optimizer=optimizer, **kwargs)
        self._compile_arguments = dict(optimizer=self.optimizer, **kwargs)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return scale_loss_for_replicas(-ops.mean(categorical_log_prob(x, y_pred, names.PAD)))

    def nll(self, x, batch_size=128):
        """The negative log-likelihood of each sentence in nats, as NumPy `(n,)`: exact, there is no latent."""
        return np.concatenate(
            [
                -ops.convert_to_numpy(categorical_log_prob(batch, self(batch), names.PAD))
                for batch in numpy_batches(x, batch_size)
            ]
        )

    def perplexity(self, x, batch_size=128):
        """exp(total NLL / scored tokens) over a token-id array `x` (padding not scored), as for the text VAE."""
        tokens = np.sum(np.asarray(x) != names.PAD)  # as `datasets.text.perplexity`, which models may not import
        return float(np.exp(np.sum(self.nll(x, batch_size), dtype="float64") / tokens))

    def get_config(self):
        return {**super().get_config(), "network": keras.saving.serialize_keras_object(self.network)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        network = keras.saving.deserialize_keras_object(config.pop("network"))
        return cls(network, **config)
