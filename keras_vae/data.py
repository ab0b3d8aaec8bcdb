"""Image datasets as tf.data pipelines of floats in [0, 1], for any Keras backend.

Keras 3 `fit` accepts a `tf.data.Dataset` on TensorFlow, JAX and PyTorch alike.
"""

import os
import warnings

import keras
import numpy as np


def image_dataset(name, split, batch_size=128, shuffle=False, seed=None, data_dir=None):
    """A TFDS image dataset, batched, scaled to [0, 1], without labels.

    Args:
        name: TFDS name, e.g. `"mnist"`, `"fashion_mnist"`, `"binarized_mnist"`.
        split: TFDS split, e.g. `"train"`, `"test"` or `"train[:10%]"`.
        batch_size: int. Defaults to `128`.
        shuffle: bool, reshuffle every epoch. Defaults to `False`.
        seed: int or None, for the shuffle.
        data_dir: TFDS data dir; defaults to `$TFDS_DATA_DIR`, then TFDS's own
            default (where TFDS downloads and prepares the dataset if needed).

    Returns:
        `(dataset, input_shape)`: a `tf.data.Dataset` of float32 batches and the
        shape of one image.
    """
    import tensorflow as tf
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=data_dir or os.environ.get("TFDS_DATA_DIR"))
    if not builder.is_prepared():
        builder.download_and_prepare()
    features = builder.info.features
    image_key = next((key for key in ("image", "x") if key in features), None)
    if image_key is None:
        raise ValueError(f"TFDS dataset {name!r} has no 'image' feature; keras-vae expects images.")
    image_feature = features[image_key]
    dataset = builder.as_dataset(split=split, shuffle_files=shuffle)
    scale = _pixel_scale(name, image_feature.np_dtype)
    dataset = dataset.map(
        lambda example: tf.cast(example[image_key], tf.float32) / scale, num_parallel_calls=tf.data.AUTOTUNE
    )
    if shuffle:
        dataset = dataset.shuffle(10_000, seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    return dataset, tuple(image_feature.shape)


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


def labelled_arrays(name, split, data_dir=None):
    """A TFDS image split as NumPy arrays: images scaled to [0, 1] and int labels.

    For probe sets (latent-space plots coloured by label); loads the whole split
    into memory, so slice it (`"test[:2000]"`).
    """
    import tensorflow_datasets as tfds

    dataset = tfds.load(name, split=split, data_dir=data_dir or os.environ.get("TFDS_DATA_DIR"))
    batches = list(tfds.as_numpy(dataset.batch(1024)))
    images = np.concatenate([batch["image"] for batch in batches])
    labels = np.concatenate([batch["label"] for batch in batches])
    return images.astype("float32") / _pixel_scale(name, images.dtype), labels


def _pixel_scale(name, dtype):
    # binarized_mnist stores 0/1 in uint8; other uint8 images are 0..255.
    return 255.0 if dtype == np.uint8 and not name.startswith("binarized") else 1.0
