"""Observation models p(x|z): the `Likelihood` contract, one module per family, and `get`.

Each family is a pure log-density function, usable outside a model, and a
`Likelihood` layer that turns the decoder's output into a per-example
log-likelihood (`log_prob`), the distribution's mean (`mean`) and its named
parameters (`distribution_parameters`); see `Likelihood` for the whole contract.
"""

import re

import keras

from keras_vae import names
from keras_vae.likelihoods.base import Likelihood
from keras_vae.likelihoods.bernoulli import Bernoulli, bernoulli_log_prob
from keras_vae.likelihoods.categorical import Categorical, categorical_log_prob
from keras_vae.likelihoods.counts import (
    NegativeBinomial,
    Poisson,
    ZeroInflatedNegativeBinomial,
    negative_binomial_log_prob,
    poisson_log_prob,
    zero_inflated_negative_binomial_log_prob,
)
from keras_vae.likelihoods.gaussian import Gaussian, gaussian_log_prob

__all__ = [
    "Bernoulli",
    "Categorical",
    "Gaussian",
    "Likelihood",
    "NegativeBinomial",
    "Poisson",
    "ZeroInflatedNegativeBinomial",
    "bernoulli_log_prob",
    "categorical_log_prob",
    "gaussian_log_prob",
    "get",
    "negative_binomial_log_prob",
    "poisson_log_prob",
    "zero_inflated_negative_binomial_log_prob",
]

# The short names (`names.LIKELIHOODS`, in that order), then each class's name in
# snake case ("negative_binomial") as a longer alias.
_CLASSES = (Bernoulli, Gaussian, Poisson, NegativeBinomial, ZeroInflatedNegativeBinomial, Categorical)
_BY_NAME = {
    **{re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower(): cls for cls in _CLASSES},
    **dict(zip(names.LIKELIHOODS, _CLASSES, strict=True)),
}


def get(identifier):
    """A likelihood layer from a name, a config or an instance.

    Names: `"bernoulli"`, `"gaussian"`, `"poisson"`, `"nb"` (or
    `"negative_binomial"`) and `"zinb"` (or `"zero_inflated_negative_binomial"`);
    `"categorical"` needs its vocabulary size, so pass `Categorical(num_classes)`.
    """
    if isinstance(identifier, Likelihood):
        return identifier
    if isinstance(identifier, dict):
        return keras.saving.deserialize_keras_object(identifier)
    if isinstance(identifier, keras.layers.Layer):
        raise TypeError(
            f"{type(identifier).__name__} is not a likelihood: subclass `keras_vae.likelihoods.Likelihood` "
            "and implement its `log_prob`, `mean` and `initial_decoded`."
        )
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        likelihood_class = _BY_NAME[identifier.lower()]
        if likelihood_class is Categorical:
            raise ValueError(
                "The categorical likelihood needs its vocabulary size: "
                "pass `keras_vae.likelihoods.Categorical(num_classes)`."
            )
        return likelihood_class()
    raise ValueError(
        f"Unknown likelihood {identifier!r}: use one of {sorted(_BY_NAME)} "
        "or a `keras_vae.likelihoods.Likelihood` layer."
    )
