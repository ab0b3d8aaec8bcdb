"""Count data (genes × cells, words × documents): Poisson, negative-binomial and zero-inflated NB.

The pure log-probability functions, written to stay accurate in float32 up to
tens of millions of counts, and the layers that score a decoder's output with them.
"""

import math

import keras
import numpy as np
from keras import ops

from keras_vae.likelihoods.base import Likelihood, random_seed, sum_over_features
from keras_vae.likelihoods.count_sampling import negative_binomial_sample, poisson_sample, zero_inflated_sample

# Written as Loader's (2000) saddle-point forms: the log-gammas
# and x·log terms of the textbook formulas are each ~1e7 at a million counts and
# cancel to a number ~10, which float32 cannot do; here every term is small or
# is a product with a "deviance" that is computed without cancellation.

_HALF_LOG_TWO_PI = 0.5 * math.log(2.0 * math.pi)


# exp(k ln2/32) = 2^(k div 32) · 2^((k mod 32)/32), the last from a table of hi + lo pairs.
_LN2_32 = math.log(2.0) / 32
_LN2_32_HI = math.ldexp(round(math.ldexp(_LN2_32, 17)), -17)  # 12 bits: k·hi is exact
_LN2_32_LO = _LN2_32 - _LN2_32_HI
_EXP2_HI = [float(np.float32(2.0 ** (j / 32))) for j in range(32)]
_EXP2_LO = [2.0 ** (j / 32) - hi for j, hi in enumerate(_EXP2_HI)]


def _exp_minus(log_a, b):
    """exp(log_a) - b, with exp(log_a) carried to about twice the float's precision.

    A rounded exp(log_a) is off by up to half an ulp: for counts near a mean of
    1e6 that is all the difference, to which the count log-likelihoods are
    sensitive. So, as in libm, log_a = k ln2/32 + r with |r| ≤ ln2/64 and
    exp(log_a) = 2^(k div 32) (hi + lo) (1 + expm1(r)).
    """
    k = ops.stop_gradient(ops.round(log_a / _LN2_32))
    k = ops.where(ops.isfinite(k), k, 0.0)  # an infinite or NaN log_a flows through r, not a table index
    r = (log_a - k * _LN2_32_HI) - k * _LN2_32_LO
    j = ops.mod(k, 32.0)
    scale = ops.power(2.0, (k - j) / 32.0)  # exact
    j = ops.cast(j, "int32")
    hi = ops.take(ops.convert_to_tensor(_EXP2_HI, log_a.dtype), j)
    lo = ops.take(ops.convert_to_tensor(_EXP2_LO, log_a.dtype), j)
    return (scale * hi - b) + scale * (lo + (hi + lo) * ops.expm1(r))


def _atanh_tail(w2):
    """(atanh(w) - w) / w³ = 1/3 + w²/5 + w⁴/7 + …, from `w2` = w²; to 1e-10 for |w| ≤ 1/3."""
    result = ops.zeros_like(w2)
    for k in range(9, -1, -1):
        result = result * w2 + 1.0 / (2 * k + 3)
    return result


def _log1p_gap(s, log_one_plus_s):
    """s - log(1 + s) ≥ 0 for s > -1, without cancellation near s = 0.

    `log_one_plus_s` is log(1 + s) computed in log space; it is used where
    s < -0.9, where 1 + s has lost its digits in floating point.
    """
    near_zero = ops.abs(s) < 0.5
    w = ops.where(near_zero, s, 0.0)
    w = w / (2.0 + w)  # log(1 + s) = 2 atanh(w) and s = 2w / (1 - w)
    series = 2.0 * ops.square(w) * (1.0 / (1.0 - w) - w * _atanh_tail(ops.square(w)))
    far_below = s < -0.9
    log1p = ops.where(far_below, log_one_plus_s, ops.log1p(ops.where(far_below, 0.0, s)))
    return ops.where(near_zero, series, s - log1p)


def _stirling_error(z):
    """log Γ(z + 1) - [(z + ½) log z - z + ½ log 2π] for z > 0: what Stirling's formula misses.

    Below 6, z is moved up by e(z) = e(z + 1) + (z + ½) log(1 + 1/z) - 1; from 6
    on, the asymptotic series up to z⁻⁹ is accurate to 1e-11.
    """
    small = z < 6.0
    shifted = ops.where(small, z + 6.0, z)
    r2 = 1.0 / ops.square(shifted)
    series = (1 / 12 - r2 * (1 / 360 - r2 * (1 / 1260 - r2 * (1 / 1680 - r2 / 1188)))) / shifted
    steps = sum((z + (j + 0.5)) * ops.log1p(1.0 / (z + j)) - 1.0 for j in range(6))
    return series + ops.where(small, steps, 0.0)


