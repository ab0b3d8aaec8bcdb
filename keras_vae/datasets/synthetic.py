"""Seeded synthetic data whose truth is known: bulk RNA-seq counts, and token sequences drawn from a 1-D latent code.

For testing count likelihoods, batch-conditioned VAEs and posterior collapse in text VAEs; NumPy only.
"""

import dataclasses

import numpy as np

from keras_vae.datasets import text

# Log-scale spread of the genes' baseline abundance: a standard deviation of 1.5
# nats puts the most and least expressed of 1000 genes about four orders of
# magnitude apart, as in real bulk libraries.
GENE_ABUNDANCE_SCALE = 1.5
# Share of (program, gene) pairs with a nonzero weight: with 10 programs a gene
# takes part in about two, and about 1 gene in 10 in none (a housekeeping gene,
# equally expressed in every cell type). Sparse, light-tailed (half-normal)
# weights keep any one gene from taking most of a library: at the defaults the
# most expressed gene holds a few percent of the reads, rarely over 20%.
PROGRAM_DENSITY = 0.2
# float32, the dtype of `to_arrays`, holds every integer up to 2**24 exactly.
LARGEST_EXACT_FLOAT32_INTEGER = 2**24
# `bulk_rnaseq()` with its defaults (`seed=0`), split by `to_arrays`, as a dataset name for `keras_vae.datasets.load`.
SYNTHETIC_RNASEQ = "synthetic-rnaseq"


@dataclasses.dataclass(frozen=True, eq=False)
class SyntheticRNASeq:
    """Counts drawn by `bulk_rnaseq`, their labels and the parameters that generated them.

    Attributes:
        counts: int64 array `(samples, genes)`, the read counts.
        cell_type: int64 array `(samples,)`, each sample's cell type in `[0, num_cell_types)`.
        batch: int64 array `(samples,)`, each sample's batch in `[0, num_batches)`.
        library_size: float64 array `(samples,)`, each sample's expected total
            count (the NB means sum to it; the observed `counts.sum(axis=1)`
            scatters around it, and falls below it with dropout).
        cell_type_profiles: float64 array `(cell_types, genes)`, the expression
            proportions of each cell type (rows sum to 1) before within-type
            variation and batch effects: a gene's mean count in a sample of
            type c is about `cell_type_profiles[c, gene] * library_size`.
        program_loadings: float64 array `(cell_types, programs)`, each cell
            type's activity of each gene-expression program.
        program_weights: float64 array `(programs, genes)`, nonnegative, each
            program's effect on each gene's log expression.
        batch_log_effects: float64 array `(batches, genes)`, the log of each
            batch's multiplicative effect on each gene.
        inverse_dispersion: float64 array `(genes,)`, the NB θ of each gene
            (variance = μ + μ²/θ).
        dropout: float, the probability that a count was replaced by 0.
    """

    counts: np.ndarray
    cell_type: np.ndarray
    batch: np.ndarray
    library_size: np.ndarray
    cell_type_profiles: np.ndarray
    program_loadings: np.ndarray
    program_weights: np.ndarray
    batch_log_effects: np.ndarray
    inverse_dispersion: np.ndarray
    dropout: float


