"""TFDS image datasets as example dicts: the builder by name, prepared (or a clear error), pixels scaled to [0, 1].

TensorFlow and TFDS are imported inside the functions, so that importing this module stays cheap.
"""

import difflib
import os

import numpy as np

from keras_vae.datasets.splits import DataError, Splits, batched_inputs, first_line
from keras_vae.datasets.synthetic import SYNTHETIC_RNASEQ

# Examples in tf.data's shuffle buffer of a split too large to keep in memory:
# a full shuffle would hold a decoded copy of the whole split.
SHUFFLE_BUFFER = 10_000
# Training splits whose images fit in this many bytes as float32 are decoded
# once, kept in memory and fully reshuffled every epoch: decoding and scaling
# MNIST's images again every epoch held training back on 2 cores.
IN_MEMORY_BYTES = 1 << 30
_SOURCES_HINT = (
    "a TFDS image dataset name (tfds.list_builders() lists them), a .npy/.npz/.csv/.h5ad file, "
    f"a .txt/.txt.gz file of sentences, a folder of images or {SYNTHETIC_RNASEQ}"
)


def image_dataset(name, split, batch_size=128, shuffle=False, seed=None, data_dir=None, download=True):
    """A TFDS image dataset, batched, scaled to [0, 1], without labels.

    Args:
        name: TFDS name, e.g. `"mnist"`, `"fashion_mnist"`, `"binarized_mnist"`.
        split: TFDS split, e.g. `"train"`, `"test"` or `"train[:10%]"`.
        batch_size: int. Defaults to `128`.
        shuffle: bool, reshuffle every epoch. Defaults to `False`.
        seed: int or None, for the shuffle.
        data_dir: TFDS data dir; defaults to `$TFDS_DATA_DIR`, then TFDS's own
            default.
        download: bool, download and prepare the dataset in `data_dir` if it is
            not prepared there (as `tfds.load` does); with `False`, such a
            dataset is a `DataError` at once. Defaults to `True`.

    Returns:
        `(dataset, input_shape)`: a `tf.data.Dataset` of float32 batches and the
        shape of one image.
    """
    builder = prepared_builder(name, data_dir, download)
    examples = tfds_examples(builder, split, shuffle_files=shuffle, seed=seed)
    if shuffle:
        examples = examples.shuffle(SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True)
    return batched_inputs(examples, batch_size), tuple(builder.info.features["image"].shape)


def labelled_arrays(name, split, data_dir=None, download=True):
    """A TFDS image split as NumPy arrays: images scaled to [0, 1] and int labels.

    For probe sets (latent-space plots coloured by label); loads the whole split
    into memory, so slice it (`"test[:2000]"`). `data_dir` and `download` are
    as for `image_dataset`.

    Returns:
        `(images, labels)`; `labels` is `None` when the dataset has no `"label"`.
    """
    builder = prepared_builder(name, data_dir, download)
    batches = list(tfds_examples(builder, split).batch(1024).as_numpy_iterator())
    images = np.concatenate([batch["x"] for batch in batches])
    labels = np.concatenate([batch["label"] for batch in batches]) if "label" in batches[0] else None
    return images, labels


def load_tfds(name, validation_fraction, test_split, seed, data_dir, download):
    """The splits of a TFDS image dataset: validation is the head of its train split."""
    builder = prepared_builder(name, data_dir, download)
    if validation_fraction:
        percent = _percent(validation_fraction)
        train_split, validation_split = f"train[{percent}%:]", f"train[:{percent}%]"
    else:
        train_split, validation_split = "train", None
    # Training and validation are read every epoch: kept in memory when they fit. The test split is read
    # once or twice per run, the first time in part (the probe), which a cache would discard.
    in_memory = _fits_in_memory(builder, train_split)
    train = tfds_examples(builder, train_split, shuffle_files=True, seed=seed, cache=in_memory)
    test = tfds_examples(builder, test_split)
    image_feature = builder.info.features["image"]
    if np.issubdtype(image_feature.np_dtype, np.integer):
        value_range = (0.0, 1.0)  # scaled by the dtype's maximum (or stored as 0/1)
    else:
        value_range = _scanned_value_range(tfds_examples(builder, "train").concatenate(test))
    return Splits(
        train=train.shuffle(
            builder.info.splits[train_split].num_examples if in_memory else SHUFFLE_BUFFER,  # in memory: all
            seed=seed,
            reshuffle_each_iteration=True,
        ),
        validation=None
        if validation_split is None
        else tfds_examples(builder, validation_split, cache=_fits_in_memory(builder, validation_split)),
        test=test,
        input_shape=tuple(image_feature.shape),
        name=name,
        value_range=value_range,
    )


