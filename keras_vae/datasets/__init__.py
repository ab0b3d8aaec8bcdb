"""Training data for VAEs: TFDS datasets, NumPy files, image folders, count tables
(CSV, AnnData) or the synthetic RNA-seq benchmark, as tf.data pipelines.

Keras 3 `fit` accepts a `tf.data.Dataset` on TensorFlow, JAX and PyTorch alike.
TensorFlow and TFDS are imported inside the functions, so that importing this
module (for `numpy_batches`) stays cheap on the JAX and PyTorch backends.
"""

import dataclasses
import difflib
import os
import socket
import threading
import urllib.request
import warnings

import keras
import numpy as np

from keras_vae.datasets.batching import numpy_batches

from keras_vae.names import BINARIZATIONS
IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")  # what Keras's image loader reads
ARRAY_EXTENSIONS = (".npy", ".npz")
TABLE_EXTENSIONS = (".csv", ".h5ad")
# `keras_vae.datasets.synthetic.bulk_rnaseq` with its defaults (seed 0), as a named dataset.
SYNTHETIC_RNASEQ = "synthetic-rnaseq"
# Table columns read as class labels (for plots and downstream accuracy), first found.
LABEL_COLUMNS = ("label", "cell_type")

# Examples in tf.data's shuffle buffer for TFDS datasets: a full shuffle would
# hold a decoded copy of the whole split in memory.
_SHUFFLE_BUFFER = 10_000
# TFDS downloads from Google Cloud Storage (and its GCS mirror); reaching it
# within a few seconds is our test for "TFDS could download now".
_TFDS_DOWNLOAD_HOST = ("storage.googleapis.com", 443)
_NETWORK_TIMEOUT_S = 3.0
_SOURCES_HINT = (
    "a TFDS image dataset name (tfds.list_builders() lists them), a .npy/.npz/.csv/.h5ad file, "
    f"a .txt/.txt.gz file of sentences, a folder of images or {SYNTHETIC_RNASEQ}"
)


class DataError(ValueError):
    """Bad or missing input data. The message is one line: what is wrong and how to fix it."""


@dataclasses.dataclass(frozen=True)
class Datasets:
    """The train, validation and test pipelines of one data source, and what to know about it.

    Every pipeline yields float32 batches of inputs only (no labels), prefetched;
    with conditions, dicts `{"x": inputs, name: values, ...}` (a `ConditionalVAE`'s inputs).

    Attributes:
        train: `tf.data.Dataset`, reshuffled every epoch (seeded).
        validation: `tf.data.Dataset` in a fixed order, or `None` when
            `validation_fraction` was 0.
        test: `tf.data.Dataset` in a fixed order. For sources without a test
            set (image folders, arrays without `x_test`) it is the validation set.
        input_shape: tuple, the shape of one example, e.g. `(28, 28, 1)`.
        name: str, the TFDS name, or the file or folder name.
        num_train: int, training examples per epoch (for steps per epoch);
            `num_validation` (0 without) and `num_test` likewise.
        value_range: `(min, max)` of the values as fed to the model.
        is_counts: bool, whether every value is a non-negative integer (and
            was not rescaled): data for the count likelihoods.
        conditions: `{name: number of categories, or None if continuous}`
            of the conditions asked for, in order; `{}` without.
        vocabulary: `keras_vae.datasets.text.Vocabulary` of a text source (its
            examples are token ids), else `None`.
    """

    train: "tf.data.Dataset"  # noqa: F821 (TensorFlow is imported lazily)
    validation: "tf.data.Dataset | None"  # noqa: F821
    test: "tf.data.Dataset"  # noqa: F821
    input_shape: tuple
    name: str
    num_train: int
    value_range: tuple
    # Unbatched test examples with their labels, for `probe`.
    _test_examples: "tf.data.Dataset" = dataclasses.field(repr=False)  # noqa: F821
    is_counts: bool = False
    conditions: dict = dataclasses.field(default_factory=dict)
    num_validation: int = 0
    num_test: int = 0
    vocabulary: object = None

    def probe(self, n=2000):
        """The first `n` test examples (fewer if the test set is smaller), with labels.

        For latent-space plots coloured by class and for image grids. The
        examples are exactly what `test` feeds the model (binarized too, if asked).

        Args:
            n: int, how many examples at most. Defaults to `2000`.

        Returns:
            `(images, labels)`: a float32 NumPy array `(count, *input_shape)`
            (with conditions, the dict of it and of their values) and an
            int64 array `(count,)`, or `None` when the source has no labels.
        """
        if n < 1:
            raise ValueError(f"probe needs n >= 1 examples, got n={n}.")
        batch = next(self._test_examples.take(n).batch(n).as_numpy_iterator())
        x = {"x": batch["x"], **batch["condition"]} if self.conditions else batch["x"]
        return x, batch.get("label")


