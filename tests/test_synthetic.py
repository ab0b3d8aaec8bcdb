import numpy as np
import pytest

from keras_vae import datasets as data
from keras_vae.datasets import synthetic

pytestmark = pytest.mark.backend_independent
SMALL = dict(num_samples=600, num_genes=200, num_cell_types=4, num_batches=3, median_library_size=1e5)


@pytest.fixture(scope="module")
def rnaseq():
    return synthetic.bulk_rnaseq(**SMALL, seed=0)


def test_shapes_and_dtypes(rnaseq):
    assert rnaseq.counts.shape == (600, 200) and rnaseq.counts.dtype == np.int64
    for labels in (rnaseq.cell_type, rnaseq.batch):
        assert labels.shape == (600,) and labels.dtype == np.int64
    assert rnaseq.library_size.shape == (600,)
    assert rnaseq.cell_type_profiles.shape == (4, 200)
    np.testing.assert_allclose(rnaseq.cell_type_profiles.sum(axis=1), 1.0)
    assert rnaseq.program_loadings.shape == (4, 10) and rnaseq.program_weights.shape == (10, 200)
    assert (rnaseq.program_weights >= 0).all()
    assert rnaseq.batch_log_effects.shape == (3, 200)
    assert rnaseq.inverse_dispersion.shape == (200,) and (rnaseq.inverse_dispersion > 0).all()


def test_counts_are_nonnegative_integers_with_every_label_present(rnaseq):
    assert rnaseq.counts.min() >= 0 and rnaseq.counts.max() > 0
    # Balanced: every cell type and batch present, sizes within one of each other.
    assert np.ptp(np.bincount(rnaseq.cell_type, minlength=4)) <= 1 and rnaseq.cell_type.max() == 3
    assert np.ptp(np.bincount(rnaseq.batch, minlength=3)) <= 1 and rnaseq.batch.max() == 2


def test_the_same_seed_gives_the_same_data_and_another_seed_other_data(rnaseq):
    again = synthetic.bulk_rnaseq(**SMALL, seed=0)
    other = synthetic.bulk_rnaseq(**SMALL, seed=1)
    for field in ("counts", "cell_type", "batch", "library_size", "cell_type_profiles", "inverse_dispersion"):
        np.testing.assert_array_equal(getattr(again, field), getattr(rnaseq, field))
    assert not np.array_equal(other.counts, rnaseq.counts)
    assert not np.array_equal(other.cell_type_profiles, rnaseq.cell_type_profiles)


def test_library_sizes_match_the_requested_median(rnaseq):
    # 600 log-normal draws of scale 0.3: the sample median is within 5% of the median.
    assert abs(np.median(rnaseq.library_size) / 1e5 - 1) < 0.05
    assert abs(np.median(rnaseq.counts.sum(axis=1)) / 1e5 - 1) < 0.1


def mean_log_expression(rnaseq, mask):
    normalized = rnaseq.counts[mask] / rnaseq.counts[mask].sum(axis=1, keepdims=True)
    return np.log(normalized.mean(axis=0))


def test_batches_shift_expression_at_equal_cell_type(rnaseq):
    same_type = rnaseq.cell_type == 0
    observed = mean_log_expression(rnaseq, same_type & (rnaseq.batch == 1)) - mean_log_expression(
        rnaseq, same_type & (rnaseq.batch == 0)
    )
    true = rnaseq.batch_log_effects[1] - rnaseq.batch_log_effects[0]
    expressed = rnaseq.counts[same_type].mean(axis=0) > 50
    # The shift follows the true per-gene effects (up to a constant from renormalization).
    assert np.corrcoef(observed[expressed], true[expressed])[0, 1] > 0.8
    assert np.std(observed[expressed]) > 0.2

    without = synthetic.bulk_rnaseq(**SMALL, batch_effect=0.0, seed=0)
    observed_without = mean_log_expression(without, same_type & (without.batch == 1)) - mean_log_expression(
        without, same_type & (without.batch == 0)
    )
    assert np.std(observed_without[expressed]) < 0.5 * np.std(observed[expressed])