def bulk_rnaseq(
    num_samples=2000,
    num_genes=1000,
    num_cell_types=5,
    num_batches=3,
    num_programs=10,
    cell_type_scale=0.5,
    within_type_scale=0.2,
    batch_effect=0.3,
    median_library_size=5e5,
    library_size_scale=0.3,
    median_inverse_dispersion=10.0,
    inverse_dispersion_scale=0.5,
    dropout=0.0,
    seed=0,
):
    """Bulk RNA-seq counts of samples from a few cell types, measured in a few batches.

    The model, from the genes up:

    1. Gene abundance: a baseline log expression per gene,
       `N(0, GENE_ABUNDANCE_SCALE²)`.
    2. Programs: `num_programs` gene-expression programs, each a nonnegative
       weight per gene (half-normal on a random `PROGRAM_DENSITY` of the genes,
       0 elsewhere), scaled so that a program activity of standard deviation s
       moves a gene's log expression by about s nats on average over genes.
    3. Cell types: each cell type activates each program by a loading
       `N(0, cell_type_scale²)`; each sample's activities are its type's
       loadings plus `N(0, within_type_scale²)` noise. A sample's log expression
       is the baseline plus activities @ weights, so it varies across samples
       in a `num_programs`-dimensional space (and the cell types' mean log
       expressions differ in a space of rank `min(num_programs, num_cell_types)`).
    4. Batches: each batch multiplies each gene by `exp(N(0, batch_effect²))`.
       Expression is then normalized to proportions over genes (a softmax), as
       sequencing does: a batch effect also rescales the other genes' shares a
       little.
    5. Sequencing depth: library sizes are log-normal, median
       `median_library_size`, log standard deviation `library_size_scale`.
    6. Counts: NB with mean μ = proportion × library size and a per-gene
       inverse dispersion θ, log-normal with median `median_inverse_dispersion`
       and log standard deviation `inverse_dispersion_scale`; drawn as
       Gamma-Poisson (λ ~ Gamma(θ, μ/θ), count ~ Poisson(λ)).
    7. Dropout: each count is replaced by 0 with probability `dropout`
       (zero inflation).

    Cell types and batches are balanced (sizes differ by at most one) and drawn
    independently of each other, so no batch is confounded with a cell type.

    Args:
        num_samples: int, at least `num_cell_types` and `num_batches`.
            Defaults to `2000`.
        num_genes: int ≥ 1. Defaults to `1000`: enough for structure, small
            enough for CPU training.
        num_cell_types: int ≥ 1. Defaults to `5`.
        num_batches: int ≥ 1. Defaults to `3`.
        num_programs: int ≥ 1. Defaults to `10`, more than the cell types, so
            that within-type variation has directions of its own.
        cell_type_scale: float ≥ 0, the spread of program loadings across cell
            types: about the standard deviation, in nats, of a gene's log
            expression across cell types. Defaults to `0.5`: between two types
            about a fifth of the genes differ by over 2-fold and a few percent
            by over 3-fold (marker genes); much larger values let single genes
            take most of a library.
        within_type_scale: float ≥ 0, the same spread within a cell type.
            Defaults to `0.2`: types stay distinct clusters with visible spread.
        batch_effect: float ≥ 0, the log standard deviation of the per-gene
            batch factors. Defaults to `0.3` (a typical gene changes by about
            1.3-fold between batches), weaker per gene than cell types but over
            every gene, so an unconditioned latent space tells batches apart.
        median_library_size: float > 0, the median expected reads per sample.
            Defaults to `5e5`, bulk-like depth scaled to 1000 genes (the
            median gene gets about a hundred reads, the top ones tens of
            thousands), far below float32's exact integer range.
        library_size_scale: float ≥ 0, the log standard deviation of library
            sizes. Defaults to `0.3` (most samples within about 0.5x to 2x of
            the median).
        median_inverse_dispersion: float > 0, the median NB θ. Defaults to
            `10.0` (biological coefficient of variation about 0.3, typical of
            bulk replicates).
        inverse_dispersion_scale: float ≥ 0, the log standard deviation of θ
            across genes. Defaults to `0.5`.
        dropout: float in [0, 1), the zero-inflation probability. Defaults to
            `0.0`: bulk data has few excess zeros; raise it to mimic
            single-cell data or to test zero-inflated likelihoods. Dropout is
            drawn last, so with the same seed it zeroes counts of the same
            data as `dropout=0`.
        seed: int, for `np.random.default_rng`. The same seed gives the same
            data. Defaults to `0`.

    Returns:
        A `SyntheticRNASeq`.

    Example:
    ```python
    data = keras_vae.datasets.synthetic.bulk_rnaseq(seed=0)
    np.savez("bulk.npz", **keras_vae.datasets.synthetic.to_arrays(data))
    # keras-vae train --dataset bulk.npz ...
    ```
    """
    for name, value, minimum in (
        ("num_genes", num_genes, 1),
        ("num_cell_types", num_cell_types, 1),
        ("num_batches", num_batches, 1),
        ("num_programs", num_programs, 1),
    ):
        if not _is_whole_number(value) or value < minimum:
            raise ValueError(f"`{name}` must be an integer ≥ {minimum}; got {value!r}.")
    if not _is_whole_number(num_samples) or num_samples < max(num_cell_types, num_batches):
        raise ValueError(
            f"`num_samples` must be an integer ≥ num_cell_types and num_batches "
            f"({max(num_cell_types, num_batches)}) so that every one is present; got {num_samples!r}."
        )
    for name, value in (
        ("cell_type_scale", cell_type_scale),
        ("within_type_scale", within_type_scale),
        ("batch_effect", batch_effect),
        ("library_size_scale", library_size_scale),
        ("inverse_dispersion_scale", inverse_dispersion_scale),
    ):
        if not value >= 0:
            raise ValueError(f"`{name}` must be ≥ 0 (0 turns that variation off); got {value!r}.")
    for name, value in (
        ("median_library_size", median_library_size),
        ("median_inverse_dispersion", median_inverse_dispersion),
    ):
        if not value > 0:
            raise ValueError(f"`{name}` must be > 0; got {value!r}.")
    if not 0 <= dropout < 1:
        raise ValueError(f"`dropout` is a probability and must be in [0, 1); got {dropout!r}.")
    num_samples, num_genes, num_cell_types, num_batches, num_programs = (
        int(num_samples),
        int(num_genes),
        int(num_cell_types),
        int(num_batches),
        int(num_programs),
    )

    rng = np.random.default_rng(seed)
    baseline = rng.normal(0.0, GENE_ABUNDANCE_SCALE, num_genes)
    # Scaled so that a gene's log expression has variance cell_type_scale² across
    # cell types on average over genes, whatever the number of programs.
    weight_scale = 1.0 / np.sqrt(num_programs * PROGRAM_DENSITY)
    program_weights = np.abs(rng.normal(0.0, weight_scale, (num_programs, num_genes))) * (
        rng.random((num_programs, num_genes)) < PROGRAM_DENSITY
    )
    program_loadings = rng.normal(0.0, cell_type_scale, (num_cell_types, num_programs))
    batch_log_effects = rng.normal(0.0, batch_effect, (num_batches, num_genes))
    inverse_dispersion = median_inverse_dispersion * np.exp(rng.normal(0.0, inverse_dispersion_scale, num_genes))

    cell_type = rng.permutation(np.arange(num_samples) % num_cell_types)
    batch = rng.permutation(np.arange(num_samples) % num_batches)
    activities = program_loadings[cell_type] + rng.normal(0.0, within_type_scale, (num_samples, num_programs))
    proportions = _softmax(baseline + activities @ program_weights + batch_log_effects[batch])
    library_size = median_library_size * np.exp(rng.normal(0.0, library_size_scale, num_samples))
    mean = proportions * library_size[:, None]
    rates = rng.gamma(inverse_dispersion, mean / inverse_dispersion)
    counts = rng.poisson(rates).astype(np.int64)
    if dropout:
        counts[rng.random(counts.shape) < dropout] = 0

    return SyntheticRNASeq(
        counts=counts,
        cell_type=cell_type.astype(np.int64),
        batch=batch.astype(np.int64),
        library_size=library_size,
        cell_type_profiles=_softmax(baseline + program_loadings @ program_weights),
        program_loadings=program_loadings,
        program_weights=program_weights,
        batch_log_effects=batch_log_effects,
        inverse_dispersion=inverse_dispersion,
        dropout=float(dropout),
    )


