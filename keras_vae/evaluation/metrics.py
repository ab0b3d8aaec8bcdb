"""Diagnostics of the latent code as small `keras.ops` functions, usable without callbacks."""

import math

import keras
import numpy as np
from keras import ops

from keras_vae.datasets.batching import concatenate_batches, numpy_batches
from keras_vae.trainers import compile_inference

# Decoded examples per compiled chunk of importance samples. On a 2-core CPU
# with the default MLP, 2048 and 4096 were about equally fast on TensorFlow and
# PyTorch, 4096 and up slower on JAX, 1024 10-20% slower everywhere.
DECODED_PER_CHUNK = 2048
# Examples encoded at once; the chunks then hold DECODED_PER_CHUNK // 128 samples.
EXAMPLES_PER_BATCH = 128


def importance_weighted_nll(vae, x, num_samples=5000, chunk_size=None, seed=None, verbose=False):
    """-log p(x) of each example, estimated with `num_samples` importance samples.

    `log p(x) ≈ logsumexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)] - log K`
    with `z_k ~ q(z|x)` (Burda et al., 2016): an upper bound on the NLL that
    tightens as K grows, and equals the negative ELBO's expectation at K = 1.

    The examples are encoded `EXAMPLES_PER_BATCH` at a time and their samples
    decoded `chunk_size` per example at a time by one function compiled per
    call (`jax.jit`, `tf.function`, PyTorch without autograd) that reads the
    model's current weights; the chunks are combined with a running
    log-sum-exp on the device, so memory does not grow with K or the number of
    examples, and no chunk waits for the one before to be read back. The
    decoder's matrix products are most of the work: the cost grows as K times
    the number of examples. The noise ε is drawn with NumPy from `seed`, so a
    seed gives the same draws on every backend.

    Args:
        vae: a `keras_vae.VAE`.
        x: the inputs: an array `(examples, ...)`, or anything
            `keras_vae.datasets.numpy_batches` reads (a tf.data.Dataset, a
            PyDataset, `(x, y)`; labels are ignored).
        num_samples: int K. Defaults to `5000`.
        chunk_size: samples per example in one chunk; by default
            `DECODED_PER_CHUNK` decoded examples per chunk in all.
        seed: int, `keras.random.SeedGenerator` or None (fresh noise).
        verbose: bool, show one progress bar over the examples.

    Returns:
        A tensor `(examples,)`, in nats.
    """
    if int(num_samples) < 1:
        raise ValueError(f"`num_samples` must be ≥ 1; got {num_samples}.")
    if chunk_size is not None and int(chunk_size) < 1:
        raise ValueError(f"`chunk_size` must be ≥ 1; got {chunk_size}.")
    num_samples = int(num_samples)
    rng = np.random.default_rng(_numpy_seed(seed))
    progress = keras.utils.Progbar(_count(x), unit_name="example") if verbose else None
    results, done = [], 0
    for batch in _regroup(numpy_batches(x, EXAMPLES_PER_BATCH), EXAMPLES_PER_BATCH):
        if not results:  # compiled once the model has all its variables
            if not vae.built:
                vae.build(keras.tree.map_structure(lambda array: (None, *array.shape[1:]), batch))
            encode = compile_inference(vae, lambda inputs: vae.posterior(_cast_data(vae, inputs)))
            log_weights = compile_inference(vae, lambda *tensors: _log_sum_of_weights(vae, *tensors))
        examples = _num_examples(batch)
        batch = keras.tree.map_structure(ops.convert_to_tensor, batch)  # once, not once per chunk
        z_mean, z_log_var = encode(batch)
        per_chunk = int(chunk_size or max(1, DECODED_PER_CHUNK // examples))
        # Equal chunks, the last one padded with masked-out samples: one compiled shape.
        chunks = math.ceil(num_samples / min(per_chunk, num_samples))
        per_chunk = math.ceil(num_samples / chunks)
        # The running log-sum stays on the device: no chunk waits for the one before to be read back, so
        # the next chunk's noise is drawn while the backend (JAX: asynchronously) decodes.
        total = ops.full((examples,), -np.inf, dtype=vae.likelihood_dtype)
        for chunk in range(chunks):
            count = min(per_chunk, num_samples - chunk * per_chunk)
            epsilon = rng.standard_normal((per_chunk, examples, vae.latent_dim), dtype=np.float32)
            padding = np.where(np.arange(per_chunk) < count, 0.0, -np.inf).astype("float32")
            total = log_weights(batch, z_mean, z_log_var, epsilon, padding, total)
            if progress is not None:
                progress.update(done + examples * (chunk + 1) / chunks)
        results.append(math.log(num_samples) - np.asarray(ops.convert_to_numpy(total), "float64"))
        done += examples
    if not results:
        raise ValueError("`x` holds no examples.")
    return ops.convert_to_tensor(np.concatenate(results).astype("float32"))


def _log_sum_of_weights(vae, inputs, z_mean, z_log_var, epsilon, padding, total):
    """`total` plus (log-add-exp) `logsumexp_k log w_k` over one chunk of samples z_k = μ + σ ε_k: `(examples,)`.

    `inputs` is a batch of `x` (or, for a conditional VAE, the dict of `x` and its conditions).
    `epsilon` is `(samples, examples, latent_dim)`; `padding` `(samples,)` is 0
    for samples that count and -inf for those that do not.
    """
    x, condition = vae._split_inputs(_cast_data(vae, inputs))
    epsilon = ops.cast(epsilon, z_mean.dtype)
    count, examples, latent_dim = epsilon.shape
    z = ops.expand_dims(z_mean, 0) + ops.exp(0.5 * ops.expand_dims(z_log_var, 0)) * epsilon

    def once_per_sample(tensor, shape):
        """`tensor` (examples, ...) repeated for each sample, as (count * examples, *shape)."""
        repeated = ops.broadcast_to(ops.expand_dims(tensor, 0), (count, *tensor.shape))
        return ops.reshape(repeated, (count * examples, *shape))

    if condition is not None:
        condition = once_per_sample(condition, condition.shape[1:])
    repeated_x = once_per_sample(x, x.shape[1:])
    decoded = vae.decoded(ops.reshape(z, (count * examples, latent_dim)), condition, repeated_x)
    # Each example once per sample; with features on one axis where that gives
    # the same sum: XLA on CPU runs a trailing axis of length 1 (MNIST's
    # channel) at half speed, which made whole chunks 1.5 times slower on JAX.
    flat = vae.likelihood.accepts_flat_features
    x = ops.reshape(repeated_x, (count * examples, -1)) if flat else repeated_x
    decoded = ops.reshape(decoded, (count * examples, *((-1,) if flat else decoded.shape[1:])))
    log_likelihood = vae.likelihood.log_prob(x, decoded, condition=condition)
    # log p(z) - log q(z|x) with (z - μ) / σ = ε; the log(2π) terms cancel.
    log_ratio = -0.5 * ops.sum(ops.square(z) - ops.square(epsilon) - ops.expand_dims(z_log_var, 0), axis=-1)
    log_weights = ops.reshape(log_likelihood, (count, examples)) + log_ratio
    chunk = ops.logsumexp(log_weights + ops.expand_dims(ops.cast(padding, log_weights.dtype), 1), axis=0)
    return ops.logaddexp(total, chunk)


def _count(x):
    """How many examples an array (or `(x, y)` of arrays, or a dict of them) holds; None for other data."""
    x = x[0] if isinstance(x, tuple) else x
    x = next(iter(x.values())) if isinstance(x, dict) else x
    return int(x.shape[0]) if hasattr(x, "shape") else None


def _num_examples(batch):
    return len(keras.tree.flatten(batch)[0])


def _cast_data(vae, inputs):
    """`x` (the array, or a dict's `"x"`) in the model's dtype; conditions as they are."""
    if isinstance(inputs, dict):
        return {**inputs, "x": ops.cast(inputs["x"], vae.likelihood_dtype)}
    return ops.cast(inputs, vae.likelihood_dtype)


def _numpy_seed(seed):
    """An int (or None) for NumPy from an int, None or a `keras.random.SeedGenerator`."""
    if isinstance(seed, keras.random.SeedGenerator):
        return int(ops.convert_to_numpy(keras.random.randint((), 0, 2**31 - 1, seed=seed)))
    return seed


def _regroup(batches, size):
    """The examples of `batches` (arrays, or dicts of arrays) again, in batches of `size` (the last one smaller).

    Batches of token ids of different widths (bucketed text) are padded to the widest of each new batch.
    """
    pending, count = [], 0
    for batch in batches:
        batch = keras.tree.map_structure(np.asarray, batch)
        pending.append(batch)
        count += _num_examples(batch)
        while count >= size:
            merged = concatenate_batches(pending)
            yield keras.tree.map_structure(lambda array: array[:size], merged)
            pending, count = [keras.tree.map_structure(lambda array: array[size:], merged)], count - size
    if count:
        yield concatenate_batches(pending)


def model_posterior_mean(vae, x, grid=None):
    """E_{p(z|x)}[z], the mean of the model's own posterior, for a VAE with one latent dimension.

    `p(z|x) ∝ p(x|z) N(z; 0, 1)` is evaluated on an evenly spaced `grid` of z
    and normalised with a log-sum-exp, so the mean is exact up to the grid's
    spacing and range (mass outside the grid is left out). He et al. (2019)
    plot it against the encoder's mean E_{q(z|x)}[z] to show the inference
    network lagging behind the model. The grid is decoded `DECODED_PER_CHUNK`
    decoded examples at a time by one function compiled per call, as in
    `importance_weighted_nll`, so memory stays small.

    Args:
        vae: a `keras_vae.VAE` (an `AutoregressiveVAE` too) with `latent_dim == 1`.
        x: the inputs: an array `(examples, ...)`, or anything
            `keras_vae.datasets.numpy_batches` reads (labels are ignored).
        grid: 1-D evenly spaced values of z. Defaults to
            `np.linspace(-4, 4, 161)` (steps of 0.05 over ±4 prior standard deviations).

    Returns:
        A NumPy float32 array `(examples,)`, each inside the grid's range.
    """
    if vae.latent_dim != 1:
        raise ValueError(
            f"model_posterior_mean sums over a grid of one latent dimension; this VAE has latent_dim={vae.latent_dim}."
        )
    grid = np.linspace(-4.0, 4.0, 161) if grid is None else np.asarray(grid, "float64")
    steps = np.diff(grid)
    if grid.ndim != 1 or len(grid) < 2 or not (steps > 0).all() or not np.allclose(steps, steps[0]):
        raise ValueError("`grid` must be at least two increasing, evenly spaced values of z.")
    results = []
    for batch in _regroup(numpy_batches(x, EXAMPLES_PER_BATCH), EXAMPLES_PER_BATCH):
        if not results:  # compiled once the model has all its variables
            if not vae.built:
                vae.build(keras.tree.map_structure(lambda array: (None, *array.shape[1:]), batch))
            log_joint = compile_inference(vae, lambda inputs, z: _log_joint_on_grid(vae, inputs, z))
        per_chunk = min(len(grid), max(1, DECODED_PER_CHUNK // _num_examples(batch)))
        # Equal chunks, the last one padded with repeats of the last value: one compiled shape.
        chunks = math.ceil(len(grid) / per_chunk)
        padded = np.concatenate([grid, np.full(chunks * per_chunk - len(grid), grid[-1])]).astype("float32")
        log_joints = np.concatenate(
            [
                np.asarray(ops.convert_to_numpy(log_joint(batch, z)), "float64")
                for z in padded.reshape(chunks, per_chunk)
            ]
        )[: len(grid)]
        weights = np.exp(log_joints - log_joints.max(axis=0))
        results.append(grid @ weights / weights.sum(axis=0))
    if not results:
        raise ValueError("`x` holds no examples.")
    return np.concatenate(results).astype("float32")


def _log_joint_on_grid(vae, inputs, z):
    """log p(x|z_k) + log N(z_k; 0, 1), up to a constant, for every grid value z_k and example: `(grid values, examples)`."""
    x, condition = vae._split_inputs(_cast_data(vae, inputs))
    z = ops.cast(z, vae.likelihood_dtype)
    count, examples = z.shape[0], x.shape[0]

    def once_per_value(tensor):
        """`tensor` (examples, ...) repeated for each grid value, as (count * examples, ...)."""
        repeated = ops.broadcast_to(ops.expand_dims(tensor, 0), (count, *tensor.shape))
        return ops.reshape(repeated, (count * examples, *tensor.shape[1:]))

    if condition is not None:
        condition = once_per_value(condition)
    repeated_x = once_per_value(x)
    codes = ops.reshape(ops.broadcast_to(ops.reshape(z, (count, 1)), (count, examples)), (count * examples, 1))
    decoded = vae.decoded(codes, condition, repeated_x)
    log_likelihood = vae.likelihood.log_prob(repeated_x, decoded, condition=condition)
    return ops.reshape(log_likelihood, (count, examples)) - 0.5 * ops.expand_dims(ops.square(z), 1)
