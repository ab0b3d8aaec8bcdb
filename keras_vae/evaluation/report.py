"""The numbers that say how good a trained VAE is and whether it uses its code, in one report.

`evaluate` computes the row that `keras-vae evaluate`, a run's summary and the
benchmarks print: −ELBO (reconstruction + KL), the importance-weighted NLL,
I(x; z), active units, and perplexity for text.
"""

import dataclasses
import time

import keras
import numpy as np

from keras_vae import names
from keras_vae.datasets import text as text_data
from keras_vae.datasets.batching import concatenate_batches, numpy_batches
from keras_vae.evaluation.assessment import Assessment, assess
from keras_vae.evaluation.metrics import importance_weighted_nll

ASSESSED_EXAMPLES = 2000
__all__ = ["ASSESSED_EXAMPLES", "Assessment", "EvaluationReport", "evaluate"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class EvaluationReport:
    """What `evaluate` measured; every quantity is per example, in nats.

    Attributes:
        examples: int, how many examples the ELBO was averaged over.
        negative_elbo: float, `reconstruction_loss + kl_loss` (β = 1, no free bits).
        reconstruction_loss: float, mean `-log p(x|z)` with z ~ q(z|x).
        kl_loss: float, mean KL(q(z|x) || p(z)) (without the free-bits clamp).
        importance_weighted_nll: float, mean `-log p(x)` estimated with
            `importance_samples` samples (Burda et al., 2016), or None if skipped.
        importance_samples: int K, or None.
        mutual_info: float, I(x; z) (`keras_vae.evaluation.assessment`: the mixture of
            every assessed example's posterior as q(z)).
        mutual_info_interval: `[low, high]`, its 95% bootstrap interval.
        active_units: int, latent dimensions that carry information (I(x; z_j) ≥
            `assessment.DIMENSION_NATS`; Burda et al.'s activity count is `latent_statistics`').
        decoder_gap: float, log p(x|own z) − log p(x|another example's z): how much the decoder uses z.
        inference_gap: float, −ELBO − IW-NLL on the IW-NLL's examples, or None.
        verdict: str, the assessment's verdict (healthy, collapsed, ...).
        assessment: dict, the whole `Assessment` (per-dimension evidence, remedies).
        latent_dim: int.
        perplexity: float, `exp(total NLL / tokens)` for text, else None.
        seconds: float, how long the evaluation took.
        nll: the per-example IW-NLL, a NumPy array (or None); not in `to_dict`.
    """

    examples: int
    negative_elbo: float
    reconstruction_loss: float
    kl_loss: float
    importance_weighted_nll: float | None = None
    importance_samples: int | None = None
    mutual_info: float
    mutual_info_interval: list
    active_units: int
    latent_dim: int
    decoder_gap: float
    inference_gap: float | None = None
    verdict: str
    assessment: dict = dataclasses.field(default_factory=dict, repr=False)
    perplexity: float | None = None
    seconds: float = 0.0
    nll: np.ndarray | None = dataclasses.field(default=None, repr=False, compare=False)

    def to_dict(self):
        """The measured numbers as JSON-ready Python values (what was skipped is left out)."""
        values = {field.name: getattr(self, field.name) for field in dataclasses.fields(self) if field.name != "nll"}
        return {name: value for name, value in values.items() if value is not None}


def evaluate(
    vae,
    data,
    *,
    batch_size=128,
    num_samples=5000,
    max_examples=None,
    nll_examples=None,
    latent_examples=None,
    text=False,
    seed=0,
    verbose=False,
):
    """Evaluates `vae` on `data`: −ELBO, IW-NLL, I(x; z), active units (and perplexity).

    Args:
        vae: a trained `keras_vae.VAE`, `ConditionalVAE` or `AutoregressiveVAE`.
        data: the inputs: an array (a dict of arrays for a `ConditionalVAE`),
            or anything `keras_vae.datasets.numpy_batches` reads, e.g. a
            `tf.data.Dataset` (labels are ignored).
        batch_size: int, examples per batch. The I(x; z) estimate is averaged
            over batches of this size, so it is bounded by `log(batch_size)`.
            Defaults to `128`.
        num_samples: int K, importance samples per example for the NLL, or None
            to skip it (it takes K decoder passes per example). Defaults to `5000`.
        max_examples: int, evaluate only the first this many examples.
        nll_examples: int, the IW-NLL (and perplexity) on the first this many only.
        latent_examples: int, the latent code's assessment (I(x; z), active units,
            the decoder-uses-z gap, the verdict) on the first this many only
            (default `ASSESSED_EXAMPLES`, 2000).
        text: bool, whether the examples are token-id sentences: adds perplexity.
        seed: int, for the importance samples and the draws of z of I(x; z).
        verbose: bool, a progress bar over the IW-NLL's examples.

    Returns:
        An `EvaluationReport`.
    """
    start = time.perf_counter()
    x = _first(_arrays(data, batch_size), max_examples)
    elbo = vae.evaluate(x, batch_size=batch_size, verbose=0, return_dict=True)
    reconstruction, kl = float(elbo[names.RECONSTRUCTION_LOSS]), float(elbo[names.KL_LOSS])
    nll = perplexity = inference_gap = None
    if num_samples is not None:
        nll_x = _first(x, nll_examples)
        nll = np.asarray(
            keras.ops.convert_to_numpy(importance_weighted_nll(vae, nll_x, num_samples, seed=seed, verbose=verbose))
        )
        if text:
            perplexity = text_data.perplexity(nll, nll_x)
        # The gap on the same examples as the IW-NLL.
        subset = (
            elbo if nll_examples is None else vae.evaluate(nll_x, batch_size=batch_size, verbose=0, return_dict=True)
        )
        inference_gap = float(subset[names.RECONSTRUCTION_LOSS]) + float(subset[names.KL_LOSS]) - float(np.mean(nll))
    # I(x; z)'s mixture is N × N: at most ASSESSED_EXAMPLES examples unless asked.
    code = assess(
        vae,
        x,
        max_examples=latent_examples or ASSESSED_EXAMPLES,
        batch_size=batch_size,
        seed=seed,
        inference_gap=inference_gap,
    )
    return EvaluationReport(
        examples=_count(x),
        negative_elbo=reconstruction + kl,
        reconstruction_loss=reconstruction,
        kl_loss=kl,
        importance_weighted_nll=None if nll is None else float(np.mean(nll)),
        importance_samples=None if nll is None else int(num_samples),
        mutual_info=code.mutual_info,
        mutual_info_interval=list(code.mutual_info_interval),
        active_units=code.active_units,
        decoder_gap=code.decoder_gap,
        inference_gap=inference_gap,
        verdict=code.verdict,
        assessment=code.to_dict(),
        latent_dim=int(vae.latent_dim),
        perplexity=perplexity,
        seconds=time.perf_counter() - start,
        nll=nll,
    )


def _arrays(data, batch_size):
    """`data` as NumPy arrays (one per input), read in batches unless it already is."""
    if all(isinstance(leaf, np.ndarray) for leaf in keras.tree.flatten(data)) and not isinstance(data, tuple):
        return data
    batches = list(numpy_batches(data, batch_size))
    if not batches:
        raise ValueError("The data to evaluate on holds no examples.")
    return concatenate_batches(batches)


def _first(x, count):
    return x if count is None else keras.tree.map_structure(lambda array: array[:count], x)


def _count(x):
    return len(keras.tree.flatten(x)[0])