@dataclasses.dataclass(frozen=True)
class _Splits:
    """What each source loader returns: unbatched example dicts (`"x"`, and `"label"` if known)."""

    train: object  # reshuffled every epoch by the loader
    validation: object  # None when there is no validation set
    test: object
    input_shape: tuple
    name: str
    value_range: tuple
    is_counts: bool = False
    conditions: dict = dataclasses.field(default_factory=dict)
    vocabulary: object = None


def load(
    source, batch_size=128, validation_fraction=0.1, test_split="test", binarize=None, seed=0, data_dir=None, conditions=()
):
    """Train, validation and test pipelines for a VAE, from a TFDS name, a NumPy file or an image folder.

    Sources (an existing path wins over a TFDS name of the same spelling):
    - A TFDS dataset with an `"image"` feature (`"mnist"`, `"fashion_mnist"`,
      `"binarized_mnist"`, ...). Validation is the first `validation_fraction`
      of the TFDS train split (`"train[:10%]"`), training the rest
      (`"train[10%:]"`), test is `test_split`. Integer images are scaled to
      [0, 1] (binarized_mnist is stored as 0/1 already); labels come from the
      `"label"` feature. A dataset that is not prepared in `data_dir` is
      downloaded and prepared, or, with no network, fails at once.
    - A `.npy` file (one array, examples first) or a `.npz` file holding
      `x_train` (optional `x_test`, `y_train`, `y_test`), or `train` (optional
      `test`), or a single array. uint8 arrays are divided by 255, float arrays
      are used as they are. Validation is a seeded random `validation_fraction`
      of the training array. Without a test array, the test set is the
      validation set.
    - A folder of PNG/JPEG/BMP/GIF images, or of one subfolder of images per
      class (labels are the subfolder's index in sorted order), read with
      `keras.utils.image_dataset_from_directory` and scaled to [0, 1]. Images
      keep the first image's size and are grayscale if it is; images of another
      size are resized to it (Keras's behaviour). Validation is a seeded
      `validation_fraction` of the files; the test set is the validation set.
    - A `.csv` table with a header row, one example per row (e.g. samples ×
      genes counts): numeric columns are the features, a `label` or
      `cell_type` column the labels, condition columns the conditions, other
      text columns (sample names) are skipped. An `.h5ad` file (AnnData;
      `pip install "keras-vae[anndata]"`): `X` the features, `obs` columns
      the labels and conditions. As for arrays, validation is a seeded random
      part and the test set is the validation set.
    - `"synthetic-rnaseq"`: `keras_vae.datasets.synthetic.bulk_rnaseq()` (seed 0)
      with its train/test split; conditions `batch` and `cell_type`.
    - A text file of sentences, one per line (`.txt`, or gzipped `.txt.gz`),
      for the LSTM VAE: the vocabulary is every word of it (see
      `keras_vae.datasets.text`) and each example the int32 token ids of a sentence,
      padded to the longest sentence of all splits. A file whose name holds
      `train` (Penn Treebank's `ptb.train.txt`) takes its test and validation
      sentences from the files named with `test` and `valid` instead, where
      they exist; otherwise they are split off as for arrays.

    Args:
        source: str or path-like, see above.
        batch_size: int. Defaults to `128`.
        validation_fraction: float in [0, 1). Defaults to `0.1`. Sources with
            no test set of their own (folders, arrays without `x_test`) need
            it above 0, since their test set is the validation set.
        test_split: TFDS split for `test`, e.g. `"test"` or `"test[:50%]"`.
            Ignored for files and folders. Defaults to `"test"`.
        binarize: `None`, `"dynamic"` or `"fixed"`, for values in [0, 1].
            `"dynamic"` resamples each training value as Bernoulli(value) every
            epoch; `"fixed"` draws once per example (the same every epoch, and
            for the same seed; keyed by the example's values, so identical
            examples share a draw). Validation and test always get the fixed
            draw, so evaluations compare. Defaults to `None`.
        seed: int, for the shuffles, the validation split and binarization.
            Defaults to `0`.
        data_dir: TFDS data dir; defaults to `$TFDS_DATA_DIR`, then TFDS's own
            default.
        conditions: names of the conditions to feed a `ConditionalVAE`, for
            array, table and synthetic sources: `.npz` arrays `NAME_train`
            (and `NAME_test`), table columns, `obs` columns. Integer (or text)
            values are categories, other numbers continuous. Defaults to none.

    Returns:
        A `Datasets`.

    Raises:
        DataError: the source is missing, unknown, empty or malformed, or
            cannot be binarized. Its message is one line that says how to fix it.
    """
    if not 0 <= validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}.")
    if binarize not in (None, *BINARIZATIONS):
        raise ValueError(f"binarize must be None, 'dynamic' or 'fixed', got {binarize!r}.")
    if seed is None:
        seed = int(np.random.randint(2**31))

    conditions = tuple(conditions)
    splits = _load_splits(os.fspath(source), validation_fraction, test_split, seed, data_dir, conditions)
    num_train = _checked_count(splits.train, "training", splits.name, "use a source with more examples")
    num_test = _checked_count(splits.test, "test", splits.name, "choose another test split")
    num_validation = 0
    if splits.validation is not None:
        num_validation = _checked_count(splits.validation, "validation", splits.name, "raise validation_fraction, or set it to 0")

    value_range = splits.value_range
    train, validation, test = splits.train, splits.validation, splits.test
    if binarize:
        _check_unit_interval(value_range, splits.name, binarize)
        value_range = (0.0, 1.0)
        validation = None if validation is None else _fixed_binarization(validation, seed)
        test = _fixed_binarization(test, seed)
        if binarize == "fixed":
            train = _fixed_binarization(train, seed)

    train_batches = _batches(train, batch_size, splits.conditions)
    if binarize == "dynamic":
        train_batches = _resampled_every_epoch(train_batches, seed)
    return Datasets(
        train=train_batches,
        validation=None if validation is None else _batches(validation, batch_size, splits.conditions),
        test=_batches(test, batch_size, splits.conditions),
        input_shape=tuple(splits.input_shape),
        name=splits.name,
        num_train=num_train,
        value_range=value_range,
        _test_examples=test,
        num_validation=num_validation,
        num_test=num_test,
        is_counts=splits.is_counts and not binarize,
        conditions=splits.conditions,
        vocabulary=splits.vocabulary,
    )


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
    builder = _prepared_tfds_builder(name, data_dir)
    examples = _tfds_examples(builder, split, shuffle_files=shuffle, seed=seed)
    if shuffle:
        examples = examples.shuffle(_SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True)
    return _batches(examples, batch_size), tuple(builder.info.features["image"].shape)


