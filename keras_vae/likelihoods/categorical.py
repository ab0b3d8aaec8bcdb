"""One token out of a vocabulary per position (words of a sentence): `categorical_log_prob` and `Categorical`."""

import keras
import numpy as np
from keras import ops

from keras_vae.likelihoods.base import Likelihood, sum_over_features


def categorical_log_prob(x, logits, padding_id=0):
    """log p(x | logits) of independent categorical tokens, summed over the positions that are not padding.

    Args:
        x: tensor `(batch, length)` of token ids (any number type), with
            `padding_id` after the end of each sequence.
        logits: tensor `(batch, length, num_classes)`.
        padding_id: int, the id whose positions are not scored. Defaults to `0`.

    Returns:
        A tensor `(batch,)`, ≤ 0.
    """
    tokens = ops.cast(x, "int32")
    log_probabilities = ops.log_softmax(logits, axis=-1)
    picked = ops.take_along_axis(log_probabilities, ops.expand_dims(tokens, -1), axis=-1)[..., 0]
    return sum_over_features(ops.where(tokens == padding_id, ops.zeros_like(picked), picked))


@keras.saving.register_keras_serializable(package="keras_vae")
class Categorical(Likelihood):
    """One token out of `num_classes` per position, e.g. a word of a sentence; the decoder outputs logits.

    `x` holds token ids `(batch, length)` with `padding_id` after each
    sequence's end; padded positions are not scored, so the log-likelihood of
    a sentence is the sum over its own tokens (its end token included).

    Args:
        num_classes: int, the vocabulary size.
        padding_id: int. Defaults to `0`.
    """

    def __init__(self, num_classes, padding_id=0, **kwargs):
        super().__init__(**kwargs)
        if int(num_classes) < 2:
            raise ValueError(f"`num_classes` must be at least 2; got {num_classes}.")
        self.num_classes = int(num_classes)
        self.padding_id = int(padding_id)

    @property
    def parameters_per_feature(self):
        return self.num_classes

    def log_prob(self, x, decoded, condition=None):
        return categorical_log_prob(x, decoded, self.padding_id)

    def mean(self, decoded, condition=None):
        """The probability of each token at each position: `(batch, length, num_classes)`."""
        return ops.softmax(decoded, axis=-1)

    def initial_decoded(self, x):
        """The log frequency of each token in `x` (padding left out), for every position."""
        tokens = np.asarray(x, "int64").ravel()
        counts = np.bincount(tokens[tokens != self.padding_id], minlength=self.num_classes)[: self.num_classes]
        return np.log((counts + 0.5) / (counts.sum() + 0.5 * self.num_classes))

    def distribution_parameters(self, decoded, condition=None):
        return {"mean": self.mean(decoded), "logits": decoded}

    def draw(self, decoded, uniform=None, condition=None):
        """Token ids from the logits, never the padding id: the most probable, or drawn with `uniform`.

        `uniform` is noise shaped like `x`; the draw is Gumbel-max.
        """
        never = ops.one_hot(self.padding_id, self.num_classes, dtype=decoded.dtype) * -1e9
        logits = decoded + never
        if uniform is not None:
            uniform = ops.clip(ops.cast(uniform, decoded.dtype), 1e-7, 1.0 - 1e-7)
            logits = logits - ops.log(-ops.log(ops.expand_dims(uniform, -1)))
        return ops.cast(ops.argmax(logits, axis=-1), decoded.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes, padding_id=self.padding_id)
        return config