def _poisson_log_pmf(x, log_rate):
    positive = x > 0
    x = ops.where(positive, x, 1.0)
    log_x = ops.log(x)
    # x log μ - μ - log x! = -x·[s - log(1 + s)] - e(x) - ½ log 2πx, with 1 + s = μ/x.
    deviance = x * _log1p_gap(_exp_minus(log_rate, x) / x, log_rate - log_x)
    log_p = -deviance - _stirling_error(x) - 0.5 * log_x - _HALF_LOG_TWO_PI
    return ops.where(positive, log_p, -ops.exp(log_rate))


def _negative_binomial_log_pmf(x, log_mean, log_inverse_dispersion):
    log_theta = log_inverse_dispersion
    theta = ops.exp(log_theta)
    positive = x > 0
    x = ops.where(positive, x, 1.0)
    log_x = ops.log(x)
    # The NB as a binomial in n = x + θ trials (R's dnbinom_mu): two deviances,
    # θ·gap(σ) with 1 + σ = (θ + x)/(θ + μ) and x·gap(s) with 1 + s = μ(θ + x)/(x(θ + μ)).
    # As θ → ∞ the first goes to 0 and the second to the Poisson one.
    difference = -_exp_minus(log_mean, x)  # x - μ
    theta_plus_mean = theta + ops.exp(log_mean)  # not exp(logaddexp): exp would amplify its rounding
    sigma = difference / theta_plus_mean
    s = -difference * (theta / theta_plus_mean) / x
    log1p_sigma = ops.softplus(log_x - log_theta) - ops.softplus(log_mean - log_theta)
    log1p_s = ops.softplus(log_theta - log_x) - ops.softplus(log_theta - log_mean)
    log_p = (
        _stirling_error(x + theta)
        - _stirling_error(theta)
        - _stirling_error(x)
        - theta * _log1p_gap(sigma, log1p_sigma)
        - x * _log1p_gap(s, log1p_s)
        - 0.5 * (log_x + ops.softplus(log_x - log_theta))  # ½ log(x (x + θ)/θ)
        - _HALF_LOG_TWO_PI
    )
    # log p(0) = θ log(θ / (θ + μ)).
    return ops.where(positive, log_p, -theta * ops.softplus(log_mean - log_theta))


def _count_inputs(x, *log_parameters):
    first = ops.convert_to_tensor(log_parameters[0])
    return [ops.convert_to_tensor(x, dtype=first.dtype), first] + [ops.cast(p, first.dtype) for p in log_parameters[1:]]


def poisson_log_prob(x, log_rate):
    """log Poisson(x | exp(log_rate)), summed over features.

    Elementwise within ~2e-6 · max(1, |log p|) of scipy in float32, counts up to
    2e7 included. The rate must be finite in the dtype (log_rate < 88 in float32).

    Args:
        x: tensor `(batch, ...)` of counts ≥ 0.
        log_rate: tensor of the same shape, the log mean.

    Returns:
        A tensor `(batch,)`.
    """
    x, log_rate = _count_inputs(x, log_rate)
    return sum_over_features(_poisson_log_pmf(x, log_rate))


def negative_binomial_log_prob(x, log_mean, log_inverse_dispersion):
    """log NB(x | mean μ, inverse dispersion θ), summed over features.

    The NB of scvi-tools: Var = μ + μ²/θ; `scipy.stats.nbinom(n=θ, p=θ/(θ + μ))`.
    Elementwise within ~2e-6 · max(1, |log p|) of an exact reference in float32,
    for counts up to 2e7 and θ from 1e-4 to 1e10 (where it is the Poisson).
    μ and θ must be finite in the dtype (logs < 88 in float32).

    Args:
        x: tensor `(batch, ...)` of counts ≥ 0.
        log_mean: tensor of the same shape, log μ.
        log_inverse_dispersion: log θ, broadcasting against `x` (e.g. one value
            per feature, without the batch axis).

    Returns:
        A tensor `(batch,)`.
    """
    x, log_mean, log_theta = _count_inputs(x, log_mean, log_inverse_dispersion)
    return sum_over_features(_negative_binomial_log_pmf(x, log_mean, log_theta))