def labelled_arrays(name, split, data_dir=None):
    """A TFDS image split as NumPy arrays: images scaled to [0, 1] and int labels.

    For probe sets (latent-space plots coloured by label); loads the whole split
    into memory, so slice it (`"test[:2000]"`).

    Returns:
        `(images, labels)`; `labels` is `None` when the dataset has no `"label"`.
    """
    builder = _prepared_tfds_builder(name, data_dir)
    batches = list(_tfds_examples(builder, split).batch(1024).as_numpy_iterator())
    images = np.concatenate([batch["x"] for batch in batches])
    labels = np.concatenate([batch["label"] for batch in batches]) if "label" in batches[0] else None
    return images, labels


def _load_splits(source, validation_fraction, test_split, seed, data_dir, conditions):
    from keras_vae.datasets import text

    extension = os.path.splitext(source)[1].lower()
    if os.path.isfile(source) and text.is_text_file(source) and conditions:
        raise DataError(f"{source} holds sentences, which take no conditions: drop the conditions.")
    if os.path.isfile(source) and text.is_text_file(source):
        return _text_splits(source, validation_fraction, seed)
    if os.path.isfile(source):
        if extension in ARRAY_EXTENSIONS:
            return _array_splits(_read_arrays(source), source, validation_fraction, seed, conditions)
        if extension in TABLE_EXTENSIONS:
            return _array_splits(_read_table(source, conditions), source, validation_fraction, seed, conditions)
        raise DataError(
            f"{source}: unsupported file type {extension or '(no extension)'}; "
            "pass a .npy/.npz/.csv/.h5ad file, a .txt/.txt.gz file of sentences, a folder of PNG/JPEG/BMP/GIF images "
            "or a TFDS dataset name."
        )
    if extension in ARRAY_EXTENSIONS + TABLE_EXTENSIONS or text.is_text_file(source):
        raise DataError(f"No such file: {source}; check the path (relative paths start at {os.getcwd()}).")
    if source == SYNTHETIC_RNASEQ and not os.path.exists(source):
        from keras_vae.datasets import synthetic

        arrays = synthetic.to_arrays(synthetic.bulk_rnaseq())
        return _array_splits(arrays, SYNTHETIC_RNASEQ, validation_fraction, seed, conditions)
    if conditions:
        raise DataError(
            f"conditions ({', '.join(conditions)}) are read from .npz/.csv/.h5ad files and {SYNTHETIC_RNASEQ}, "
            f"not from {source}: save the data and its conditions with np.savez, or drop the conditions."
        )
    if os.path.isdir(source):
        return _load_image_folder(source, validation_fraction, seed)
    return _load_tfds(source, validation_fraction, test_split, seed, data_dir)


