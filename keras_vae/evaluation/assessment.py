"""The one assessment of a VAE's latent code: what each dimension carries, whether the decoder uses z, a verdict.

`assess` measures a model on data; `CollapseMonitor`, `keras-vae diagnose`, the
train summary and `keras-vae evaluate` all print what it returns.
"""

import dataclasses
import math

import keras
import numpy as np

from keras_vae.datasets.batching import concatenate_batches, numpy_batches
from keras_vae.ops import latent
from keras_vae.trainers import kept_inference

HEALTHY = "healthy"
PARTIAL = "partial collapse"
COLLAPSED = "collapsed"
OVER_REGULARIZED = "over-regularized"
FORCED = "forced by free bits"
VERDICTS = (HEALTHY, PARTIAL, COLLAPSED, OVER_REGULARIZED, FORCED)

# Thresholds, with where they come from (docs/diagnostics.md says why each is where it is).
# A dimension is active when I(x; z_j) reaches this many nats. Burda et al.'s activity
# threshold (Var_x E[z_j] > 0.01) counts a dimension with σ² ≈ 1 as active at 0.005 nats;
# the noise dimensions of a collapsed PixelCNN VAE sit at 0.001-0.01 nats.
DIMENSION_NATS = 0.02
# The code is informative when the lower end of I(x; z)'s 95% interval is above this
# (the monitor's old MI threshold, He et al.'s "MI ≈ 0" rows read as below it).
CODE_NATS = 0.1
# The decoder uses z when the lower end of the own-z against shuffled-z gap is above
# this many nats per example: a decoder that ignores z scores both alike.
DECODER_NATS = 0.1
# Free bits hold a dimension up when its KL is at least this share of the floor.
FORCED_SHARE = 0.8
# (The other sign of a forced code: with free bits on, z buys less reconstruction,
# log p(x|own z) − log p(x|prior z), than the KL it costs, so β = 1 training would drop it.)
# Over-regularized: β above 1 with at most this share of the dimensions active (or a collapsed code).
OVER_REGULARIZED_SHARE = 0.5
# Partial collapse: informative and used, but under this share of the dimensions active.
PARTIAL_SHARE = 0.125

REMEDIES = {
    HEALTHY: (),
    COLLAPSED: (
        "aggressive encoder training (compile(aggressive=True); He et al. 2019: act in the first epochs)",
        "KL annealing (beta=keras_vae.schedules.LinearWarmup(steps))",
        "free bits (compile(free_bits=0.1)), then check the decoder-uses-z gap",
        "a weaker decoder (fewer PixelCNN blocks, LSTM word dropout)",
    ),
    FORCED: (
        "free bits only buy KL here: the decoder does not need z; weaken the decoder "
        "(word dropout, fewer blocks) or train longer",
        "aggressive training with annealing instead of free bits",
    ),
    OVER_REGULARIZED: (
        "lower β toward 1 (compile(beta=1.0)), or warm it up (LinearWarmup)",
        "if disentanglement is the goal, accept the dead dimensions and a worse reconstruction",
    ),
    PARTIAL: (
        "aggressive encoder training, or lower β, if the reconstruction needs more code",
        "a smaller latent size if the dead dimensions are simply unneeded",
    ),
}


