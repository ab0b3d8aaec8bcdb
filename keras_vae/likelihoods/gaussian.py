"""Independent Gaussian features with a fixed or learned scale: `gaussian_log_prob` and the `Gaussian` layer."""

import math

import keras
import numpy as np
from keras import ops

from keras_vae.likelihoods.base import Likelihood, random_seed, sum_over_features

_LEARN_SCALE = (None, "global", "per_feature")


def gaussian_log_prob(x, mean, log_scale):
    """log N(x | mean, exp(log_scale)²), summed over features.

    Args:
        x: tensor `(batch, ...)`.
        mean: tensor of the same shape.
        log_scale: log standard deviation; a scalar or a tensor that broadcasts
            against `x` (e.g. one value per feature, without the batch axis).

    Returns:
        A tensor `(batch,)`.
    """
    x = ops.convert_to_tensor(x, dtype=mean.dtype)
    log_scale = ops.cast(log_scale, mean.dtype)
    standardized = (x - mean) * ops.exp(-log_scale)
    return sum_over_features(-0.5 * ops.square(standardized) - log_scale - 0.5 * math.log(2.0 * math.pi))


@keras.saving.register_keras_serializable(package="keras_vae")
class Gaussian(Likelihood):
    """Independent Gaussian features; the decoder outputs the mean.

    Args:
        scale: float, the standard deviation σ (the initial one if learned).
            Defaults to `1.0`.
        learn_scale: `None` (σ fixed), `"global"` (one learned σ) or
            `"per_feature"` (one learned σ per feature of `x`). Learned σs are
            trained with the decoder. Defaults to `None`.
    """

    def __init__(self, scale=1.0, learn_scale=None, **kwargs):
        super().__init__(**kwargs)
        if learn_scale not in _LEARN_SCALE:
            raise ValueError(f"`learn_scale` must be None, 'global' or 'per_feature'; got {learn_scale!r}.")
        if scale <= 0:
            raise ValueError(f"`scale` must be positive; got {scale}.")
        self.scale = scale
        self.learn_scale = learn_scale

    @property
    def accepts_flat_features(self):
        return self.learn_scale != "per_feature"

    def build(self, input_shape):
        if self.learn_scale is not None:
            shape = () if self.learn_scale == "global" else tuple(input_shape[1:])
            self.log_scale = self.add_weight(
                shape=shape,
                initializer=keras.initializers.Constant(math.log(self.scale)),
                name="log_scale",
            )
        self.built = True

    def _log_scale(self, dtype):
        return math.log(self.scale) if self.learn_scale is None else ops.cast(self.log_scale, dtype)

    def log_prob(self, x, decoded, condition=None):
        return gaussian_log_prob(x, decoded, self._log_scale(decoded.dtype))

    def mean(self, decoded, condition=None):
        return decoded

    def initial_decoded(self, x):
        return np.mean(x, axis=0)

    def distribution_parameters(self, decoded, condition=None):
        return {"mean": decoded, "log_scale": ops.zeros_like(decoded) + self._log_scale(decoded.dtype)}

    def draw(self, decoded, uniform=None, condition=None, seed=None, library=None):
        """mean + σ·ε, with ε from `seed` or the standard normal quantile of `uniform`; the mean without either."""
        decoded = ops.convert_to_tensor(decoded)
        if uniform is not None:
            uniform = ops.clip(ops.cast(uniform, decoded.dtype), 1e-7, 1.0 - 1e-7)
            noise = math.sqrt(2.0) * ops.erfinv(2.0 * uniform - 1.0)
        elif seed is not None:
            noise = keras.random.normal(ops.shape(decoded), dtype=decoded.dtype, seed=random_seed(seed))
        else:
            return decoded
        return decoded + ops.exp(self._log_scale(decoded.dtype)) * noise

    def get_config(self):
        config = super().get_config()
        config.update(scale=self.scale, learn_scale=self.learn_scale)
        return config