# TFDS ---------------------------------------------------------------------------------


def _load_tfds(name, validation_fraction, test_split, seed, data_dir):
    builder = _prepared_tfds_builder(name, data_dir)
    if validation_fraction:
        percent = _percent(validation_fraction)
        train_split, validation_split = f"train[{percent}%:]", f"train[:{percent}%]"
    else:
        train_split, validation_split = "train", None
    train = _tfds_examples(builder, train_split, shuffle_files=True, seed=seed)
    test = _tfds_examples(builder, test_split)
    image_feature = builder.info.features["image"]
    if np.issubdtype(image_feature.np_dtype, np.integer):
        value_range = (0.0, 1.0)  # scaled by the dtype's maximum (or stored as 0/1)
    else:
        value_range = _scanned_value_range(_tfds_examples(builder, "train").concatenate(test))
    return _Splits(
        train=train.shuffle(_SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True),
        validation=None if validation_split is None else _tfds_examples(builder, validation_split),
        test=test,
        input_shape=tuple(image_feature.shape),
        name=name,
        value_range=value_range,
    )


def _prepared_tfds_builder(name, data_dir=None):
    """The TFDS builder of an image dataset, prepared: downloaded now if need be and possible."""
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
    if not builder.is_prepared():
        # Offline, TFDS would retry its download for minutes before failing.
        if not _can_reach_tfds_servers():
            raise DataError(
                f"TFDS dataset {name!r} is not prepared in {builder.data_dir} and there is no network to "
                "download it: point the TFDS_DATA_DIR environment variable (or data_dir) at a "
                "directory where it is prepared, or connect to the internet so TFDS "
                "can download it."
            )
        builder.download_and_prepare()
    return builder


def _unknown_dataset_message(name, error):
    import tensorflow_datasets as tfds

    close_matches = difflib.get_close_matches(name, tfds.list_builders(with_community_datasets=False), n=1)
    suggestion = f" Did you mean {close_matches[0]!r}?" if close_matches else ""
    return (
        f"Unknown dataset {name!r}: it is not an existing file or folder, and TFDS cannot load it "
        f"({_first_line(error)}).{suggestion} Pass {_SOURCES_HINT}."
    )


def _can_reach_tfds_servers(timeout=_NETWORK_TIMEOUT_S):
    """Whether a TCP connection to TFDS's download server opens within `timeout` seconds.

    Tests replace this function, so that no test can start a download.
    """
    if urllib.request.getproxies().get("https"):
        return True  # Through a proxy we cannot tell cheaply: let TFDS try.
    reachable = []

    def connect():
        try:
            socket.create_connection(_TFDS_DOWNLOAD_HOST, timeout=timeout).close()
            reachable.append(True)
        except OSError:
            pass

    # A thread, because the socket timeout does not bound the DNS lookup, which
    # can hang for much longer when the name server cannot be reached.
    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(reachable)


def _tfds_examples(builder, split, shuffle_files=False, seed=None):
    """A TFDS split as example dicts: `"x"` scaled to [0, 1] as float32, and `"label"` if any."""
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
            f"TFDS dataset {builder.name!r} cannot read split {split!r} ({_first_line(error)}); "
            f"choose one of its splits: {', '.join(builder.info.splits.keys())}."
        ) from error
    return dataset.map(to_example, num_parallel_calls=tf.data.AUTOTUNE)