@dataclasses.dataclass
class Assessment:
    """What `assess` measured on `examples` examples; every quantity in nats.

    Per dimension: `kl_per_dim`, `variance_per_dim` (mean σ²), `activity_per_dim`
    (Burda et al.'s Var_x E[z_j]), `mutual_info_per_dim` (I(x; z_j)) and
    `mutual_info_share`; `active` (per dimension, by `active_rule`).
    Whole code: `kl`, `mutual_info` with its 95% bootstrap `mutual_info_interval`
    and its ceiling `mutual_info_bound` (log of the examples); the decoder's mean
    log-likelihood per example with each example's own z (`log_likelihood_own`),
    another example's z (`_shuffled`) and a prior draw (`_prior`), and the
    own-against-shuffled gap with its interval; `inference_gap` (−ELBO − IW-NLL) when
    known; `beta` and `free_bits` at the time; the `verdict`, its `evidence` and `remedies`.
    """

    latent_dim: int
    examples: int
    kl: float
    kl_per_dim: list
    variance_per_dim: list
    activity_per_dim: list
    mutual_info_per_dim: list
    mutual_info_share: list
    active: list
    active_rule: str
    mutual_info: float
    mutual_info_interval: tuple
    mutual_info_bound: float
    log_likelihood_own: float
    log_likelihood_shuffled: float
    log_likelihood_prior: float
    decoder_gap: float
    decoder_gap_interval: tuple
    beta: float = 1.0
    free_bits: float = 0.0
    inference_gap: float | None = None
    verdict: str = ""
    evidence: list = dataclasses.field(default_factory=list)
    remedies: list = dataclasses.field(default_factory=list)

    @property
    def active_units(self):
        return int(sum(self.active))

    @property
    def healthy(self):
        return self.verdict == HEALTHY

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in names})

    def mutual_info_text(self):
        low, high = self.mutual_info_interval
        return (
            f"I(x; z) {self.mutual_info:.2f} nats (95% {low:.2f} to {high:.2f}, ceiling {self.mutual_info_bound:.1f})"
        )

    def summary_line(self):
        """One line: the verdict, and the numbers that decided it."""
        return (
            f"latent code: {self.verdict}; {self.mutual_info_text()}; {self.active_units}/{self.latent_dim} "
            f"active units; decoder uses z by {self.decoder_gap:.2f} nats per example"
        )

    def __str__(self):
        lines = [f"Verdict: {self.verdict}", *[f"  - {line}" for line in self.evidence]]
        if self.remedies:
            lines.append("Remedies:")
            lines += [f"  - {remedy}" for remedy in self.remedies]
        lines.append(f"Per dimension ({self.active_rule}):")
        lines.append("   dim   KL     σ²     activity  I(x;z_j)  share  label")
        for j in np.argsort(self.mutual_info_per_dim)[::-1]:
            lines.append(
                f"  {j:>4}  {self.kl_per_dim[j]:5.3f}  {self.variance_per_dim[j]:5.3f}  "
                f"{self.activity_per_dim[j]:8.4f}  {self.mutual_info_per_dim[j]:8.3f}  "
                f"{100 * self.mutual_info_share[j]:4.0f}%  {'active' if self.active[j] else 'dead'}"
            )
        return "\n".join(lines)


def code_information(z_mean, z_log_var, samples=2, bootstrap=200, seed=0):
    """I(x; z) under q(z|x), with q(z) the mixture of every example's posterior.

    He et al.'s minibatch estimator takes q(z) over a batch, which bounds it by
    log(batch) and makes it noisy; here the mixture is over all N examples (bounded by
    log N), with `samples` draws of z per example (drawn with NumPy from `seed`).
    The N × N × D mixture densities are `keras.ops` on blocks of rows (float32, on
    every core); the sums over examples are NumPy float64.

    Returns:
        `(mutual_info, (low, high), per_dimension)`: the estimate, a 95% bootstrap
        interval over examples (the mixture held fixed), and I(x; z_j) of each
        dimension alone (its one-dimensional mixture).
    """
    mean = np.asarray(z_mean, "float64")
    log_var = np.asarray(z_log_var, "float64")
    count, dims = mean.shape
    rng = np.random.default_rng(seed)
    components = [
        keras.ops.convert_to_tensor(array.astype("float32")) for array in (mean, np.exp(-0.5 * log_var), log_var)
    ]
    per_example = np.zeros(count)
    per_dimension = np.zeros(dims)
    for _ in range(samples):
        epsilon = rng.standard_normal(mean.shape)
        z = mean + np.exp(0.5 * log_var) * epsilon
        own = -0.5 * epsilon**2 - 0.5 * log_var  # log q(z_ij | x_i), up to 0.5 log 2π (it cancels)
        for start in range(0, count, MIXTURE_ROWS):
            rows = slice(start, start + MIXTURE_ROWS)
            joint, marginal = (
                np.asarray(keras.ops.convert_to_numpy(value), "float64")
                for value in _mixture_log_densities(keras.ops.convert_to_tensor(z[rows].astype("float32")), *components)
            )
            per_example[rows] += own[rows].sum(-1) - joint + math.log(count)
            per_dimension += (own[rows] - marginal + math.log(count)).sum(0)
    per_example /= samples
    per_dimension /= samples * count
    resampled = rng.integers(0, count, (bootstrap, count))
    means = per_example[resampled].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(per_example.mean()), (float(low), float(high)), per_dimension


# Rows of z per block of the mixture densities: a block holds rows × N × D values.
MIXTURE_ROWS = 256


def _mixture_log_densities(z, mean, inverse_std, log_var):
    """log Σ_n q(z_i | x_n) (`(rows,)`) and, per dimension, log Σ_n q(z_ij | x_n) (`(rows, D)`), each up to
    the 0.5 log 2π per dimension that `code_information`'s own term leaves out too."""
    ops = keras.ops
    pair = -0.5 * ops.square((z[:, None, :] - mean[None]) * inverse_std[None]) - 0.5 * log_var[None]
    return ops.logsumexp(ops.sum(pair, axis=-1), axis=1), ops.logsumexp(pair, axis=1)