def to_arrays(data, test_fraction=0.2, seed=0):
    """A seeded train/test split of `data` in the layout of keras-vae's .npz files.

    `np.savez(path, **to_arrays(data))` writes a file that
    `keras-vae train --dataset path` (and `keras_vae.datasets.load`) reads: counts
    as float32 `x_train`/`x_test`, cell types as labels `y_train`/`y_test`
    and again as the condition `cell_type_train`/`cell_type_test`, and the
    batches as the condition `batch_train`/`batch_test`, for batch-conditioned
    models and `keras_vae.evaluation.downstream`.

    Args:
        data: a `SyntheticRNASeq`.
        test_fraction: float in (0, 1), the share of samples in the test set
            (rounded down, at least one sample on each side). Defaults to `0.2`.
        seed: int, for the split's permutation. Defaults to `0`.

    Returns:
        A dict of NumPy arrays: `x_train`, `x_test` (float32, `(samples, genes)`),
        `y_train`, `y_test`, `cell_type_train`, `cell_type_test`,
        `batch_train`, `batch_test` (int64, `(samples,)`).
    """
    num_samples = len(data.counts)
    num_test = int(test_fraction * num_samples)
    if not 0 < test_fraction < 1 or not 0 < num_test < num_samples:
        raise ValueError(
            f"`test_fraction` must be in (0, 1) and leave at least one of the {num_samples} samples on each "
            f"side; got {test_fraction!r}."
        )
    if data.counts.max(initial=0) > LARGEST_EXACT_FLOAT32_INTEGER:
        raise ValueError(
            f"The largest count, {data.counts.max()}, is above 2**24 and would be rounded in float32: "
            "draw the data with a smaller median_library_size."
        )
    order = np.random.default_rng(seed).permutation(num_samples)
    test, train = order[:num_test], order[num_test:]
    x = data.counts.astype(np.float32)
    return {
        "x_train": x[train],
        "x_test": x[test],
        "y_train": data.cell_type[train],
        "y_test": data.cell_type[test],
        "cell_type_train": data.cell_type[train],
        "cell_type_test": data.cell_type[test],
        "batch_train": data.batch[train],
        "batch_test": data.batch[test],
    }


def _is_whole_number(value):
    """Whether `value` is an int, or a float with no fractional part (`2000.0`)."""
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, (int, np.integer)):
        return True
    return isinstance(value, (float, np.floating)) and float(value).is_integer()


