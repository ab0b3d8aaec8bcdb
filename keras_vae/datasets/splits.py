"""What every source loader returns (`Splits` of unbatched example dicts) and `DataError`, with the steps
they share: examples from arrays, the validation hold-out, counting examples, batching.

TensorFlow is imported inside the functions, so that importing this module stays cheap.
"""

import dataclasses

import numpy as np


class DataError(ValueError):
    """Bad or missing input data. The message is one line: what is wrong and how to fix it."""


@dataclasses.dataclass(frozen=True)
class Splits:
    """A source's unbatched example dicts (`"x"`, and `"label"` if known), and what to know about it."""

    train: object  # reshuffled every epoch by the loader
    validation: object  # None when there is no validation set
    test: object
    input_shape: tuple
    name: str
    value_range: tuple
    is_counts: bool = False
    conditions: dict = dataclasses.field(default_factory=dict)
    vocabulary: object = None


def array_examples(x, labels=None, conditions=None):
    """A `tf.data.Dataset` of example dicts from arrays in memory."""
    import tensorflow as tf

    examples = {"x": x} if labels is None else {"x": x, "label": labels}
    if conditions:
        examples["condition"] = conditions
    return tf.data.Dataset.from_tensor_slices(examples)


def validation_size(num_examples, validation_fraction, path, has_test):
    """How many training examples to hold out for validation; a DataError if that cannot work."""
    if not has_test and not validation_fraction:
        raise DataError(
            f"{path} has no test array, so its test set is the validation set: set validation_fraction "
            "above 0 (e.g. 0.1), or save x_test in a .npz file."
        )
    num_validation = int(validation_fraction * num_examples)  # rounded down, as Keras does
    if validation_fraction and num_validation == 0:
        raise DataError(
            f"{path} has {num_examples} training examples, too few to hold out "
            f"validation_fraction={validation_fraction} of them: raise validation_fraction or add examples."
        )
    return num_validation


def seeded_split(num_examples, num_validation, seed):
    """`(validation_indices, train_indices)`: a seeded random hold-out of `num_validation` examples."""
    # A permutation of what is in memory already: Keras's split_dataset would
    # walk the examples one by one in Python.
    order = np.random.default_rng(seed).permutation(num_examples)
    return order[:num_validation], order[num_validation:]


def checked_count(examples, role, name, fix):
    """The number of examples in a split; a DataError if there are none."""
    count = int(examples.cardinality())
    if count < 0:  # unknown to tf.data: count by reading
        count = int(examples.reduce(0, lambda count, _: count + 1))
    if count == 0:
        raise DataError(f"{name} has no {role} examples: {fix}.")
    return count


def batched_inputs(examples, batch_size, conditions=None):
    """The inputs of example dicts (with conditions: dicts of `x` and them), batched and prefetched."""
    import tensorflow as tf

    def to_inputs(example):
        return {"x": example["x"], **example["condition"]} if conditions else example["x"]

    # Batched first: a tf.data map costs tens of microseconds per call, so one per batch, not per example.
    inputs = examples.batch(batch_size).map(to_inputs, num_parallel_calls=tf.data.AUTOTUNE)
    return inputs.prefetch(tf.data.AUTOTUNE)


def first_line(error):
    """The first line of an exception's message, for one-line DataErrors."""
    lines = str(error).strip().splitlines()
    return lines[0].rstrip(".") if lines else type(error).__name__
