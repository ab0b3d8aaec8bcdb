"""One token out of a vocabulary per position (words of a sentence): `categorical_log_prob` and `Categorical`."""

import keras
import numpy as np
from keras import ops

from keras_vae.likelihoods.base import Likelihood, random_seed, sum_over_features


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

    def draw(self, decoded, uniform=None, condition=None, seed=None, library=None):
        """Token ids from the logits, never the padding id: the most probable, or drawn with `uniform` or `seed`.

        `uniform` is noise shaped like `x`, one value per position: the draw
        inverts the position's cumulative distribution there.
        """
        decoded = ops.convert_to_tensor(decoded)
        never = ops.one_hot(self.padding_id, self.num_classes, dtype=decoded.dtype) * -1e9
        logits = decoded + never
        if uniform is None and seed is not None:
            uniform = keras.random.uniform(ops.shape(decoded)[:-1], dtype=decoded.dtype, seed=random_seed(seed))
        if uniform is None:
            return ops.cast(ops.argmax(logits, axis=-1), decoded.dtype)
        cumulative = ops.cumsum(ops.softmax(logits, axis=-1), axis=-1)
        below = ops.cast(cumulative < ops.expand_dims(ops.cast(uniform, decoded.dtype), -1), "int32")
        # Rounding can leave the last cumulative value under 1: stay within the classes.
        return ops.cast(ops.minimum(ops.sum(below, axis=-1), self.num_classes - 1), decoded.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes, padding_id=self.padding_id)
        return config