def prepared_builder(name, data_dir=None, download=True):
    """The TFDS builder of an image dataset, prepared: downloaded now if need be and `download` allows."""
    import tensorflow_datasets as tfds

    data_dir = data_dir or os.environ.get("TFDS_DATA_DIR")
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except (ValueError, AssertionError) as error:  # DatasetNotFoundError is a ValueError
        raise DataError(_unknown_dataset_message(name, error)) from error

    # Checked before preparing, so a text dataset is never downloaded just to be refused.
    features = builder.info.features
    if "image" not in features:
        raise DataError(
            f"TFDS dataset {name!r} has no 'image' feature (it has {', '.join(features.keys())}); "
            "keras-vae trains on images: choose an image dataset such as mnist or fashion_mnist."
        )
    if None in features["image"].shape:
        raise DataError(
            f"TFDS dataset {name!r} has images of varying size {features['image'].shape}; "
            "keras-vae needs one size: resize them and save them as a .npz file or an image folder."
        )
    if builder.is_prepared():
        return builder
    prepared_elsewhere = (
        "point the TFDS_DATA_DIR environment variable (or data_dir) at a directory where it is prepared"
    )
    if not download:
        raise DataError(
            f"TFDS dataset {name!r} is not prepared in {builder.data_dir} and download is off: {prepared_elsewhere}, "
            "or load it once with download on, on a machine with internet access."
        )
    try:
        builder.download_and_prepare()
    except (OSError, tfds.download.DownloadError) as error:  # requests' network errors are OSErrors
        raise DataError(
            f"TFDS could not download and prepare {name!r} in {builder.data_dir} ({first_line(error)}): "
            f"connect to the internet and try again, or {prepared_elsewhere}."
        ) from error
    return builder


def _fits_in_memory(builder, split):
    """Whether the split's images as float32 (what the shuffle buffer holds) fit in `IN_MEMORY_BYTES`."""
    pixels = int(np.prod(builder.info.features["image"].shape))
    try:
        examples = builder.info.splits[split].num_examples
    except KeyError:  # no split sizes recorded (TFDS's mock data): read every epoch
        return False
    return examples * pixels * 4 <= IN_MEMORY_BYTES


def tfds_examples(builder, split, shuffle_files=False, seed=None, cache=False):
    """A TFDS split as example dicts: `"x"` scaled to [0, 1] as float32, and `"label"` if any.

    With `cache`, the examples are kept in memory after the first pass.
    """
    import tensorflow as tf
    import tensorflow_datasets as tfds

    features = builder.info.features
    scale = _pixel_scale(builder.name, features["image"].np_dtype)
    has_labels = "label" in features and features["label"].shape == ()

    def to_example(features):
        example = {"x": tf.cast(features["image"], tf.float32) / scale}
        if has_labels:
            example["label"] = tf.cast(features["label"], tf.int64)
        return example

    try:
        dataset = builder.as_dataset(
            split=split, shuffle_files=shuffle_files, read_config=tfds.ReadConfig(shuffle_seed=seed)
        )
    except ValueError as error:  # an unknown split name, or bad slicing
        raise DataError(
            f"TFDS dataset {builder.name!r} cannot read split {split!r} ({first_line(error)}); "
            f"choose one of its splits: {', '.join(builder.info.splits.keys())}."
        ) from error
    examples = dataset.map(to_example, num_parallel_calls=tf.data.AUTOTUNE)
    # After the map: tf.data's per-example map cost as much as the decoding (≈ 90 µs an image).
    return examples.cache() if cache else examples


def _unknown_dataset_message(name, error):
    import tensorflow_datasets as tfds

    close_matches = difflib.get_close_matches(name, tfds.list_builders(with_community_datasets=False), n=1)
    suggestion = f" Did you mean {close_matches[0]!r}?" if close_matches else ""
    return (
        f"Unknown dataset {name!r}: it is not an existing file or folder, and TFDS cannot load it "
        f"({first_line(error)}).{suggestion} Pass {_SOURCES_HINT}."
    )


def _percent(fraction):
    # "10", "12.5": TFDS split slicing reads decimal percentages, not 1e-05.
    return f"{100 * fraction:.4f}".rstrip("0").rstrip(".")


def _pixel_scale(name, dtype):
    # binarized_mnist stores 0/1 in uint8; other integer images span their dtype (0..255 for uint8).
    if not np.issubdtype(dtype, np.integer) or name.startswith("binarized"):
        return 1.0
    return float(np.iinfo(dtype).max)


def _scanned_value_range(examples):
    import tensorflow as tf

    return tuple(
        float(value)
        for value in examples.reduce(
            (np.float32(np.inf), np.float32(-np.inf)),
            lambda bounds, example: (
                tf.minimum(bounds[0], tf.reduce_min(example["x"])),
                tf.maximum(bounds[1], tf.reduce_max(example["x"])),
            ),
        )
    )
