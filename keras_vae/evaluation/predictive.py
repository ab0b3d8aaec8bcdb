"""Posterior predictive checks: does the model reproduce each feature's mean, variance and zero fraction?

Replicate data sets are drawn from p(x | z) at z ~ q(z | x) of held-out examples
(at each example's own library size), and their per-feature statistics are
compared with the held-out data's: a summary number per statistic, and a figure.
"""

import dataclasses

import keras
import numpy as np

from keras_vae import plotting
from keras_vae.datasets.batching import numpy_batches
from keras_vae.likelihoods.base import random_seed
from keras_vae.models.autoregressive_vae import AutoregressiveVAE

STATISTICS = ("mean", "variance", "zero_fraction")


@dataclasses.dataclass(frozen=True)
class PredictiveCheck:
    """Per-feature statistics of held-out data and of replicate data sets drawn by the model.

    Attributes:
        observed: dict `{statistic: array (features,)}` of the held-out data,
            for the `STATISTICS` "mean", "variance" and "zero_fraction".
        replicated: dict `{statistic: array (replicates, features)}`, the same
            statistics of each replicate data set.
        examples: int, held-out examples (each replicate has as many).
    """

    observed: dict
    replicated: dict
    examples: int

    @property
    def replicates(self):
        return len(self.replicated["mean"])

    def predicted(self, statistic):
        """The statistic averaged over the replicates: `(features,)`."""
        return self.replicated[statistic].mean(axis=0)

    def summary(self):
        """One line of numbers per statistic, over the features.

        - `error`: mean |predicted - observed| over features; on the log1p
          scale for the mean and variance (≈ relative error), as a
          difference of fractions for the zero fraction;
        - `bias`: the same without the absolute value (> 0: the model predicts
          too much);
        - `coverage`: the share of features whose observed value lies within
          the replicates' range. For a calibrated model it is about
          (R - 1)/(R + 1) with R replicates (`expected_coverage`).
        """
        result = {}
        for statistic in STATISTICS:
            observed, replicated = self.observed[statistic], self.replicated[statistic]
            scale = (lambda v: v) if statistic == "zero_fraction" else np.log1p
            difference = scale(replicated.mean(axis=0)) - scale(observed)
            inside = (observed >= replicated.min(axis=0)) & (observed <= replicated.max(axis=0))
            result[statistic] = {
                "error": float(np.mean(np.abs(difference))),
                "bias": float(np.mean(difference)),
                "coverage": float(np.mean(inside)),
            }
        result["expected_coverage"] = (self.replicates - 1) / (self.replicates + 1)
        return result

    def to_dict(self):
        return {
            "examples": self.examples,
            "replicates": self.replicates,
            "summary": self.summary(),
            "observed": {k: v.tolist() for k, v in self.observed.items()},
            "predicted": {k: self.predicted(k).tolist() for k in STATISTICS},
        }