def test_cell_types_differ_in_expression(rnaseq):
    first, second = (mean_log_expression(rnaseq, rnaseq.cell_type == label) for label in (0, 1))
    true = np.log(rnaseq.cell_type_profiles[1] / rnaseq.cell_type_profiles[0])
    expressed = rnaseq.counts.mean(axis=0) > 50
    assert np.corrcoef((second - first)[expressed], true[expressed])[0, 1] > 0.8


def test_counts_are_overdispersed_within_a_cell_type_and_batch(rnaseq):
    group = rnaseq.counts[(rnaseq.cell_type == 0) & (rnaseq.batch == 0)]
    mean, variance = group.mean(axis=0), group.var(axis=0, ddof=1)
    high = mean > 100
    assert high.sum() > 20
    # Poisson would give variance ≈ mean; NB with θ around 10 gives 1 + μ/θ ≥ 10 times it.
    assert (variance[high] > 2 * mean[high]).all()


def test_dropout_raises_the_fraction_of_zeros(rnaseq):
    dropped = synthetic.bulk_rnaseq(**SMALL, dropout=0.3, seed=0)
    zeros, dropped_zeros = np.mean(rnaseq.counts == 0), np.mean(dropped.counts == 0)
    expected = zeros + 0.3 * (1 - zeros)
    assert abs(dropped_zeros - expected) < 0.02
    assert dropped.dropout == 0.3
    # Dropout only zeroes counts of the same draw.
    kept = dropped.counts > 0
    np.testing.assert_array_equal(dropped.counts[kept], rnaseq.counts[kept])


@pytest.mark.parametrize(
    "arguments, message",
    [
        (dict(num_genes=0), "num_genes"),
        (dict(num_cell_types=2.5), "num_cell_types"),
        (dict(num_programs=True), "num_programs"),
        (dict(num_batches=float("nan")), "num_batches"),
        (dict(num_samples=3, num_cell_types=5), "num_samples"),
        (dict(batch_effect=-0.1), "batch_effect"),
        (dict(within_type_scale=float("nan")), "within_type_scale"),
        (dict(median_library_size=0), "median_library_size"),
        (dict(median_inverse_dispersion=-1), "median_inverse_dispersion"),
        (dict(dropout=1.0), "dropout"),
    ],
)
def test_invalid_arguments_are_refused(arguments, message):
    with pytest.raises(ValueError, match=message):
        synthetic.bulk_rnaseq(**{**SMALL, **arguments})


def test_to_arrays_splits_every_sample_once(rnaseq):
    arrays = synthetic.to_arrays(rnaseq, test_fraction=0.25, seed=0)
    assert sorted(arrays) == [
        "batch_test",
        "batch_train",
        "cell_type_test",
        "cell_type_train",
        "x_test",
        "x_train",
        "y_test",
        "y_train",
    ]
    assert arrays["x_train"].shape == (450, 200) and arrays["x_test"].shape == (150, 200)
    assert arrays["x_train"].dtype == np.float32 and arrays["y_train"].dtype == np.int64
    x = np.concatenate([arrays["x_train"], arrays["x_test"]])
    labels = np.concatenate([arrays["y_train"], arrays["y_test"]])
    order = np.lexsort(x.T)
    expected_order = np.lexsort(rnaseq.counts.T)
    np.testing.assert_array_equal(x[order], rnaseq.counts[expected_order])
    np.testing.assert_array_equal(labels[order], rnaseq.cell_type[expected_order])
    with pytest.raises(ValueError, match="test_fraction"):
        synthetic.to_arrays(rnaseq, test_fraction=1.0)


def test_to_arrays_writes_a_file_the_data_loader_reads(rnaseq, tmp_path):
    path = tmp_path / "bulk.npz"
    np.savez(path, **synthetic.to_arrays(rnaseq))
    datasets = data.load(str(path), batch_size=64, validation_fraction=0.1, conditions=("batch", "cell_type"))
    assert tuple(datasets.input_shape) == (200,)
    assert datasets.is_counts
    assert datasets.conditions == {"batch": 3, "cell_type": 4}