def _percent(fraction):
    # "10", "12.5": TFDS split slicing reads decimal percentages, not 1e-05.
    return f"{100 * fraction:.4f}".rstrip("0").rstrip(".")


def _pixel_scale(name, dtype):
    # binarized_mnist stores 0/1 in uint8; other integer images span their dtype (0..255 for uint8).
    if not np.issubdtype(dtype, np.integer) or name.startswith("binarized"):
        return 1.0
    return float(np.iinfo(dtype).max)


# NumPy files ----------------------------------------------------------------------------


def _array_splits(arrays, path, validation_fraction, seed, conditions):
    """Splits of named arrays (a .npz file's layout), with the conditions asked for."""
    train_name, test_name = _train_and_test_names(arrays, path)
    x_train = _float_images(arrays[train_name], train_name, path)
    y_train = _labels(arrays.get("y_train"), len(x_train), "y_train", path)
    condition_train = {name: _condition_values(arrays, name, "train", len(x_train), path) for name in conditions}
    if test_name is None:
        x_test = y_test = condition_test = None
    else:
        x_test = _float_images(arrays[test_name], test_name, path)
        y_test = _labels(arrays.get("y_test"), len(x_test), "y_test", path)
        condition_test = {name: _condition_values(arrays, name, "test", len(x_test), path) for name in conditions}
        if x_test.shape[1:] != x_train.shape[1:]:
            raise DataError(
                f"{path}: {test_name} examples have shape {x_test.shape[1:]} but {train_name} examples "
                f"{x_train.shape[1:]}; save test and training examples of one shape."
            )

    num_validation = _checked_num_validation(len(x_train), validation_fraction, path, has_test=x_test is not None)
    # A seeded permutation of arrays already in memory: Keras's split_dataset
    # would walk the examples one by one in Python.
    order = np.random.default_rng(seed).permutation(len(x_train))
    validation_indices, train_indices = order[:num_validation], order[num_validation:]
    train = _array_examples(x_train[train_indices], _take(y_train, train_indices), _take_each(condition_train, train_indices))
    validation = _array_examples(
        x_train[validation_indices], _take(y_train, validation_indices), _take_each(condition_train, validation_indices)
    )
    raw = [arrays[name] for name in (train_name, test_name) if name is not None]
    return _Splits(
        # The arrays are in memory already, so a buffer of all of them is a full shuffle.
        train=train.shuffle(len(train_indices), seed=seed, reshuffle_each_iteration=True),
        validation=validation if num_validation else None,
        test=validation if x_test is None else _array_examples(x_test, y_test, condition_test),
        input_shape=x_train.shape[1:],
        name=os.path.splitext(os.path.basename(path))[0],
        value_range=_array_value_range(x_train, x_test),
        is_counts=all(array.dtype != np.uint8 and _is_counts(array) for array in raw),
        conditions={name: _categories(condition_train[name], None if x_test is None else condition_test[name])
                    for name in conditions},
    )


def _text_splits(path, validation_fraction, seed):
    """Splits of a text file of sentences: token ids, with test and validation from sibling files where they exist."""
    from keras_vae.datasets import text

    def sibling(part):
        directory, name = os.path.split(path)
        other = os.path.join(directory, name.replace("train", part))
        return other if "train" in name and os.path.isfile(other) else None

    train = text.read_sentences(path)
    test_path, validation_path = sibling("test"), sibling("valid")
    test = None if test_path is None else text.read_sentences(test_path)
    validation = None
    if validation_path is not None:
        validation = text.read_sentences(validation_path)
    elif train:
        num_validation = _checked_num_validation(len(train), validation_fraction, path, has_test=test is not None)
        order = np.random.default_rng(seed).permutation(len(train))
        validation = [train[i] for i in order[:num_validation]]
        train = [train[i] for i in np.sort(order[num_validation:])]
    if not train:
        raise DataError(f"{path} has no sentences: write one sentence per line, words separated by spaces.")
    vocabulary = text.Vocabulary.from_sentences(train)
    length = max(len(sentence) for sentence in train + (validation or []) + (test or [])) + 1
    encoded = {name: None if sentences is None else vocabulary.encode(sentences, length)
               for name, sentences in (("train", train), ("validation", validation), ("test", test))}
    validation = None if not validation else _array_examples(encoded["validation"], None)
    return _Splits(
        train=_array_examples(encoded["train"], None).shuffle(len(train), seed=seed, reshuffle_each_iteration=True),
        validation=validation,
        test=validation if test is None else _array_examples(encoded["test"], None),
        input_shape=(length,),
        name=os.path.basename(path).split(".txt")[0],
        value_range=(0, len(vocabulary) - 1),
        vocabulary=vocabulary,
    )