def _softmax(logits):
    """Proportions over the last axis, computed stably."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


# --- Sequences from a one-dimensional latent code ---------------------------------

# Scales of `latent_sequences`' generator, a tanh RNN with fixed random weights.
# The recurrent matrix is N(0, 1/units) (gain 1: the state remembers a few
# steps); token embeddings are N(0, 1); z enters the initial state and every
# step through N(0, SEQUENCE_LATENT_SCALE²) weights; the logits are the state
# times N(0, SEQUENCE_LOGIT_SCALE²/units) weights. At the defaults the next
# token's entropy is about 2.0 nats (uniform over the 16 words: 2.8), the
# sequences of z < -1 and of z > 1 use words in clearly different proportions
# (total variation between the two histograms about 0.6), and the generator's
# own posterior p(z|x) has a standard deviation of about 0.4 (the prior's is 1).
SEQUENCE_LATENT_SCALE = 0.5
SEQUENCE_LOGIT_SCALE = 2.0


def latent_sequences(num_examples=5000, length=10, vocabulary_size=20, units=32, seed=0):
    """Token sequences generated from a scalar z ~ N(0, 1), as in He et al. (2019)'s synthetic experiment.

    Each sequence has its own z; a recurrent generator with fixed random
    weights (a tanh RNN of `units` units, NumPy only) reads z at every step
    and the token before (`<bos>` first), and each token is drawn from the
    softmax of its logits. The words are the ids from
    `len(keras_vae.datasets.text.SPECIAL_TOKENS)` (4) to `vocabulary_size - 1`: no
    `<pad>`, `<unk>`, `<bos>` or `<eos>`, and every sequence has `length`
    tokens. A VAE with a one-dimensional latent code can recover z, and its
    true posterior is known to be informative: data for studying posterior
    collapse and the lag of the inference network.

    Args:
        num_examples: int ≥ 1. Defaults to `5000`.
        length: int ≥ 1, tokens per sequence. Defaults to `10`.
        vocabulary_size: int, the number of token ids, special ones included:
            at least 6 (two words). Defaults to `20` (16 words).
        units: int ≥ 1, the generator's state size. Defaults to `32`.
        seed: int, for `np.random.default_rng`: the generator's weights, z and
            the tokens. The same seed gives the same data. Defaults to `0`.

    Returns:
        A dict: `"x"`, int32 token ids `(num_examples, length)`, and `"z"`,
        the float32 codes `(num_examples,)` they were drawn from.

    Example:
    ```python
    data = keras_vae.datasets.synthetic.latent_sequences(seed=0)
    vae = keras_vae.AutoregressiveVAE.from_input_shape(
        (10,), latent_dim=1, architecture="lstm", likelihood=keras_vae.likelihoods.Categorical(20)
    )
    ```
    """
    first_word = len(text.SPECIAL_TOKENS)
    for name, value, minimum in (("num_examples", num_examples, 1), ("length", length, 1), ("units", units, 1)):
        if not _is_whole_number(value) or value < minimum:
            raise ValueError(f"`{name}` must be an integer ≥ {minimum}; got {value!r}.")
    if not _is_whole_number(vocabulary_size) or vocabulary_size < first_word + 2:
        raise ValueError(
            f"`vocabulary_size` must be an integer ≥ {first_word + 2}: ids 0-{first_word - 1} are "
            f"{', '.join(text.SPECIAL_TOKENS)}, and at least two words follow; got {vocabulary_size!r}."
        )
    num_examples, length, vocabulary_size, units = int(num_examples), int(length), int(vocabulary_size), int(units)

    rng = np.random.default_rng(seed)
    recurrent = rng.normal(0.0, 1.0 / np.sqrt(units), (units, units))
    embedding = rng.normal(0.0, 1.0, (vocabulary_size, units))
    latent_input, latent_state = rng.normal(0.0, SEQUENCE_LATENT_SCALE, (2, units))
    output = rng.normal(0.0, SEQUENCE_LOGIT_SCALE / np.sqrt(units), (units, vocabulary_size - first_word))
    z = rng.standard_normal(num_examples)

    state = np.tanh(z[:, None] * latent_state)
    token = np.full(num_examples, text.BOS)
    x = np.empty((num_examples, length), np.int32)
    for position in range(length):
        state = np.tanh(state @ recurrent + embedding[token] + z[:, None] * latent_input)
        probabilities = _softmax(state @ output)
        # Inverse-CDF draws; the min guards against a cumulative sum that ends just below 1.
        drawn = (probabilities.cumsum(axis=-1) < rng.random((num_examples, 1))).sum(axis=-1)
        token = first_word + np.minimum(drawn, vocabulary_size - first_word - 1)
        x[:, position] = token
    return {"x": x, "z": z.astype(np.float32)}
