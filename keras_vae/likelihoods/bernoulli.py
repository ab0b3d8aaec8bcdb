"""Independent Bernoulli features (binary or grey-level pixels): `bernoulli_log_prob` and the `Bernoulli` layer."""

import keras
import numpy as np
from keras import ops

from keras_vae.likelihoods.base import Likelihood, random_seed, sum_over_features


def bernoulli_log_prob(x, logits):
    """log p(x | logits) of independent Bernoullis, summed over features.

    Args:
        x: tensor `(batch, ...)` with values in [0, 1]. Grey levels are allowed
            (the usual practice on non-binarized MNIST).
        logits: tensor of the same shape.

    Returns:
        A tensor `(batch,)`, ≤ 0 for binary `x`.
    """
    x = ops.convert_to_tensor(x, dtype=logits.dtype)
    # x log σ(l) + (1 - x) log(1 - σ(l)) = x l - softplus(l), stable for any l.
    return sum_over_features(x * logits - ops.softplus(logits))


@keras.saving.register_keras_serializable(package="keras_vae")
class Bernoulli(Likelihood):
    """Independent Bernoulli pixels; the decoder outputs logits.

    Example:
    ```python
    likelihood = keras_vae.likelihoods.Bernoulli()
    log_p = likelihood.log_prob(x, decoder(z))  # shape (batch,)
    ```
    """

    accepts_flat_features = True

    def log_prob(self, x, decoded, condition=None):
        return bernoulli_log_prob(x, decoded)

    def mean(self, decoded, condition=None):
        return ops.sigmoid(decoded)

    def initial_decoded(self, x):
        mean = np.clip(np.mean(x, axis=0), 1e-4, 1 - 1e-4)
        return np.log(mean) - np.log1p(-mean)

    def distribution_parameters(self, decoded, condition=None):
        return {"mean": self.mean(decoded), "logits": decoded}

    def draw(self, decoded, uniform=None, condition=None, seed=None, library=None):
        """Binary values from the logits: drawn with `uniform` noise shaped like `x` or a `seed`, or the most probable."""
        decoded = ops.convert_to_tensor(decoded)
        if uniform is None and seed is not None:
            uniform = keras.random.uniform(ops.shape(decoded), dtype=decoded.dtype, seed=random_seed(seed))
        if uniform is None:
            return ops.cast(decoded > 0, decoded.dtype)
        return ops.cast(ops.cast(uniform, decoded.dtype) < ops.sigmoid(decoded), decoded.dtype)
