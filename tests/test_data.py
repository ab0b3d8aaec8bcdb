import os
import socket
import time

import keras
import numpy as np
import pytest
import tensorflow_datasets as tfds

from keras_vae import datasets as data

# Loading, parsing and the command line are the same code on every backend (the models
# they build are tested per backend elsewhere): one backend runs them.
pytestmark = pytest.mark.backend_independent


class KerasVaeTestImages(tfds.core.GeneratorBasedBuilder):
    """A real (prepared, sliceable) TFDS dataset of 30 + 10 float images in [-1, 1]."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Tensor(shape=(4, 3, 1), dtype=np.float32),
                    "label": tfds.features.ClassLabel(num_classes=3),
                }
            ),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(30), "test": self._generate_examples(10)}

    def _generate_examples(self, count):
        images = np.random.default_rng(count).uniform(-1, 1, (count, 4, 3, 1)).astype(np.float32)
        for index, image in enumerate(images):
            yield index, {"image": image, "label": index % 3}


def _no_download(*args, **kwargs):
    raise AssertionError("a test tried to download a TFDS dataset")


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    # No test may start a TFDS download, even on a machine with network (offline,
    # TFDS retries for minutes). mock_data replaces this with its own no-op
    # inside its context; the module-scoped test_images_dir is built before it.
    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", _no_download)


@pytest.fixture
def mock_tfds():
    # mock_data makes download_and_prepare a no-op (and is_prepared False), so
    # load takes its download path without downloading.
    with tfds.testing.mock_data(num_examples=40):
        yield


@pytest.fixture(scope="module")
def test_images_dir(tmp_path_factory):
    data_dir = str(tmp_path_factory.mktemp("tfds"))
    KerasVaeTestImages(data_dir=data_dir).download_and_prepare()
    return data_dir


def _tfds_split(split, data_dir):
    """A whole split of KerasVaeTestImages, read by TFDS itself, in its order."""
    dataset = tfds.load("keras_vae_test_images", split=split, data_dir=data_dir, batch_size=100)
    return next(iter(tfds.as_numpy(dataset)))


def _array(batches):
    return np.concatenate(list(batches.as_numpy_iterator()))


def _sorted_rows(examples):
    """Examples as rows in lexicographic order: compares data sets whatever their order."""
    rows = examples.reshape(len(examples), -1)
    return rows[np.lexsort(rows.T[::-1])]


def _save_npz(tmp_path, **arrays):
    path = str(tmp_path / "arrays.npz")
    np.savez(path, **arrays)
    return path


def _save_images(folder, images):
    os.makedirs(folder, exist_ok=True)
    for index, image in enumerate(images):
        keras.utils.save_img(os.path.join(folder, f"{index}.png"), image, scale=False)


# TFDS --------------------------------------------------------------------------------------


def test_tfds_images_are_scaled_to_the_unit_interval_with_labels_aside(mock_tfds):
    dataset, shape = data.image_dataset("mnist", "train", batch_size=16)
    images, labels = data.labelled_arrays("mnist", "test")
    batches = list(dataset.as_numpy_iterator())
    assert shape == (28, 28, 1) and [len(b) for b in batches] == [16, 16, 8]
    assert all(b.dtype == np.float32 and 0.0 <= b.min() and b.max() <= 1.0 for b in batches)
    assert max(b.max() for b in batches) > 0.5  # 0..255 pixels were divided by 255, not clipped
    assert images.shape == (40, 28, 28, 1) and images.max() <= 1.0 and labels.shape == (40,)


def test_load_tfds_gives_unit_interval_batches_and_a_labelled_probe(mock_tfds):
    datasets = data.load("mnist", batch_size=16)
    train = _array(datasets.train)
    assert datasets.input_shape == (28, 28, 1) and datasets.name == "mnist"
    assert train.shape == (datasets.num_train, 28, 28, 1) and train.dtype == np.float32
    assert 0.0 <= train.min() and 0.5 < train.max() <= 1.0 and datasets.value_range == (0.0, 1.0)
    assert _array(datasets.validation).shape[1:] == _array(datasets.test).shape[1:] == (28, 28, 1)
    images, labels = datasets.probe(10)
    assert images.shape == (10, 28, 28, 1) and labels.shape == (10,) and labels.dtype == np.int64
    assert set(labels) <= set(range(10))
    np.testing.assert_array_equal(images, _array(datasets.test)[:10])
    assert data.load("mnist", validation_fraction=0).validation is None


def test_a_tfds_split_that_fits_in_memory_is_decoded_once_and_fully_shuffled(monkeypatch):
    if not tfds.builder("mnist").is_prepared():
        pytest.skip("MNIST is not prepared under TFDS_DATA_DIR, and this test must not download it")
    from keras_vae.datasets import tfds as tfds_data

    builder = tfds_data.prepared_builder("mnist")
    assert tfds_data._fits_in_memory(builder, "train[10%:]")  # 54,000 images, 169 MB as float32
    datasets = data.load("mnist", batch_size=6000, test_split="test[:10]")
    first, second = (next(iter(datasets.train)).numpy() for _ in range(2))
    assert first.shape == (6000, 28, 28, 1) and not np.array_equal(first, second)  # reshuffled every epoch
    monkeypatch.setattr(tfds_data, "IN_MEMORY_BYTES", 10**6)
    assert not tfds_data._fits_in_memory(builder, "train[10%:]")


def test_binarized_mnist_keeps_its_zeros_and_ones():
    with tfds.testing.mock_data(num_examples=20, max_value=2):  # pixels in {0, 1}
        datasets = data.load("binarized_mnist", batch_size=20)
        train = _array(datasets.train)
        images, labels = datasets.probe(5)
    assert set(np.unique(train)) == {0.0, 1.0}  # not divided by 255
    assert images.shape == (5, 28, 28, 1) and labels is None


def test_tfds_validation_is_the_head_of_train_and_the_sizes_add_up(test_images_dir):
    datasets = data.load("keras_vae_test_images", batch_size=8, validation_fraction=0.2, data_dir=test_images_dir)
    train, validation, test = _array(datasets.train), _array(datasets.validation), _array(datasets.test)
    whole_train = _tfds_split("train", test_images_dir)["image"]
    assert datasets.num_train == len(train) == 24 and len(validation) == 6 and len(test) == 10
    np.testing.assert_array_equal(_sorted_rows(np.concatenate([train, validation])), _sorted_rows(whole_train))
    # Float images are used as they are, and their range is measured.
    everything = np.concatenate([whole_train, test])
    assert datasets.value_range == pytest.approx((everything.min(), everything.max())) and everything.min() < 0
    images, labels = datasets.probe(100)  # more than there are: all 10
    expected = _tfds_split("test", test_images_dir)
    np.testing.assert_array_equal(images, expected["image"])
    np.testing.assert_array_equal(labels, expected["label"])


# NumPy files -------------------------------------------------------------------------------


def test_npy_uint8_is_divided_by_255_and_split_with_the_seed(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (50, 4, 3), dtype=np.uint8)
    path = str(tmp_path / "digits.npy")
    np.save(path, images)
    datasets = data.load(path, batch_size=16, validation_fraction=0.2, seed=1)
    train, validation = _array(datasets.train), _array(datasets.validation)
    assert datasets.name == "digits" and datasets.input_shape == (4, 3) and datasets.num_train == len(train) == 40
    assert len(validation) == 10
    train_and_validation = np.concatenate([train, validation])
    np.testing.assert_allclose(_sorted_rows(train_and_validation), _sorted_rows(images / 255.0), rtol=1e-6)
    np.testing.assert_array_equal(_array(datasets.test), validation)  # no test array: test is validation
    assert datasets.value_range == pytest.approx((images.min() / 255, images.max() / 255))
    assert datasets.probe(3)[1] is None

    again = data.load(path, validation_fraction=0.2, seed=1)
    other_seed = data.load(path, validation_fraction=0.2, seed=2)
    np.testing.assert_array_equal(_array(again.validation), validation)
    assert not np.array_equal(_sorted_rows(_array(other_seed.validation)), _sorted_rows(validation))
    # Reshuffled every epoch, the same way for the same seed.
    assert not np.array_equal(_array(datasets.train), train)
    np.testing.assert_array_equal(_array(again.train), train)


def test_npz_with_x_and_y_train_and_test_keeps_labels_and_float_values(tmp_path):
    rng = np.random.default_rng(0)
    x_train, x_test = rng.normal(size=(40, 6)).astype(np.float32), rng.normal(size=(12, 6)).astype(np.float32)
    y_train, y_test = rng.integers(0, 4, 40), rng.integers(0, 4, 12)
    path = _save_npz(tmp_path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    datasets = data.load(path, batch_size=5, validation_fraction=0.25)
    np.testing.assert_array_equal(_array(datasets.test), x_test)  # float values as they are, in order
    train, validation = _array(datasets.train), _array(datasets.validation)
    assert datasets.num_train == len(train) == 30 and len(validation) == 10
    np.testing.assert_array_equal(_sorted_rows(np.concatenate([train, validation])), _sorted_rows(x_train))
    images, labels = datasets.probe(7)
    np.testing.assert_array_equal(images, x_test[:7])
    np.testing.assert_array_equal(labels, y_test[:7])
    expected_range = (min(x_train.min(), x_test.min()), max(x_train.max(), x_test.max()))
    assert datasets.value_range == pytest.approx(expected_range)


@pytest.mark.parametrize("layout", ["train_and_test", "single_array"])
def test_npz_layouts(tmp_path, layout):
    train, test = np.full((20, 3), 0.25, np.float32), np.full((8, 3), 0.75, np.float32)
    if layout == "train_and_test":
        path = _save_npz(tmp_path, train=train, test=test)
    else:
        path = _save_npz(tmp_path, pixels=train)
    datasets = data.load(path, validation_fraction=0.1)
    assert datasets.num_train == 18 and datasets.input_shape == (3,)
    np.testing.assert_array_equal(_array(datasets.test), test if layout == "train_and_test" else train[:2])


# Image folders -----------------------------------------------------------------------------


def test_image_folder_with_class_subfolders_gives_grayscale_labelled_images(tmp_path):
    dark = [np.full((6, 5, 1), 10 * i, np.uint8) for i in range(5)]
    light = [np.full((6, 5, 1), 200 + 10 * i, np.uint8) for i in range(5)]
    _save_images(tmp_path / "images" / "dark", dark)
    _save_images(tmp_path / "images" / "light", light)
    datasets = data.load(str(tmp_path / "images"), batch_size=4, validation_fraction=0.2)
    train = _array(datasets.train)
    assert datasets.input_shape == (6, 5, 1) and datasets.name == "images"
    assert datasets.num_train == len(train) == 8 and len(_array(datasets.test)) == 2
    pixel_values = np.concatenate([train, _array(datasets.test)])[:, 0, 0, 0]
    expected = np.array([10 * i for i in range(5)] + [200 + 10 * i for i in range(5)]) / 255
    np.testing.assert_allclose(np.sort(pixel_values), expected, rtol=1e-6)
    images, labels = datasets.probe(10)
    # Labels follow the sorted subfolders: dark 0, light 1.
    np.testing.assert_array_equal(labels, (images[:, 0, 0, 0] > 0.5).astype(np.int64))


def test_flat_image_folder_of_rgb_images_has_no_labels(tmp_path):
    images = [np.random.default_rng(i).integers(0, 256, (3, 2, 3), dtype=np.uint8) for i in range(4)]
    _save_images(tmp_path / "photos", images)
    datasets = data.load(str(tmp_path / "photos"), validation_fraction=0.25)
    assert datasets.input_shape == (3, 2, 3) and datasets.num_train == 3
    probe_images, labels = datasets.probe(4)
    assert labels is None and probe_images.shape == (1, 3, 2, 3) and probe_images.max() <= 1.0


# Binarization ------------------------------------------------------------------------------


def test_dynamic_binarization_draws_anew_every_epoch_around_the_probabilities(tmp_path):
    probabilities = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    path = str(tmp_path / "p.npy")
    np.save(path, np.broadcast_to(probabilities, (64, 8, 8)))  # every example alike: order cannot matter
    datasets = data.load(path, batch_size=16, validation_fraction=0.25, binarize="dynamic")
    first_epoch, second_epoch = _array(datasets.train), _array(datasets.train)
    assert set(np.unique(first_epoch)) == {0.0, 1.0} and datasets.value_range == (0.0, 1.0)
    assert not np.array_equal(_sorted_rows(first_epoch), _sorted_rows(second_epoch))
    both_epochs = np.concatenate([first_epoch, second_epoch])
    assert abs(both_epochs.mean() - probabilities.mean()) < 0.03
    assert np.abs(both_epochs.mean(axis=0) - probabilities).max() < 0.25  # 96 draws per pixel
    # Evaluation data is binarized once, so evaluations compare.
    np.testing.assert_array_equal(_array(datasets.test), _array(datasets.test))
    assert set(np.unique(_array(datasets.test))) == {0.0, 1.0}


def test_fixed_binarization_is_the_same_every_epoch_and_for_the_same_seed(tmp_path):
    path = str(tmp_path / "p.npy")
    np.save(path, np.random.default_rng(0).uniform(size=(40, 5, 5)).astype(np.float32))
    datasets = data.load(path, batch_size=8, validation_fraction=0.25, binarize="fixed", seed=3)
    first_epoch, second_epoch = _array(datasets.train), _array(datasets.train)
    assert set(np.unique(first_epoch)) == {0.0, 1.0}
    assert not np.array_equal(first_epoch, second_epoch)  # reshuffled...
    np.testing.assert_array_equal(_sorted_rows(first_epoch), _sorted_rows(second_epoch))  # ...but the same draws
    same_seed = data.load(path, validation_fraction=0.25, binarize="fixed", seed=3)
    other_seed = data.load(path, validation_fraction=0.25, binarize="fixed", seed=4)
    np.testing.assert_array_equal(_sorted_rows(_array(same_seed.train)), _sorted_rows(first_epoch))
    np.testing.assert_array_equal(same_seed.probe(10)[0], datasets.probe(10)[0])
    assert not np.array_equal(_sorted_rows(_array(other_seed.train)), _sorted_rows(first_epoch))


# Errors ------------------------------------------------------------------------------------


def _one_line_error(source, *words, **load_kwargs):
    with pytest.raises(data.DataError) as error:
        data.load(source, **load_kwargs)
    message = str(error.value)
    assert "\n" not in message, message
    for word in words:
        assert word in message, message
    return message


def _with_nan_and_inf():
    return np.array([[np.nan, 1.0], [np.inf, np.nan]])


def _npy(tmp_path, array, name="array.npy"):
    path = str(tmp_path / name)
    np.save(path, array)
    return path


def test_unknown_dataset_name_suggests_the_close_match():
    _one_line_error("mnsit", "'mnsit'", "Did you mean 'mnist'?", ".npy/.npz")


def test_tfds_dataset_without_images_is_refused(mock_tfds):
    _one_line_error("imdb_reviews", "'image'", "choose an image dataset")


def test_unknown_test_split_lists_the_splits(test_images_dir):
    words = ["'tst'", "choose one of its splits: train, test"]
    _one_line_error("keras_vae_test_images", *words, test_split="tst", data_dir=test_images_dir)


def test_missing_tfds_dataset_fails_fast_offline(tmp_path):
    start = time.perf_counter()
    words = ["'fashion_mnist'", "not prepared", str(tmp_path), "TFDS_DATA_DIR", "internet"]
    message = _one_line_error("fashion_mnist", *words, data_dir=str(tmp_path), download=False)
    assert time.perf_counter() - start < 10, message
    with pytest.raises(data.DataError, match="not prepared"):
        data.image_dataset("fashion_mnist", "train", data_dir=str(tmp_path), download=False)
    with pytest.raises(data.DataError, match="not prepared"):
        data.labelled_arrays("fashion_mnist", "test", data_dir=str(tmp_path), download=False)


def test_network_check_is_bounded_even_when_the_connection_hangs(tmp_path, monkeypatch):
    # Whether a dataset is prepared is read from the data dir (is_prepared), not
    # from the network: nothing may connect, even where a connection would hang.
    def hanging_connection(*args, **kwargs):  # like a DNS lookup that never answers
        time.sleep(30)
        raise OSError("timed out")

    monkeypatch.setattr(socket, "create_connection", hanging_connection)
    monkeypatch.setattr(socket, "getaddrinfo", hanging_connection)
    start = time.perf_counter()
    _one_line_error("mnist", "not prepared", data_dir=str(tmp_path), download=False)
    assert time.perf_counter() - start < 10


def test_a_failed_download_is_a_one_line_error(tmp_path, monkeypatch):
    def offline_download(*args, **kwargs):  # what requests raises after TFDS's retries, offline
        raise OSError("HTTPSConnectionPool(host='storage.googleapis.com', port=443): Max retries exceeded\nmore")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", offline_download)
    words = ["could not download", "'fashion_mnist'", "Max retries exceeded", "internet", "TFDS_DATA_DIR"]
    _one_line_error("fashion_mnist", *words, data_dir=str(tmp_path))


@pytest.mark.parametrize(
    "make_source, words",
    [
        (lambda tmp_path: str(tmp_path / "missing.npz"), ["No such file", "missing.npz"]),
        (lambda tmp_path: _npy(tmp_path, np.zeros((0, 4))), ["no examples", "non-empty"]),
        (lambda tmp_path: _npy(tmp_path, np.zeros(5)), ["shape (5,)", "examples first"]),
        (lambda tmp_path: _save_npz(tmp_path, a=np.zeros((3, 2)), b=np.zeros((3, 2))), ["a, b", "x_train/x_test"]),
        (
            lambda tmp_path: _save_npz(tmp_path, x_train=np.zeros((9, 2)), x_test=_with_nan_and_inf()),
            ["x_test", "3 NaN or infinite", "replace or drop"],
        ),
    ],
    ids=["missing_file", "empty_array", "one_dimensional", "unknown_npz_keys", "nan_and_inf"],
)
def test_bad_array_files_are_refused_with_the_fix(tmp_path, make_source, words):
    _one_line_error(make_source(tmp_path), *words)


def test_unsupported_file_type_is_refused(tmp_path):
    (tmp_path / "table.dat").write_text("1,2\n")
    _one_line_error(str(tmp_path / "table.dat"), ".dat", ".npy/.npz/.csv/.h5ad", ".txt/.txt.gz")


def test_arrays_without_test_need_a_validation_set(tmp_path):
    _one_line_error(_npy(tmp_path, np.zeros((10, 2))), "validation_fraction", validation_fraction=0)


def test_binarizing_values_outside_the_unit_interval_is_refused(tmp_path):
    path = _npy(tmp_path, np.linspace(-1, 1, 20, dtype=np.float32).reshape(10, 2))
    _one_line_error(path, "[-1, 1]", "rescale", binarize="dynamic")


def test_bad_image_folders_are_refused_with_the_fix(tmp_path):
    os.makedirs(tmp_path / "empty")
    _one_line_error(str(tmp_path / "empty"), "No images", ".png")
    _save_images(tmp_path / "few", [np.zeros((2, 2, 1), np.uint8)] * 3)
    _one_line_error(str(tmp_path / "few"), "3 images", "raise validation_fraction", validation_fraction=0.1)
    _save_images(tmp_path / "mixed" / "cats", [np.zeros((2, 2, 1), np.uint8)] * 3)
    keras.utils.save_img(str(tmp_path / "mixed" / "stray.png"), np.zeros((2, 2, 1), np.uint8), scale=False)
    _one_line_error(str(tmp_path / "mixed"), "stray.png", "class subfolder")


# Count tables and conditions ------------------------------------------------------------


def test_npz_conditions_are_batched_beside_x_in_step_with_the_examples(tmp_path):
    rng = np.random.default_rng(0)
    batch = rng.integers(0, 3, 40)
    dose = rng.uniform(size=40).astype(np.float32)
    x = np.stack([batch, 10 * dose], axis=1).astype(np.float32)  # each example carries its conditions
    path = _save_npz(tmp_path, x_train=x, batch_train=batch, dose_train=dose)
    datasets = data.load(path, batch_size=8, validation_fraction=0.25, conditions=("batch", "dose"))
    assert datasets.conditions == {"batch": 3, "dose": None}
    seen = 0
    for batches in (datasets.train, datasets.test):
        for inputs in batches.as_numpy_iterator():
            assert sorted(inputs) == ["batch", "dose", "x"] and inputs["batch"].dtype == np.int64
            np.testing.assert_array_equal(inputs["x"][:, 0], inputs["batch"])
            np.testing.assert_allclose(inputs["x"][:, 1], 10 * inputs["dose"], rtol=1e-6)
            seen += len(inputs["x"])
    assert seen == 40
    probe, _ = datasets.probe(5)
    assert sorted(probe) == ["batch", "dose", "x"] and probe["x"].shape == (5, 2)


def test_a_csv_table_reads_features_labels_conditions_and_skips_names(tmp_path):
    path = tmp_path / "counts.csv"
    rows = ["sample,gene_a,gene_b,gene_c,cell_type,batch,age"]
    for i in range(30):
        rows.append(f"s{i},{i},{2 * i},0,{'neuron' if i % 2 else 'glia'},plate{i % 3},{0.5 * i}")
    path.write_text("\n".join(rows) + "\n")
    datasets = data.load(str(path), batch_size=30, validation_fraction=0.2, conditions=("batch", "age"))
    assert datasets.input_shape == (3,) and datasets.is_counts
    assert datasets.conditions == {"batch": 3, "age": None}
    inputs, labels = datasets.probe(6)
    np.testing.assert_array_equal(inputs["x"][:, 1], 2 * inputs["x"][:, 0])  # gene_b = 2 gene_a, row by row
    rows_index = inputs["x"][:, 0].astype(int)
    np.testing.assert_array_equal(labels, rows_index % 2)  # glia=0, neuron=1 (sorted names)
    np.testing.assert_array_equal(inputs["batch"], rows_index % 3)
    np.testing.assert_allclose(inputs["age"], 0.5 * rows_index)


@pytest.mark.parametrize(
    "text, words",
    [
        (b"", ["no data rows"]),
        (b"a,b\n", ["no data rows"]),
        (b"a,b\n1,2\n3\n", ["line 3", "fields"]),
        (b"name,kind\nx,y\n", ["no numeric columns"]),
        (b"a,b\n1,2\n3,\n", ["x_train", "1 NaN or infinite"]),
        (b"a,name\n1,x\n2,\xff\n", ["Cannot read", "UTF-8"]),
    ],
    ids=["empty", "header only", "ragged", "no numbers", "empty cell", "not utf-8"],
)
def test_malformed_tables_are_one_line_errors(tmp_path, text, words):
    path = tmp_path / "table.csv"
    path.write_bytes(text)
    message = _one_line_error(str(path), *words)
    assert str(path) in message


def test_a_table_without_the_condition_column_says_so(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text("a,b\n1,2\n3,4\n5,6\n7,8\n")
    _one_line_error(str(path), "no column 'batch'", conditions=("batch",))


def test_conditions_need_an_array_or_table_source(tmp_path):
    _save_images(tmp_path / "images", np.zeros((4, 8, 8, 1), np.uint8))
    _one_line_error(str(tmp_path / "images"), "conditions", "np.savez", conditions=("batch",))


def test_the_synthetic_rnaseq_source_is_counts_with_batch_and_cell_type_conditions():
    datasets = data.load("synthetic-rnaseq", batch_size=256, conditions=("batch",))
    assert datasets.name == "synthetic-rnaseq" and datasets.is_counts and datasets.conditions == {"batch": 3}
    inputs, labels = datasets.probe(100)
    assert inputs["x"].shape == (100, 1000) and labels.shape == (100,)
    assert datasets.num_train == 1440  # 80% of 2000 for training, 10% of that held out
    assert not data.load("synthetic-rnaseq", batch_size=256).conditions


def test_an_anndata_file_reads_x_and_obs_columns(tmp_path):
    import anndata  # the [anndata] extra, which the dev extra includes
    import pandas

    rng = np.random.default_rng(0)
    counts = rng.poisson(5.0, (24, 7)).astype(np.float32)
    obs = {"cell_type": np.array(["b", "a"] * 12), "batch": np.arange(24) % 2, "age": rng.uniform(size=24)}
    table = anndata.AnnData(X=counts, obs=pandas.DataFrame(obs, index=[f"s{i}" for i in range(24)]))
    path = str(tmp_path / "counts.h5ad")
    table.write_h5ad(path)
    datasets = data.load(path, batch_size=24, validation_fraction=0.25, conditions=("batch", "age"))
    assert datasets.input_shape == (7,) and datasets.is_counts and datasets.conditions == {"batch": 2, "age": None}
    inputs, labels = datasets.probe(6)
    rows = [int(np.flatnonzero((counts == row).all(axis=1))[0]) for row in inputs["x"]]
    np.testing.assert_array_equal(inputs["batch"], np.array(rows) % 2)
    np.testing.assert_array_equal(labels, [1 if obs["cell_type"][row] == "b" else 0 for row in rows])