def _checked_num_validation(num_examples, validation_fraction, path, has_test):
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


def _read_arrays(path):
    """The arrays of a .npz file by name, or of a .npy file as `{"array": array}`."""
    try:
        if path.lower().endswith(".npy"):
            return {"array": np.load(path, allow_pickle=False)}
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError) as error:  # not NumPy, truncated, or pickled objects
        raise DataError(
            f"Cannot read {path} as NumPy data ({_first_line(error)}); save it with np.save or np.savez."
        ) from error


def _train_and_test_names(arrays, path):
    """The names of the training array and of the test array (None if there is none)."""
    for train_name, test_name in (("x_train", "x_test"), ("train", "test")):
        if train_name in arrays:
            return train_name, test_name if test_name in arrays else None
    if len(arrays) == 1:
        return next(iter(arrays)), None
    raise DataError(
        f"{path} holds arrays {', '.join(sorted(arrays)) or '(none)'}; name them x_train/x_test "
        "(with y_train/y_test labels) or train/test, or save a single array."
    )


def _float_images(array, array_name, path):
    """`array` as float32 examples: uint8 divided by 255, other numbers as they are."""
    if array.dtype.kind not in "biuf" or array.ndim < 2:
        raise DataError(
            f"{array_name} in {path} is a {array.dtype} array of shape {array.shape}; save numbers with "
            "examples first and at least one value each, e.g. shape (examples, 28, 28)."
        )
    if len(array) == 0:
        raise DataError(f"{array_name} in {path} has no examples (shape {array.shape}); save a non-empty array.")
    images = array.astype(np.float32) / 255.0 if array.dtype == np.uint8 else array.astype(np.float32)
    num_non_finite = images.size - np.count_nonzero(np.isfinite(images))
    if num_non_finite:
        raise DataError(
            f"{array_name} in {path} has {num_non_finite} NaN or infinite values (of {images.size}); "
            "replace or drop them (e.g. np.nan_to_num) before training."
        )
    return images


def _labels(labels, num_examples, array_name, path):
    if labels is None:
        return None
    if labels.size != num_examples or labels.dtype.kind not in "biuf":
        raise DataError(
            f"{array_name} in {path} has shape {labels.shape} ({labels.dtype}) for {num_examples} examples; "
            "save one integer class label per example."
        )
    return labels.reshape(-1).astype(np.int64)


def _take(labels, indices):
    return None if labels is None else labels[indices]


def _take_each(arrays, indices):
    return {name: array[indices] for name, array in arrays.items()}


def _array_examples(images, labels, conditions=None):
    import tensorflow as tf

    examples = {"x": images} if labels is None else {"x": images, "label": labels}
    if conditions:
        examples["condition"] = conditions
    return tf.data.Dataset.from_tensor_slices(examples)


def _is_counts(array):
    """Whether every value is a non-negative integer."""
    if array.dtype.kind in "bu":
        return True
    return bool(np.all(array >= 0) and np.all(np.mod(array, 1) == 0))


def _condition_values(arrays, name, split, num_examples, path):
    """The values of condition `name` for a split: int64 categories or float32 numbers, one per example."""
    values = arrays.get(f"{name}_{split}", arrays.get(name) if split == "train" else None)
    if values is None:
        raise DataError(
            f"{path} has no condition {name!r} for its {split} examples: save it as an array {name}_{split} "
            f"(or a column {name}), or drop the condition."
        )
    values = np.asarray(values)
    if values.dtype.kind not in "biuf" or values.size != num_examples:
        raise DataError(
            f"condition {name} in {path} has shape {values.shape} ({values.dtype}) for {num_examples} {split} "
            "examples: save one number or category index per example."
        )
    values = values.reshape(-1)
    if values.dtype.kind in "biu":
        if values.min() < 0:
            raise DataError(f"condition {name} in {path} has negative category indices: number the categories from 0.")
        return values.astype(np.int64)
    if not np.all(np.isfinite(values)):
        raise DataError(f"condition {name} in {path} has NaN or infinite values: fill or drop those examples.")
    return values.astype(np.float32)


