"""Binarized inputs for Bernoulli decoders: a fixed draw per example, or a new draw every epoch."""

from keras_vae.datasets.splits import DataError


def check_unit_interval(value_range, name, binarize):
    """A DataError unless the values are probabilities."""
    low, high = value_range
    if low < 0 or high > 1:
        raise DataError(
            f"binarize={binarize!r} needs values in [0, 1], but {name} has values in [{low:g}, {high:g}]: "
            "rescale the data to [0, 1] (uint8 images are divided by 255 for you) or set binarize=None."
        )


def fixed_binarization(examples, seed):
    """Each example's `"x"` replaced by one Bernoulli(x) draw, the same on every pass.

    The draw is keyed by the seed and the example's values rather than its
    position, because positions change between epochs: TFDS shuffles its files
    and Keras its image paths. Identical examples therefore get identical draws.
    """
    import tensorflow as tf

    def binarize(example):
        key = tf.strings.to_hash_bucket_fast(tf.io.serialize_tensor(example["x"]), 2**63 - 1)
        return {**example, "x": _bernoulli(example["x"], tf.stack([tf.constant(seed, tf.int64), key]))}

    return examples.map(binarize, num_parallel_calls=tf.data.AUTOTUNE)


def resampled_every_epoch(batches, seed):
    """Batches of probabilities replaced by Bernoulli draws, new ones on every pass over the data."""
    import tensorflow as tf

    # Dataset.random yields new seeds on each iteration (an epoch); stateful
    # random ops inside `map` would repeat the same draws every epoch instead.
    batch_seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)

    def binarize(probabilities, batch_seed):
        return _bernoulli(probabilities, tf.stack([batch_seed, tf.constant(seed, tf.int64)]))

    return tf.data.Dataset.zip((batches, batch_seeds)).map(binarize, num_parallel_calls=tf.data.AUTOTUNE)


def _bernoulli(probabilities, stateless_seed):
    import tensorflow as tf

    uniform = tf.random.stateless_uniform(tf.shape(probabilities), seed=stateless_seed)
    return tf.cast(uniform < probabilities, tf.float32)