def zero_inflated_negative_binomial_log_prob(x, log_mean, log_inverse_dispersion, zero_inflation_logits):
    """log ZINB(x), summed over features: a zero with probability π = sigmoid(logits), else an NB draw.

    Args:
        x: tensor `(batch, ...)` of counts ≥ 0.
        log_mean: tensor of the same shape, log μ of the NB.
        log_inverse_dispersion: log θ of the NB, broadcasting against `x`.
        zero_inflation_logits: tensor shaped like `x`, the logits of π.

    Returns:
        A tensor `(batch,)`.
    """
    x, log_mean, log_theta, logits = _count_inputs(x, log_mean, log_inverse_dispersion, zero_inflation_logits)
    log_nb = -ops.softplus(logits) + _negative_binomial_log_pmf(x, log_mean, log_theta)  # log((1 - π) NB)
    # log(π + (1 - π) NB(0)) = logaddexp(log π, log_nb), spelled out: Keras's torch
    # logaddexp and maximum return float32 for float64 inputs.
    log_pi = -ops.softplus(-logits)
    log_zero = ops.where(log_pi > log_nb, log_pi, log_nb) + ops.softplus(-ops.abs(log_pi - log_nb))
    return sum_over_features(ops.where(x > 0, log_nb, log_zero))


class _CountLikelihood(Likelihood):
    """What the count likelihoods share: how the decoder's output becomes the log mean."""

    encoder_input_transform = "log1p"
    checks_data = True

    def __init__(self, library="observed", library_size=1e4, **kwargs):
        super().__init__(**kwargs)
        if library not in ("observed", "learned"):
            raise ValueError(f"`library` must be 'observed' or 'learned'; got {library!r}.")
        if not library_size > 0:
            raise ValueError(f"`library_size` must be a positive number of counts; got {library_size!r}.")
        self.library = library
        self.library_size = library_size

    def _log_mean(self, decoded, x=None, library=None):
        """log μ: log proportions plus the log library (x's total, else `library`, else `library_size`),
        or `decoded` itself."""
        decoded = ops.convert_to_tensor(decoded)
        if self.library == "learned":
            return decoded
        axes = tuple(range(1, len(decoded.shape)))
        log_proportions = decoded - ops.logsumexp(decoded, axis=axes, keepdims=True)
        if x is None and library is None:
            return log_proportions + math.log(self.library_size)
        if x is not None:
            library = ops.sum(ops.cast(x, decoded.dtype), axis=axes, keepdims=True)
        else:
            library = ops.reshape(ops.cast(library, decoded.dtype), (-1,) + (1,) * len(axes))
        # An all-zero example has library 1, not 0: its log-likelihood stays finite.
        return log_proportions + ops.log(ops.where(library > 1.0, library, 1.0))

    def _draw_mean(self, decoded, uniform, library):
        """μ to draw at: the observed-library model's proportions times `library` (else `library_size`)."""
        if uniform is not None:
            raise ValueError(
                f"{type(self).__name__} draws counts with a `seed`, not `uniform` noise: pass seed=... instead."
            )
        return ops.exp(self._log_mean(decoded, library=library))

    def check_data(self, x):
        """Refuses values that are not non-negative integers (normalized or log-transformed data, NaNs)."""
        x = np.asarray(x)
        if x.dtype.kind in "bu":
            return
        bad = ~((x >= 0) & (np.mod(x, 1) == 0))
        if np.any(bad):
            raise ValueError(
                f"The {type(self).__name__} likelihood models counts, but x has values that are not non-negative "
                f"integers (e.g. {x[bad].flat[0]:.4g}; normalized or log-transformed data?): pass the raw counts, "
                "or likelihood='gaussian' or 'bernoulli'."
            )

    def mean(self, decoded, condition=None):
        return ops.exp(self._log_mean(decoded))

    def initial_decoded(self, x):
        """log of the mean proportions (observed library) or of the mean counts (learned)."""
        x = np.asarray(x, np.float64)
        if self.library == "learned":
            return np.log(np.mean(x, axis=0) + 1e-8)
        totals = np.maximum(x.sum(axis=tuple(range(1, x.ndim)), keepdims=True), 1.0)
        return np.log(np.mean(x / totals, axis=0) + 1e-8)

    def get_config(self):
        config = super().get_config()
        config.update(library=self.library, library_size=self.library_size)
        return config


