"""Minibatches of anything `fit` accepts, read through Keras's data adapters on each backend."""

import numpy as np
import tensorflow as tf

from keras_vae.datasets.batching import numpy_batches


def test_numpy_batches_reads_whatever_fit_reads():
    x = np.arange(10, dtype="float32")[:, None]
    for source in (x, (x,), (x, np.zeros(10)), tf.data.Dataset.from_tensor_slices(x).batch(4)):
        batches = list(numpy_batches(source, batch_size=4))
        assert [len(b) for b in batches] == [4, 4, 2]
        np.testing.assert_array_equal(np.concatenate(batches), x)