def _categories(train_values, test_values):
    """Categories of an integer condition (its largest index + 1), or None for a continuous one."""
    if train_values.dtype != np.int64:
        return None
    values = train_values if test_values is None else np.concatenate([train_values, test_values])
    return max(2, int(values.max()) + 1)


def _read_table(path, conditions):
    """The arrays of a samples × features table (.csv, or .h5ad through anndata), in the .npz layout."""
    if path.lower().endswith(".h5ad"):
        return _read_anndata(path, conditions)
    import csv

    try:
        with open(path, newline="") as file:
            rows = list(csv.reader(file))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DataError(f"Cannot read {path} as a CSV table ({_first_line(error)}); save it as UTF-8 text.") from error
    if len(rows) < 2:
        raise DataError(f"{path} has no data rows: save a header row of column names, then one row per example.")
    header, body = rows[0], rows[1:]
    if any(len(row) != len(header) for row in body):
        line = next(number for number, row in enumerate(body, 2) if len(row) != len(header))
        raise DataError(f"{path}: line {line} has another number of fields than the header ({len(header)}); fix that row.")
    columns = {name: [row[index] for row in body] for index, name in enumerate(header)}
    label = next((name for name in LABEL_COLUMNS if name in columns), None)
    features = [name for name in header if name != label and name not in conditions and _numbers(columns[name]) is not None]
    if not features:
        raise DataError(f"{path} has no numeric columns: save the features (e.g. one count column per gene) as numbers.")
    arrays = {"x_train": np.stack([_numbers(columns[name]) for name in features], axis=1)}
    if label is not None:
        arrays["y_train"] = _column_values(columns[label], categorical=True)
    for name in conditions:
        if name not in columns:
            raise DataError(f"{path} has no column {name!r} for the condition: add it, or drop the condition.")
        arrays[name] = _column_values(columns[name])
    return arrays


def _read_anndata(path, conditions):
    try:
        import anndata
    except ImportError:
        raise DataError(f"Reading {path} needs the anndata package: pip install \"keras-vae[anndata]\".") from None
    try:
        table = anndata.read_h5ad(path)
    except (OSError, ValueError, KeyError) as error:
        raise DataError(f"Cannot read {path} as AnnData ({_first_line(error)}); write it with AnnData.write_h5ad.") from error
    matrix = table.X.toarray() if hasattr(table.X, "toarray") else np.asarray(table.X)
    arrays = {"x_train": matrix}
    label = next((name for name in LABEL_COLUMNS if name in table.obs), None)
    if label is not None:
        arrays["y_train"] = _column_values([str(value) for value in table.obs[label]], categorical=True)
    for name in conditions:
        if name not in table.obs:
            raise DataError(f"{path} has no obs column {name!r} for the condition: add it, or drop the condition.")
        values = np.asarray(table.obs[name])
        arrays[name] = _column_values([str(value) for value in values]) if values.dtype.kind not in "biuf" else values
    return arrays


def _numbers(texts):
    """A float array of the texts, or None if any is not a number."""
    try:
        return np.array([float(text) for text in texts], dtype=np.float64)
    except ValueError:
        return None


def _column_values(texts, categorical=False):
    """Integers where every value is one (or text, as the index of its sorted category), else floats."""
    numbers = _numbers(texts)
    if numbers is None:
        categories = sorted(set(texts))
        return np.array([categories.index(text) for text in texts], dtype=np.int64)
    if categorical or np.all(np.mod(numbers, 1) == 0):
        return numbers.astype(np.int64)
    return numbers


def _array_value_range(*arrays):
    arrays = [array for array in arrays if array is not None]
    return float(min(array.min() for array in arrays)), float(max(array.max() for array in arrays))


# Image folders --------------------------------------------------------------------------


def _load_image_folder(folder, validation_fraction, seed):
    image_paths = _image_paths(folder)
    has_class_folders = _checked_folder_layout(folder, image_paths, validation_fraction)
    height, width, channels = _image_shape(image_paths[0])
    # Gray, or gray + alpha: the alpha channel is dropped, as it is for RGBA.
    color_mode = "grayscale" if channels <= 2 else "rgb"
    train, validation = keras.utils.image_dataset_from_directory(
        folder,
        labels="inferred" if has_class_folders else None,
        color_mode=color_mode,
        batch_size=None,
        image_size=(height, width),
        shuffle=True,  # the file order is shuffled (seeded) before the split; train is reshuffled each epoch
        seed=seed,
        validation_split=validation_fraction,
        subset="both",
        data_format="channels_last",
        verbose=False,
    )
    validation = _folder_examples(validation, has_class_folders)
    return _Splits(
        train=_folder_examples(train, has_class_folders),
        validation=validation,
        test=validation,
        input_shape=(height, width, 1 if color_mode == "grayscale" else 3),
        name=os.path.basename(os.path.normpath(folder)),
        value_range=(0.0, 1.0),
    )