@keras.saving.register_keras_serializable(package="keras_vae")
class Poisson(_CountLikelihood):
    """Independent Poisson counts, e.g. genes × cells; the decoder outputs one value per feature.

    With `library="observed"` (scvi-tools' default) the decoder's outputs are
    softmaxed over the features into expression proportions and scaled by the
    example's total count, so the model need not learn the sequencing depth.
    `mean` has no `x` to read a total from: it returns the proportions times
    `library_size`, scvi-tools' "normalized expression". With
    `library="learned"` the decoder outputs log μ itself.

    Args:
        library: `"observed"` or `"learned"`. Defaults to `"observed"`.
        library_size: float, the total count `mean` scales the proportions to
            under `library="observed"`. Defaults to `1e4`.
    """

    def log_prob(self, x, decoded, condition=None):
        return poisson_log_prob(x, self._log_mean(decoded, x))

    def distribution_parameters(self, decoded, condition=None):
        return {"mean": self.mean(decoded)}

    def draw(self, decoded, uniform=None, condition=None, seed=None, library=None):
        """Poisson counts drawn with `seed`, or the most probable, ⌊μ⌋; see `Likelihood.draw`."""
        mean = self._draw_mean(decoded, uniform, library)
        return ops.floor(mean) if seed is None else poisson_sample(mean, seed)


@keras.saving.register_keras_serializable(package="keras_vae")
class NegativeBinomial(_CountLikelihood):
    """Independent negative-binomial counts (scvi-tools' NB): Var = μ + μ²/θ.

    The mean μ comes from the decoder as for `Poisson`; the inverse dispersion
    θ is a trained weight, `log_inverse_dispersion`, one per feature. It starts
    at θ = 1 (Var = μ + μ²), the overdispersion typical of scRNA-seq genes;
    scvi-tools draws log θ ~ N(0, 1), the same scale, but a constant start
    keeps runs reproducible.

    Args:
        library: `"observed"` or `"learned"`, as for `Poisson`. Defaults to `"observed"`.
        dispersion: `"gene"` (one θ per feature) or `"gene-condition"` (one per
            feature and condition: log θ = bias + condition @ kernel, so one
            value per feature and category for a one-hot condition; `log_prob`
            then needs `condition`). Defaults to `"gene"`.
        library_size: float, as for `Poisson`. Defaults to `1e4`.
        condition_dim: int, the length of the condition vector, needed by
            `"gene-condition"`; a `ConditionalVAE` sets it. Defaults to `None`.
    """

    def __init__(self, library="observed", dispersion="gene", library_size=1e4, condition_dim=None, **kwargs):
        super().__init__(library=library, library_size=library_size, **kwargs)
        if dispersion not in ("gene", "gene-condition"):
            raise ValueError(f"`dispersion` must be 'gene' or 'gene-condition'; got {dispersion!r}.")
        if condition_dim is not None and not (isinstance(condition_dim, int) and condition_dim > 0):
            raise ValueError(f"`condition_dim` must be None or a positive int; got {condition_dim!r}.")
        self.dispersion = dispersion
        self.condition_dim = condition_dim

    def build(self, input_shape):
        """Creates θ for features shaped like `input_shape[1:]`, the shape of one `x`."""
        shape = tuple(input_shape[1:])
        self.log_inverse_dispersion = self.add_weight(shape=shape, initializer="zeros", name="log_inverse_dispersion")
        if self.dispersion == "gene-condition":
            if not self.condition_dim:
                raise ValueError(
                    "dispersion='gene-condition' needs `condition_dim`, the length of the condition vector: "
                    "pass it to the likelihood or use it in a ConditionalVAE."
                )
            self.log_inverse_dispersion_kernel = self.add_weight(
                shape=(self.condition_dim, *shape), initializer="zeros", name="log_inverse_dispersion_kernel"
            )
        self.built = True

    def set_condition_dim(self, condition_dim):
        """Keeps a `ConditionalVAE`'s condition length, unless one was given, for `dispersion="gene-condition"`."""
        if self.condition_dim is None:
            self.condition_dim = condition_dim

    def _log_inverse_dispersion(self, decoded, condition):
        if not self.built:
            self.build(decoded.shape)
        log_theta = ops.cast(self.log_inverse_dispersion, decoded.dtype)
        if self.dispersion == "gene":
            return log_theta
        if condition is None:
            raise ValueError("dispersion='gene-condition' needs the `condition` argument (batch, condition_dim).")
        kernel = ops.cast(self.log_inverse_dispersion_kernel, decoded.dtype)
        return log_theta + ops.tensordot(ops.cast(condition, decoded.dtype), kernel, axes=1)

    def log_prob(self, x, decoded, condition=None):
        log_theta = self._log_inverse_dispersion(decoded, condition)
        return negative_binomial_log_prob(x, self._log_mean(decoded, x), log_theta)

    def distribution_parameters(self, decoded, condition=None):
        mean = ops.exp(self._log_mean(decoded))
        theta = ops.exp(self._log_inverse_dispersion(decoded, condition))
        return {"mean": mean, "inverse_dispersion": ops.zeros_like(mean) + theta}

    def draw(self, decoded, uniform=None, condition=None, seed=None, library=None):
        """NB counts drawn with `seed`, or the most probable, ⌊μ(θ - 1)/θ⌋ (0 for θ ≤ 1); see `Likelihood.draw`."""
        mean = self._draw_mean(decoded, uniform, library)
        theta = ops.exp(self._log_inverse_dispersion(decoded, condition))
        if seed is None:
            return ops.floor(ops.maximum(mean * (theta - 1.0) / theta, 0.0))
        return negative_binomial_sample(mean, theta, seed)

    def get_config(self):
        config = super().get_config()
        config.update(dispersion=self.dispersion, condition_dim=self.condition_dim)
        return config