def decoder_log_likelihoods(vae, x, z_mean, z_log_var, batch_size=128, seed=0):
    """log p(x|z) of each example with its own z ~ q(z|x), another example's z, and z ~ p(z).

    Returns:
        Three NumPy arrays `(examples,)`: own, shuffled, prior. The shuffled z of
        example i is a draw from the posterior of example i + 1 (cyclically).
    """
    from keras_vae.evaluation.metrics import _cast_data

    rng = np.random.default_rng(seed)
    count, dims = z_mean.shape
    z_own = z_mean + np.exp(0.5 * z_log_var) * rng.standard_normal((count, dims))
    codes = {
        "own": z_own,
        "shuffled": np.roll(z_own, -1, axis=0),
        "prior": rng.standard_normal((count, dims)),
    }

    def log_likelihood(inputs, z):
        data, condition = vae._split_inputs(_cast_data(vae, inputs))
        z = keras.ops.cast(z, vae.likelihood_dtype)
        decoded = vae.decoded(z, condition, data)
        return vae.likelihood.log_prob(data, decoded, condition=condition)

    score = kept_inference(vae, "decoder_log_likelihood", lambda: log_likelihood)
    results = {name: [] for name in codes}
    start = 0
    for batch in numpy_batches(x, batch_size):
        stop = start + len(keras.tree.flatten(batch)[0])
        for name, z in codes.items():
            value = score(batch, z[start:stop].astype("float32"))
            results[name].append(np.asarray(keras.ops.convert_to_numpy(value), "float64"))
        start = stop
    return tuple(np.concatenate(results[name]) for name in codes)


def assess(vae, data, *, max_examples=2000, batch_size=128, seed=0, samples=2, inference_gap=None):
    """Measures `vae`'s latent code on (the first `max_examples` of) `data`: an `Assessment`.

    Args:
        vae: a `keras_vae.VAE`, `ConditionalVAE` or `AutoregressiveVAE`.
        data: inputs (arrays, or anything `keras_vae.datasets.numpy_batches` reads).
        max_examples: int, at most this many examples (the MI's mixture is N × N).
        batch_size: int, for encoding and decoding.
        seed: int, for the draws of z and the bootstrap.
        samples: int, draws of z per example for I(x; z).
        inference_gap: float, −ELBO − IW-NLL, if measured (`keras_vae.evaluation.report.evaluate`).
    """
    x = _first(data, max_examples, batch_size)
    z_mean, z_log_var = latent.encode_data(vae, x, batch_size)
    z_mean, z_log_var = z_mean.astype("float64"), z_log_var.astype("float64")
    mutual_info, interval, per_dim = code_information(z_mean, z_log_var, samples=samples, seed=seed)
    own, shuffled, prior = decoder_log_likelihoods(vae, x, z_mean, z_log_var, batch_size, seed)
    gap = own - shuffled
    rng = np.random.default_rng(seed + 1)
    gap_means = gap[rng.integers(0, len(gap), (200, len(gap)))].mean(axis=1)
    kl_per_dim = 0.5 * (np.square(z_mean) + np.exp(z_log_var) - z_log_var - 1.0).mean(axis=0)
    positive = np.clip(per_dim, 0.0, None)
    beta = float(keras.ops.convert_to_numpy(vae.beta_schedule(vae.train_iterations))) if _compiled(vae) else 1.0
    result = Assessment(
        latent_dim=int(z_mean.shape[1]),
        examples=int(len(z_mean)),
        kl=float(kl_per_dim.sum()),
        kl_per_dim=kl_per_dim.tolist(),
        variance_per_dim=np.exp(z_log_var).mean(axis=0).tolist(),
        activity_per_dim=z_mean.var(axis=0).tolist(),
        mutual_info_per_dim=per_dim.tolist(),
        mutual_info_share=(positive / positive.sum() if positive.sum() > 0 else positive).tolist(),
        active=[bool(value >= DIMENSION_NATS) for value in per_dim],
        active_rule=f"active: I(x; z_j) ≥ {DIMENSION_NATS} nats",
        mutual_info=mutual_info,
        mutual_info_interval=interval,
        mutual_info_bound=math.log(len(z_mean)),
        log_likelihood_own=float(own.mean()),
        log_likelihood_shuffled=float(shuffled.mean()),
        log_likelihood_prior=float(prior.mean()),
        decoder_gap=float(gap.mean()),
        decoder_gap_interval=tuple(float(v) for v in np.percentile(gap_means, [2.5, 97.5])),
        beta=beta,
        free_bits=float(getattr(vae, "free_bits", 0.0) or 0.0),
        inference_gap=inference_gap,
    )
    return judge(result)


