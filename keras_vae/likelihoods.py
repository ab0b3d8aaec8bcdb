"""Observation models p(x|z): pure log-density functions and the layers that use them.

The decoder outputs one tensor shaped like `x` (logits for `Bernoulli`, the mean
for `Gaussian`); a likelihood layer turns it into a per-example log-likelihood,
summed over features (`log_prob`), into the distribution's mean (`mean`) and
into all its named parameters, mean first (`distribution_parameters`, what an
export's `decode` endpoint returns).
"""

import math

import keras
from keras import ops


def _sum_over_features(values):
    return ops.sum(values, axis=tuple(range(1, len(values.shape))))


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
    return _sum_over_features(x * logits - ops.softplus(logits))


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
    return _sum_over_features(
        -0.5 * ops.square(standardized) - log_scale - 0.5 * math.log(2.0 * math.pi)
    )


@keras.saving.register_keras_serializable(package="keras_vae")
class Bernoulli(keras.layers.Layer):
    """Independent Bernoulli pixels; the decoder outputs logits.

    Example:
    ```python
    likelihood = keras_vae.likelihoods.Bernoulli()
    log_p = likelihood.log_prob(x, decoder(z))  # shape (batch,)
    ```
    """

    def log_prob(self, x, decoded):
        return bernoulli_log_prob(x, decoded)

    def mean(self, decoded):
        return ops.sigmoid(decoded)

    def distribution_parameters(self, decoded):
        return {"mean": self.mean(decoded), "logits": decoded}


@keras.saving.register_keras_serializable(package="keras_vae")
class Gaussian(keras.layers.Layer):
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
        if learn_scale not in (None, "global", "per_feature"):
            raise ValueError(
                "`learn_scale` must be None, 'global' or 'per_feature'; "
                f"got {learn_scale!r}."
            )
        if scale <= 0:
            raise ValueError(f"`scale` must be positive; got {scale}.")
        self.scale = scale
        self.learn_scale = learn_scale

    def build(self, input_shape):
        if self.learn_scale is not None:
            shape = () if self.learn_scale == "global" else tuple(input_shape[1:])
            self.log_scale = self.add_weight(
                shape=shape,
                initializer=keras.initializers.Constant(math.log(self.scale)),
                name="log_scale",
            )
        self.built = True

    def log_prob(self, x, decoded):
        if self.learn_scale is None:
            log_scale = math.log(self.scale)
        else:
            log_scale = self.log_scale
        return gaussian_log_prob(x, decoded, log_scale)

    def mean(self, decoded):
        return decoded

    def distribution_parameters(self, decoded):
        log_scale = math.log(self.scale) if self.learn_scale is None else ops.cast(self.log_scale, decoded.dtype)
        return {"mean": decoded, "log_scale": ops.zeros_like(decoded) + log_scale}

    def get_config(self):
        config = super().get_config()
        config.update(scale=self.scale, learn_scale=self.learn_scale)
        return config


_BY_NAME = {"bernoulli": Bernoulli, "gaussian": Gaussian}


def get(identifier):
    """A likelihood layer from a name (`"bernoulli"`, `"gaussian"`), a config or an instance."""
    if isinstance(identifier, keras.layers.Layer):
        return identifier
    if isinstance(identifier, dict):
        return keras.saving.deserialize_keras_object(identifier)
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        return _BY_NAME[identifier.lower()]()
    raise ValueError(
        f"Unknown likelihood {identifier!r}: use one of {sorted(_BY_NAME)} "
        "or a layer with `log_prob(x, decoded)` and `mean(decoded)` methods."
    )
