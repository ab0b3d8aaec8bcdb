"""Drawing counts in `keras.ops` on every backend: Poisson, negative-binomial and zero-inflated NB samples.

`keras.random` has gamma and binomial draws but no Poisson, so the Poisson is
built from them (Ahrens & Dieter's gamma-binomial recursion, then inversion).
"""

import keras
from keras import ops

from keras_vae.likelihoods.base import random_seed

# Rates above this are split by the gamma-binomial recursion; the rest by inversion.
_INVERSION_LIMIT = 16.0
# Each round leaves at most about 1/8 of the rate: 12 rounds bring 16 · 8¹² ≈ 1e12 down to the limit.
_RECURSION_ROUNDS = 12
# P(N > 60) for a Poisson of rate 16 is below 1e-17.
_INVERSION_TERMS = 60


def poisson_sample(rate, seed=None):
    """Poisson draws with mean `rate` (any shape), exact in distribution for rates up to ~1e12.

    Ahrens & Dieter (1974): the m-th arrival of a unit-rate Poisson process,
    G ~ Gamma(m) with m = ⌊7λ/8⌋, either falls after λ (then the count is
    Binomial(m - 1, λ/G)) or before it (then it is m plus a Poisson count of
    rate λ - G). Rates left under 16 are drawn by inverting the CDF.

    Args:
        rate: float tensor of rates ≥ 0.
        seed: `None`, an int or a `keras.random.SeedGenerator`.

    Returns:
        A float tensor of counts, shaped and typed like `rate`.
    """
    seed = random_seed(seed)
    rate = ops.convert_to_tensor(rate)
    shape, dtype = ops.shape(rate), rate.dtype
    count = ops.zeros_like(rate)
    remaining = rate
    for _ in range(_RECURSION_ROUNDS):
        large = remaining > _INVERSION_LIMIT
        m = ops.where(large, ops.floor(0.875 * remaining), 1.0)
        arrival = keras.random.gamma(shape, m, dtype=dtype, seed=seed)
        after = ops.logical_and(large, arrival > remaining)
        share = ops.where(large, ops.clip(remaining / ops.where(large, arrival, 1.0), 0.0, 1.0), 0.0)
        inside = keras.random.binomial(shape, m - 1.0, share, dtype=dtype, seed=seed)
        count = count + ops.where(after, inside, ops.where(large, m, 0.0))
        remaining = ops.where(after, 0.0, ops.where(large, remaining - arrival, remaining))
    uniform = keras.random.uniform(shape, dtype=dtype, seed=seed)
    term = ops.exp(-remaining)  # P(N = k), from k = 0
    cumulative = term
    for k in range(1, _INVERSION_TERMS):
        count = count + ops.cast(uniform > cumulative, dtype)
        term = term * remaining / k
        cumulative = cumulative + term
    return count


def negative_binomial_sample(mean, inverse_dispersion, seed=None):
    """NB draws (Var = μ + μ²/θ) as a gamma-Poisson mixture: Poisson(μ · Gamma(θ)/θ).

    Args:
        mean: float tensor μ.
        inverse_dispersion: θ, broadcasting against `mean`.
        seed: `None`, an int or a `keras.random.SeedGenerator`.
    """
    seed = random_seed(seed)
    mean = ops.convert_to_tensor(mean)
    theta = ops.zeros_like(mean) + ops.cast(inverse_dispersion, mean.dtype)
    gamma = keras.random.gamma(ops.shape(mean), theta, dtype=mean.dtype, seed=seed)
    return poisson_sample(mean * gamma / theta, seed)


def zero_inflated_sample(counts, zero_probability, seed=None):
    """`counts` with each value replaced by 0 with probability `zero_probability`."""
    uniform = keras.random.uniform(ops.shape(counts), dtype=counts.dtype, seed=random_seed(seed))
    return ops.where(uniform < ops.cast(zero_probability, counts.dtype), 0.0, counts)