def judge(result):
    """Fills in the verdict, its evidence and remedies of an `Assessment` from its numbers (and returns it)."""
    dims = result.latent_dim
    active = [j for j, on in enumerate(result.active) if on]
    dead = [j for j, on in enumerate(result.active) if not on]
    low, high = result.mutual_info_interval
    informative = low > CODE_NATS and bool(active)
    used = result.decoder_gap_interval[0] > DECODER_NATS
    forced = [
        j
        for j in range(dims)
        if result.free_bits > 0
        and result.kl_per_dim[j] >= FORCED_SHARE * result.free_bits
        and result.mutual_info_per_dim[j] < DIMENSION_NATS
    ]
    evidence = [
        f"{result.mutual_info_text()}: "
        + (
            f"above {CODE_NATS} nats, informative"
            if informative
            else f"above {CODE_NATS} nats, but spread thin: no dimension is active"
            if low > CODE_NATS
            else f"not clearly above {CODE_NATS} nats: too little information"
        ),
        f"decoder: log p(x|z) {result.log_likelihood_own:.2f} with its own z, {result.log_likelihood_shuffled:.2f} "
        f"with another example's, {result.log_likelihood_prior:.2f} with a prior draw; gap "
        f"{result.decoder_gap:.2f} nats per example (95% {result.decoder_gap_interval[0]:.2f} to "
        f"{result.decoder_gap_interval[1]:.2f}): " + ("the decoder uses z" if used else "the decoder ignores z"),
        f"{len(active)}/{dims} dimensions active ({result.active_rule})"
        + (f": {_dims(active)}" if active else "")
        + f"; KL {result.kl:.2f} nats ({result.kl / dims:.3f} per dimension)",
    ]
    if result.inference_gap is not None:
        evidence.append(f"inference gap (−ELBO − IW-NLL) {result.inference_gap:.2f} nats: the encoder's lag")
    buys = result.log_likelihood_own - result.log_likelihood_prior
    if result.free_bits > 0 and (len(forced) >= dims / 2 or buys < result.kl):
        verdict = FORCED
        if len(forced) >= dims / 2:
            evidence.append(
                f"free bits ({result.free_bits:g} nats per dimension) hold the KL of {len(forced)} dimensions "
                f"at the floor while they carry no information: {_dims(forced)}"
            )
        else:
            evidence.append(
                f"with free bits of {result.free_bits:g} nats per dimension, z buys {buys:.2f} nats of reconstruction "
                f"(own z against a prior draw) for {result.kl:.2f} nats of KL: the code does not pay for itself, "
                "and without the floor β = 1 training would drop it"
            )
    elif result.beta > 1 and (not informative or not used or len(active) <= OVER_REGULARIZED_SHARE * dims):
        # The KL weight, not the decoder, pushes the posterior to the prior: lowering β is the cure.
        verdict = OVER_REGULARIZED
        evidence.append(f"β = {result.beta:g} > 1 leaves {len(dead)} of {dims} dimensions dead")
    elif not informative or not used:
        verdict = COLLAPSED
    elif len(active) < PARTIAL_SHARE * dims:
        verdict = PARTIAL
        evidence.append(f"only {_dims(active)} carry information; dead: {_dims(dead)}")
    else:
        verdict = HEALTHY
    result.verdict, result.evidence, result.remedies = verdict, evidence, list(REMEDIES[verdict])
    return result


def _dims(indices):
    indices = list(indices)
    return "dims " + ", ".join(map(str, indices[:12])) + (f" and {len(indices) - 12} more" if len(indices) > 12 else "")


def _compiled(vae):
    return getattr(vae, "beta_schedule", None) is not None and hasattr(vae, "train_iterations")


def _first(data, count, batch_size):
    """The first `count` examples of `data` as arrays (dicts of arrays for a conditional model)."""
    if all(isinstance(leaf, np.ndarray) for leaf in keras.tree.flatten(data)) and not isinstance(data, tuple):
        return keras.tree.map_structure(lambda array: array[:count], data)
    batches, seen = [], 0
    for batch in numpy_batches(data, batch_size):
        batches.append(batch)
        seen += len(keras.tree.flatten(batch)[0])
        if seen >= count:
            break
    if not batches:
        raise ValueError("The data to assess holds no examples.")
    return keras.tree.map_structure(lambda array: array[:count], concatenate_batches(batches))