def _checked_folder_layout(folder, image_paths, validation_fraction):
    """Whether the images sit in class subfolders; a DataError where Keras would fail or mislead."""
    if not image_paths:
        raise DataError(
            f"No images in folder {folder}; put {'/'.join(IMAGE_EXTENSIONS)} files in it, "
            "or in one subfolder per class."
        )
    top_level = [path for path in image_paths if os.path.dirname(path) == os.path.normpath(folder)]
    has_class_folders = len(top_level) < len(image_paths)
    if has_class_folders and top_level:
        # Keras would infer labels from the subfolders and silently skip these.
        raise DataError(
            f"{folder} has {len(top_level)} images beside its class subfolders (e.g. {top_level[0]}); "
            "move them into a class subfolder, or put all images in subfolders or none."
        )
    if not validation_fraction:
        raise DataError(
            "An image folder has no test set, so its test set is the validation set: set validation_fraction "
            f"above 0 (e.g. 0.1) for {folder}."
        )
    if int(validation_fraction * len(image_paths)) == 0:
        # Keras would fail with "No training images found", which misleads.
        raise DataError(
            f"{folder} has {len(image_paths)} images, too few to hold out validation_fraction="
            f"{validation_fraction} of them: raise validation_fraction or add images."
        )
    return has_class_folders


def _image_paths(folder):
    """Image files under `folder`, in Keras's order (sorted walk), by extension."""
    paths = []
    for root, directories, files in os.walk(folder):
        directories.sort()
        paths.extend(os.path.join(os.path.normpath(root), name) for name in sorted(files)
                     if name.lower().endswith(IMAGE_EXTENSIONS))
    return paths


def _image_shape(path):
    import tensorflow as tf

    try:
        image = tf.io.decode_image(tf.io.read_file(path), expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as error:
        raise DataError(
            f"Cannot read {path} as an image ({_first_line(error)}); remove or replace the file."
        ) from error
    return tuple(image.shape)


def _folder_examples(dataset, has_labels):
    import tensorflow as tf

    if has_labels:
        to_example = lambda image, label: {"x": image / 255.0, "label": tf.cast(label, tf.int64)}  # noqa: E731
    else:
        to_example = lambda image: {"x": image / 255.0}  # noqa: E731
    return dataset.map(to_example, num_parallel_calls=tf.data.AUTOTUNE)


# Pipelines and binarization --------------------------------------------------------------


def _batches(examples, batch_size, conditions=None):
    """The inputs of example dicts (with conditions: dicts of `x` and them), batched and prefetched."""
    import tensorflow as tf

    if conditions:
        to_inputs = lambda example: {"x": example["x"], **example["condition"]}  # noqa: E731
    else:
        to_inputs = lambda example: example["x"]  # noqa: E731
    inputs = examples.map(to_inputs, num_parallel_calls=tf.data.AUTOTUNE)
    return inputs.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _fixed_binarization(examples, seed):
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


def _resampled_every_epoch(batches, seed):
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


def _check_unit_interval(value_range, name, binarize):
    low, high = value_range
    if low < 0 or high > 1:
        raise DataError(
            f"binarize={binarize!r} needs values in [0, 1], but {name} has values in [{low:g}, {high:g}]: "
            "rescale the data to [0, 1] (uint8 images are divided by 255 for you) or set binarize=None."
        )


def _checked_count(examples, role, name, fix):
    """The number of examples in a split; a DataError if there are none."""
    count = int(examples.cardinality())
    if count < 0:  # unknown to tf.data: count by reading
        count = int(examples.reduce(0, lambda count, _: count + 1))
    if count == 0:
        raise DataError(f"{name} has no {role} examples: {fix}.")
    return count


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


def _first_line(error):
    lines = str(error).strip().splitlines()
    return lines[0].rstrip(".") if lines else type(error).__name__