@keras.saving.register_keras_serializable(package="keras_vae")
class ZeroInflatedNegativeBinomial(NegativeBinomial):
    """A `NegativeBinomial` whose counts are also zero with probability π (dropout).

    The decoder outputs two values per feature, on a last axis: channel 0 as
    for `NegativeBinomial`, channel 1 the logits of π. `mean` (and the "mean"
    parameter) is the NB's μ, scvi-tools' denoised expression, without the
    technical zeros; the expected count is (1 - π) μ.

    Args: as for `NegativeBinomial`.
    """

    parameters_per_feature = 2

    def log_prob(self, x, decoded, condition=None):
        mean_decoded = decoded[..., 0]
        log_theta = self._log_inverse_dispersion(mean_decoded, condition)
        log_mean = self._log_mean(mean_decoded, x)
        return zero_inflated_negative_binomial_log_prob(x, log_mean, log_theta, decoded[..., 1])

    def mean(self, decoded, condition=None):
        return super().mean(decoded[..., 0])

    def initial_decoded(self, x):
        """The NB's start, and π = 0.05: the extra zeros start rare (logits of 0 would make it ½)."""
        nb = super().initial_decoded(x)
        return np.stack([nb, np.full_like(nb, math.log(0.05 / 0.95))], axis=-1)

    def distribution_parameters(self, decoded, condition=None):
        parameters = super().distribution_parameters(decoded[..., 0], condition)
        return {**parameters, "zero_probability": ops.sigmoid(decoded[..., 1])}

    def draw(self, decoded, uniform=None, condition=None, seed=None, library=None):
        """ZINB counts drawn with `seed` (an NB draw, zeroed with probability π), or the most probable."""
        decoded = ops.convert_to_tensor(decoded)
        # One generator for both draws: an int seed given to each would make the zeros follow the NB's draws.
        seed = None if seed is None else random_seed(seed)
        counts = super().draw(decoded[..., 0], uniform, condition, seed, library)
        if seed is not None:
            return zero_inflated_sample(counts, ops.sigmoid(decoded[..., 1]), seed)
        # The NB's mode against 0, which also has the zero-inflation's mass.
        log_mean = self._log_mean(decoded[..., 0], library=library)
        log_theta = self._log_inverse_dispersion(decoded[..., 0], condition)
        log_p_mode = -ops.softplus(decoded[..., 1]) + _negative_binomial_log_pmf(counts, log_mean, log_theta)
        theta = ops.exp(log_theta)
        log_p_zero = ops.logaddexp(
            -ops.softplus(-decoded[..., 1]), -ops.softplus(decoded[..., 1]) - theta * ops.softplus(log_mean - log_theta)
        )
        return ops.where(log_p_zero >= log_p_mode, 0.0, counts)
