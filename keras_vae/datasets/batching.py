"""Minibatches of anything `fit` accepts, as NumPy: the only data module a model imports."""

import functools
import warnings

import keras
import numpy as np


def numpy_batches(data, batch_size=128, shuffle=False):
    """Iterates the inputs `x` of anything `fit` accepts, as NumPy batches.

    Arrays, `(x,)` or `(x, y)` tuples, tf.data datasets, Keras PyDatasets, torch
    DataLoaders and generators all work, on every backend (through Keras's own
    data adapters). Labels, if any, are dropped.
    """
    from keras.src.trainers.data_adapters import get_data_adapter

    if isinstance(data, tuple):
        data = data[0]
    with warnings.catch_warnings():
        # A tf.data.Dataset keeps its own order (Keras says so in a warning).
        warnings.simplefilter("ignore", UserWarning)
        adapter = get_data_adapter(data, batch_size=batch_size, shuffle=shuffle)
    for batch in adapter.get_numpy_iterator():
        yield keras.utils.unpack_x_y_sample_weight(batch)[0]


def random_batches(data, batch_size):
    """An endless stream of shuffled minibatches of `data` (the inner encoder loop, the range test).

    Arrays (or dicts of them) become backend tensors once, and each batch is
    gathered from them: no NumPy batch is converted at every step. Other data
    (a tf.data pipeline, a PyDataset) is read through Keras's adapters, in its
    own order.
    """
    if isinstance(data, tuple):
        data = data[0]
    if all(isinstance(leaf, np.ndarray) for leaf in keras.tree.flatten(data)):
        return _random_tensor_batches(data, batch_size)
    return _random_adapter_batches(data, batch_size)


def _random_tensor_batches(arrays, batch_size):
    tensors = keras.tree.map_structure(keras.ops.convert_to_tensor, arrays)
    count = len(keras.tree.flatten(arrays)[0])
    if count == 0:
        raise ValueError("Random minibatches are drawn from the training data, which holds no examples.")
    while True:
        order = np.random.permutation(count)  # Keras's own shuffling draws from NumPy's global generator too
        for start in range(0, count, batch_size):
            indices = keras.ops.convert_to_tensor(order[start : start + batch_size].astype("int32"))
            yield keras.tree.map_structure(functools.partial(keras.ops.take, indices=indices, axis=0), tensors)


def _random_adapter_batches(data, batch_size):
    while True:
        empty = True
        for x in numpy_batches(data, batch_size, shuffle=True):
            empty = False
            yield x
        if empty:
            raise ValueError(
                "Random minibatches are drawn from the training data again and again, "
                "but a pass over it yielded none (a one-shot generator?). Pass arrays, "
                "a tf.data.Dataset or a PyDataset."
            )


def concatenate_batches(batches):
    """Batches (arrays, or dicts of arrays) as one, along the first axis.

    Token ids `(batch, width)` of different widths, as bucketed batches are
    (`keras_vae.datasets.text.bucketed_batches`), are padded with 0 (`<pad>`)
    to the widest first; other arrays must agree in shape past the first axis.
    """

    def join(*arrays):
        arrays = [np.asarray(array) for array in arrays]
        if all(array.ndim == 2 and np.issubdtype(array.dtype, np.integer) for array in arrays):
            widest = max(array.shape[1] for array in arrays)
            arrays = [np.pad(array, [(0, 0), (0, widest - array.shape[1])]) for array in arrays]
        return np.concatenate(arrays)

    return keras.tree.map_structure(join, *batches)
