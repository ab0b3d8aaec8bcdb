import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_vae import data


def test_tfds_images_are_scaled_to_the_unit_interval_with_labels_aside():
    with tfds.testing.mock_data(num_examples=40):
        dataset, shape = data.image_dataset("mnist", "train", batch_size=16)
        images, labels = data.labelled_arrays("mnist", "test")
    batches = list(dataset.as_numpy_iterator())
    assert shape == (28, 28, 1) and [len(b) for b in batches] == [16, 16, 8]
    assert all(b.dtype == np.float32 and 0.0 <= b.min() and b.max() <= 1.0 for b in batches)
    assert max(b.max() for b in batches) > 0.5  # 0..255 pixels were divided by 255, not clipped
    assert images.shape == (40, 28, 28, 1) and images.max() <= 1.0 and labels.shape == (40,)


def test_numpy_batches_reads_whatever_fit_reads():
    x = np.arange(10, dtype="float32")[:, None]
    for source in (x, (x,), (x, np.zeros(10)), tf.data.Dataset.from_tensor_slices(x).batch(4)):
        batches = list(data.numpy_batches(source, batch_size=4))
        assert [len(b) for b in batches] == [4, 4, 2]
        np.testing.assert_array_equal(np.concatenate(batches), x)