def posterior_predictive_check(vae, data, replicates=10, batch_size=256, max_examples=None, seed=0, verbose=False):
    """Draws `replicates` data sets like `data` from the model and compares per-feature statistics.

    Each example is encoded, and each replicate decodes a fresh z ~ q(z | x)
    and draws x from the likelihood (`Likelihood.draw`) under the example's
    conditions, at its own library size (its total count), so that what is
    compared is what the model explains, not the sequencing depth.
    Only sums over examples are kept, so memory does not grow with `data`.

    Args:
        vae: a trained `VAE` or `ConditionalVAE` (not autoregressive: its
            decoder reads x).
        data: held-out inputs, anything `fit` accepts (a conditional model's
            dicts too).
        replicates: int ≥ 2, replicate data sets. Defaults to `10`.
        batch_size: int, examples encoded at once. Defaults to `256`.
        max_examples: int or None, use only the first this many examples.
        seed: int, for z and the draws. Defaults to `0`.
        verbose: bool, show a progress bar.

    Returns:
        A `PredictiveCheck`.
    """
    if int(replicates) != replicates or replicates < 2:
        raise ValueError(f"`replicates` must be an integer ≥ 2; got {replicates!r}.")
    if isinstance(vae, AutoregressiveVAE):
        raise ValueError(
            "Posterior predictive checks need a decoder that does not read x: use a VAE or ConditionalVAE."
        )
    generator = random_seed(seed)
    observed, replicated = _Sums(), [_Sums() for _ in range(replicates)]
    progress = keras.utils.Progbar(max_examples, unit_name="example") if verbose else None
    for batch in numpy_batches(data, batch_size):
        x = np.asarray(batch["x"] if isinstance(batch, dict) else batch)
        if max_examples is not None:
            keep = max_examples - observed.count
            if keep <= 0:
                break
            x, batch = x[:keep], _head(batch, keep)
        x = x.reshape(len(x), -1).astype(np.float64) if x.ndim > 2 else x.astype(np.float64)
        observed.add(x)
        inputs, condition = vae._split_inputs(batch)
        z_mean, z_log_var = vae._posterior(inputs, condition)
        library = keras.ops.convert_to_tensor(x.sum(axis=1).astype("float32"))
        for sums in replicated:
            z = z_mean + keras.ops.exp(0.5 * z_log_var) * keras.random.normal(
                keras.ops.shape(z_mean), dtype=z_mean.dtype, seed=generator
            )
            decoded = vae.decoded(z, condition)
            drawn = vae.likelihood.draw(decoded, condition=condition, seed=generator, library=library)
            sums.add(np.asarray(keras.ops.convert_to_numpy(drawn), np.float64).reshape(len(x), -1))
        if progress is not None:
            progress.add(len(x))
    if observed.count == 0:
        raise ValueError("`data` holds no examples.")
    return PredictiveCheck(
        observed=observed.statistics(),
        replicated={s: np.stack([r.statistics()[s] for r in replicated]) for s in STATISTICS},
        examples=observed.count,
    )


def plot_predictive_check(check, path, title=None):
    """Observed against predicted, one dot per feature, for each statistic; the identity line dashed."""
    figure, axes = plotting.new_figure(1, 3, figsize=(15, 4.5))
    summary = check.summary()
    for axis, statistic in zip(axes, STATISTICS, strict=True):
        observed, predicted = check.observed[statistic], check.predicted(statistic)
        axis.scatter(observed, predicted, s=6, alpha=0.5)
        low, high = min(observed.min(), predicted.min()), max(observed.max(), predicted.max())
        if statistic == "zero_fraction":
            low, high = 0.0, 1.0
        else:
            low = max(low, 1e-3 * max(high, 1e-9))
            axis.set(xscale="log", yscale="log")
        axis.plot([low, high], [low, high], color="black", linestyle="--", linewidth=1)
        numbers = summary[statistic]
        axis.set(
            xlabel=f"observed {statistic.replace('_', ' ')}",
            ylabel=f"predicted (mean of {check.replicates} replicates)",
            title=f"{statistic.replace('_', ' ')}: error {numbers['error']:.3f}, coverage {numbers['coverage']:.2f}",
        )
    figure.suptitle(title or f"Posterior predictive check, {check.examples} held-out examples, one dot per feature")
    return plotting.save_figure(figure, path)


class _Sums:
    """Per-feature sums over examples: of x, x² and of zeros, in float64."""

    def __init__(self):
        self.count, self.total, self.squares, self.zeros = 0, 0.0, 0.0, 0.0

    def add(self, x):
        self.count += len(x)
        self.total = self.total + x.sum(axis=0)
        self.squares = self.squares + np.square(x).sum(axis=0)
        self.zeros = self.zeros + (x == 0).sum(axis=0)

    def statistics(self):
        mean = self.total / self.count
        variance = np.maximum(self.squares / self.count - np.square(mean), 0.0) * self.count / max(self.count - 1, 1)
        return {"mean": mean, "variance": variance, "zero_fraction": self.zeros / self.count}


def _head(batch, n):
    return {k: v[:n] for k, v in batch.items()} if isinstance(batch, dict) else batch[:n]
