"""Training data for VAEs: TFDS datasets, NumPy files, image folders, count tables (CSV, AnnData),
text files of sentences or the synthetic RNA-seq benchmark, as tf.data pipelines.

Keras 3 `fit` accepts a `tf.data.Dataset` on TensorFlow, JAX and PyTorch alike.
TensorFlow and TFDS are imported inside the functions, so that importing this
package (for `numpy_batches`) stays cheap on the JAX and PyTorch backends.
Each kind of source has its module (`tfds`, `arrays`, `tables`, `images`,
`text`, `synthetic`); `load` picks one and builds the pipelines.
"""

import dataclasses
import os

import numpy as np

from keras_vae.datasets import synthetic, text
from keras_vae.datasets.arrays import ARRAY_EXTENSIONS, array_splits, read_arrays
from keras_vae.datasets.batching import numpy_batches
from keras_vae.datasets.binarization import check_unit_interval, fixed_binarization, resampled_every_epoch
from keras_vae.datasets.images import IMAGE_EXTENSIONS, load_image_folder
from keras_vae.datasets.splits import DataError, batched_inputs, checked_count
from keras_vae.datasets.synthetic import SYNTHETIC_RNASEQ
from keras_vae.datasets.tables import LABEL_COLUMNS, TABLE_EXTENSIONS, read_table
from keras_vae.datasets.tfds import image_dataset, labelled_arrays, load_tfds
from keras_vae.names import BINARIZATIONS

__all__ = [
    "ARRAY_EXTENSIONS",
    "IMAGE_EXTENSIONS",
    "LABEL_COLUMNS",
    "SYNTHETIC_RNASEQ",
    "TABLE_EXTENSIONS",
    "DataError",
    "Datasets",
    "image_dataset",
    "labelled_arrays",
    "load",
    "numpy_batches",
]


@dataclasses.dataclass(frozen=True)
class Datasets:
    """The train, validation and test pipelines of one data source, and what to know about it.

    Every pipeline yields float32 batches of inputs only (no labels), prefetched;
    with conditions, dicts `{"x": inputs, name: values, ...}` (a `ConditionalVAE`'s inputs).

    Attributes:
        train: `tf.data.Dataset`, reshuffled every epoch (seeded). A text
            source's batches hold sentences of similar length and are trimmed
            to a few widths (`keras_vae.datasets.text.bucketed_batches`).
        validation: `tf.data.Dataset` in a fixed order, or `None` when
            `validation_fraction` was 0. A text source's batches are trimmed
            too (as is `test`); `input_shape` is the widest.
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


def load(
    source,
    batch_size=128,
    validation_fraction=0.1,
    test_split="test",
    binarize=None,
    seed=0,
    data_dir=None,
    conditions=(),
    download=True,
    document_words=None,
):
    """Train, validation and test pipelines for a VAE, from a TFDS name, a file or a folder of images.

    Sources (an existing path wins over a TFDS name of the same spelling):
    - A TFDS dataset with an `"image"` feature (`"mnist"`, `"fashion_mnist"`,
      `"binarized_mnist"`, ...). Validation is the first `validation_fraction`
      of the TFDS train split (`"train[:10%]"`), training the rest
      (`"train[10%:]"`), test is `test_split`. Integer images are scaled to
      [0, 1] (binarized_mnist is stored as 0/1 already); labels come from the
      `"label"` feature. A dataset that is not prepared in `data_dir` is
      downloaded and prepared there first, as `tfds.load` does (unless
      `download=False`).
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
    - `"synthetic-rnaseq"`: `keras_vae.datasets.synthetic.bulk_rnaseq()` (`seed=0`)
      with its train/test split; conditions `batch` and `cell_type`.
    - A text file of sentences, one per line (`.txt`, or gzipped `.txt.gz`),
      for the LSTM VAE: the vocabulary is every word of it (see
      `keras_vae.datasets.text`) and each example the int32 token ids of a sentence,
      padded to the longest sentence of all splits. A file whose name holds
      `train` (Penn Treebank's `ptb.train.txt`) takes its test and validation
      sentences from the files named with `test` and `valid` instead, where
      they exist; otherwise they are split off as for arrays. Each batch is
      cut to the smallest of a few widths that holds its longest sentence,
      and training batches group sentences of similar length
      (`keras_vae.datasets.text.bucketed_batches`): the padding a batch
      carries stays small. With `document_words`, consecutive sentences are
      joined into documents first (`keras_vae.datasets.text.join_documents`).

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
        download: bool, whether a TFDS dataset that is not prepared in
            `data_dir` is downloaded and prepared. With `False` it is a
            `DataError` at once: for machines without internet access, where
            TFDS would retry its download for minutes. Defaults to `True`.
        document_words: `(min_words, max_words)`, for a text file: its
            consecutive sentences joined into documents of that many words,
            each split (file) on its own. Defaults to `None` (sentences).

    Returns:
        A `Datasets`.

    Raises:
        DataError: the source is missing, unknown, empty or malformed, not
            prepared (or failed to download), or cannot be binarized. Its
            message is one line that says how to fix it.
    """
    if not 0 <= validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}.")
    if binarize not in (None, *BINARIZATIONS):
        raise ValueError(f"binarize must be None, 'dynamic' or 'fixed', got {binarize!r}.")
    if seed is None:
        seed = int(np.random.randint(2**31))

    conditions = tuple(conditions)
    source = os.fspath(source)
    if document_words is not None and not (os.path.isfile(source) and text.is_text_file(source)):
        raise DataError(
            f"document_words joins the sentences of a .txt/.txt.gz file into documents, but {source} is not one: "
            "drop document_words, or pass a text file of sentences."
        )
    splits = _load_splits(source, validation_fraction, test_split, seed, data_dir, conditions, download, document_words)
    num_train = checked_count(splits.train, "training", splits.name, "use a source with more examples")
    num_test = checked_count(splits.test, "test", splits.name, "choose another test split")
    num_validation = 0
    if splits.validation is not None:
        num_validation = checked_count(
            splits.validation, "validation", splits.name, "raise validation_fraction, or set it to 0"
        )

    value_range = splits.value_range
    train, validation, test = splits.train, splits.validation, splits.test
    if binarize:
        check_unit_interval(value_range, splits.name, binarize)
        value_range = (0.0, 1.0)
        validation = None if validation is None else fixed_binarization(validation, seed)
        test = fixed_binarization(test, seed)
        if binarize == "fixed":
            train = fixed_binarization(train, seed)

    if splits.vocabulary is not None:  # token ids: batches trimmed to a few widths

        def batches(examples, shuffle):
            # seed + 1: the rows come shuffled with `seed` already.
            rows = examples.map(lambda example: example["x"])
            return text.bucketed_batches(rows, batch_size, shuffle=shuffle, seed=seed + 1)

    else:

        def batches(examples, shuffle):
            return batched_inputs(examples, batch_size, splits.conditions)

    train_batches = batches(train, shuffle=True)
    if binarize == "dynamic":
        train_batches = resampled_every_epoch(train_batches, seed)
    return Datasets(
        train=train_batches,
        validation=None if validation is None else batches(validation, shuffle=False),
        test=batches(test, shuffle=False),
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


def _load_splits(source, validation_fraction, test_split, seed, data_dir, conditions, download, document_words=None):
    extension = os.path.splitext(source)[1].lower()
    if os.path.isfile(source) and text.is_text_file(source) and conditions:
        raise DataError(f"{source} holds sentences, which take no conditions: drop the conditions.")
    if os.path.isfile(source) and text.is_text_file(source):
        return text.load_text_file(source, validation_fraction, seed, document_words)
    if os.path.isfile(source):
        if extension in ARRAY_EXTENSIONS:
            return array_splits(read_arrays(source), source, validation_fraction, seed, conditions)
        if extension in TABLE_EXTENSIONS:
            return array_splits(read_table(source, conditions), source, validation_fraction, seed, conditions)
        raise DataError(
            f"{source}: unsupported file type {extension or '(no extension)'}; "
            "pass a .npy/.npz/.csv/.h5ad file, a .txt/.txt.gz file of sentences, a folder of PNG/JPEG/BMP/GIF images "
            "or a TFDS dataset name."
        )
    if extension in ARRAY_EXTENSIONS + TABLE_EXTENSIONS or text.is_text_file(source):
        raise DataError(f"No such file: {source}; check the path (relative paths start at {os.getcwd()}).")
    if source == SYNTHETIC_RNASEQ and not os.path.exists(source):
        arrays = synthetic.to_arrays(synthetic.bulk_rnaseq())
        return array_splits(arrays, SYNTHETIC_RNASEQ, validation_fraction, seed, conditions)
    if conditions:
        raise DataError(
            f"conditions ({', '.join(conditions)}) are read from .npz/.csv/.h5ad files and {SYNTHETIC_RNASEQ}, "
            f"not from {source}: save the data and its conditions with np.savez, or drop the conditions."
        )
    if os.path.isdir(source):
        return load_image_folder(source, validation_fraction, seed)
    return load_tfds(source, validation_fraction, test_split, seed, data_dir, download)
