import numpy as np
import pytest

from keras_vae.datasets import synthetic
from keras_vae.evaluation import downstream

# The probes' logistic regression is a Keras model, but what they compute does not depend on the backend.
pytestmark = pytest.mark.backend_independent


def gaussian_blobs(num_examples=1000, dim=8, num_classes=4, separation=6.0, seed=0):
    """Unit-variance blobs around centres `separation` apart in each coordinate: linearly separable."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, num_examples)
    centres = rng.normal(0.0, separation, (num_classes, dim))
    return (centres[labels] + rng.normal(size=(num_examples, dim))).astype("float32"), labels


def test_pca_recovers_the_dominant_direction():
    rng = np.random.default_rng(0)
    direction = np.array([3.0, -4.0, 0.0, 0.0, 0.0]) / 5.0
    train = 10.0 * rng.normal(size=(500, 1)) * direction + rng.normal(size=(500, 5)) + 7.0
    test = rng.normal(size=(50, 5))
    train_projections, test_projections = downstream.pca(train, test, dim=3)
    assert train_projections.shape == (500, 3) and test_projections.shape == (50, 3)
    variances = train_projections.var(axis=0)
    assert np.all(np.diff(variances) <= 0) and variances[0] > 50
    np.testing.assert_allclose(train_projections.mean(axis=0), 0.0, atol=1e-9)
    # The first component is ±direction, signed so that its largest loading (-4/5) becomes positive.
    recovered = np.linalg.lstsq(train - train.mean(axis=0), train_projections[:, 0], rcond=None)[0]
    assert np.dot(recovered, -direction) > 0.99


@pytest.mark.parametrize("shape", [(60, 8), (8, 60)], ids=["tall", "wide"])
def test_pca_matches_the_singular_value_decomposition(shape):
    data = np.random.default_rng(0).normal(size=shape) * np.linspace(1.0, 3.0, shape[1])
    centred = data - data.mean(axis=0)
    left, singular_values, _ = np.linalg.svd(centred, full_matrices=False)
    expected = left[:, :3] * singular_values[:3]
    projections = downstream.pca(data, dim=3)
    np.testing.assert_allclose(np.abs(projections), np.abs(expected), atol=1e-8)


def test_pca_without_test_returns_only_the_training_projections():
    train, _ = gaussian_blobs(100, dim=6)
    projections = downstream.pca(train, dim=2)
    assert isinstance(projections, np.ndarray) and projections.shape == (100, 2)
    assert projections.dtype == np.float32


@pytest.mark.parametrize("dim", [0, 7, 1.5])
def test_pca_refuses_impossible_dimensions(dim):
    with pytest.raises(ValueError, match="dim"):
        downstream.pca(np.ones((20, 6)), dim=dim)


def test_classifier_is_near_perfect_on_separable_blobs():
    features, labels = gaussian_blobs(2000, dim=32, num_classes=5)
    accuracy = downstream.classification_accuracy(features[:1600], labels[:1600], features[1600:], labels[1600:])
    assert isinstance(accuracy, float) and accuracy > 0.98


def test_classifier_is_near_chance_on_random_labels():
    features, _ = gaussian_blobs(1000, dim=8)
    labels = np.random.default_rng(1).integers(0, 4, 1000)
    accuracy = downstream.classification_accuracy(features[:800], labels[:800], features[800:], labels[800:], epochs=30)
    # 200 test examples of 4 equally likely classes: chance is 0.25 ± 0.03.
    assert abs(accuracy - 0.25) < 0.1


def test_classifier_refuses_mismatched_labels():
    features, labels = gaussian_blobs(100)
    with pytest.raises(ValueError, match="train_labels"):
        downstream.classification_accuracy(features, labels[:50], features, labels)
    with pytest.raises(ValueError, match="test_labels"):
        downstream.classification_accuracy(features, labels, features, labels - 1)


def test_chance_accuracy_is_the_majority_share():
    train_labels = np.array([0, 0, 1, 1, 1, 2])
    assert downstream.chance_accuracy(train_labels, np.array([1, 0, 1, 2])) == 0.5
    # Ties go to the smallest class.
    assert downstream.chance_accuracy(np.array([2, 2, 1, 1]), np.array([1, 1, 1, 2])) == 0.75


def test_report_on_a_latent_space_that_knows_the_cell_type_but_not_the_batch():
    rnaseq = synthetic.bulk_rnaseq(num_samples=400, num_genes=100, num_cell_types=4, num_batches=2, seed=0)
    arrays = synthetic.to_arrays(rnaseq, test_fraction=0.25)
    # One latent axis per cell type, 6 noise standard deviations from the others.
    rng = np.random.default_rng(0)
    train_latent = 6.0 * np.eye(4)[arrays["y_train"]] + rng.normal(size=(300, 4))
    test_latent = 6.0 * np.eye(4)[arrays["y_test"]] + rng.normal(size=(100, 4))
    report = downstream.latent_space_report(
        train_latent,
        arrays["y_train"],
        test_latent,
        arrays["y_test"],
        # Inputs of any shape are flattened for the PCA baseline.
        arrays["x_train"].reshape(300, 10, 10),
        arrays["x_test"].reshape(100, 10, 10),
        train_batches=arrays["batch_train"],
        test_batches=arrays["batch_test"],
        epochs=50,
    )
    assert sorted(report) == [
        "batch_accuracy",
        "batch_chance_accuracy",
        "batch_mixing_ceiling",
        "batch_mixing_entropy",
        "batch_silhouette",
        "chance_accuracy",
        "label_silhouette",
        "latent_accuracy",
        "pca_accuracy",
        "pca_label_silhouette",
    ]
    assert all(isinstance(value, float) and -1.0 <= value <= 1.0 for value in report.values())
    assert report["latent_accuracy"] > 0.95 and report["pca_accuracy"] > report["chance_accuracy"] + 0.2
    # The latent space holds no batch information: batch prediction is near chance (about 1/2),
    # the batches overlap and mix in every neighbourhood; the cell types form clusters.
    assert abs(report["batch_accuracy"] - report["batch_chance_accuracy"]) < 0.15
    assert report["label_silhouette"] > 0.5 and abs(report["batch_silhouette"]) < 0.1
    assert report["batch_mixing_entropy"] > 0.85 * report["batch_mixing_ceiling"]


def test_report_needs_both_batch_arrays_or_neither():
    latent, labels = gaussian_blobs(100, dim=4)
    with pytest.raises(ValueError, match="test_batches"):
        downstream.latent_space_report(latent, labels, latent, labels, latent, latent, train_batches=labels)


def reference_silhouette(features, labels):
    """The silhouette width by its definition, one example at a time."""
    distances = np.sqrt(((features[:, None] - features[None]) ** 2).sum(-1))
    widths = []
    for i, label in enumerate(labels):
        own = (labels == label) & (np.arange(len(labels)) != i)
        if not own.any():
            widths.append(0.0)
            continue
        a = distances[i, own].mean()
        b = min(distances[i, labels == other].mean() for other in np.unique(labels) if other != label)
        widths.append((b - a) / max(a, b))
    return np.mean(widths)


def test_silhouette_matches_its_definition_and_separates_blobs_from_noise():
    rng = np.random.default_rng(3)
    features, labels = rng.normal(size=(50, 3)), rng.integers(0, 3, 50)
    labels[0] = 3  # a class of one example: width 0
    np.testing.assert_allclose(downstream.silhouette(features, labels, chunk=7), reference_silhouette(features, labels))
    blobs, blob_labels = gaussian_blobs(200, dim=4)
    assert downstream.silhouette(blobs, blob_labels) > 0.5
    assert abs(downstream.silhouette(blobs, rng.integers(0, 4, 200))) < 0.1
    with pytest.raises(ValueError, match="two classes"):
        downstream.silhouette(blobs, np.zeros(200, int))


def test_batch_mixing_entropy_is_one_when_mixed_and_zero_when_apart():
    rng = np.random.default_rng(4)
    mixed = rng.normal(size=(300, 2))
    batches = np.arange(300) % 3
    assert downstream.batch_mixing_entropy(mixed, batches, k=30, chunk=64) > 0.9
    apart = mixed + 100.0 * batches[:, None]
    assert downstream.batch_mixing_entropy(apart, batches, k=30) == pytest.approx(0.0)
    assert downstream.proportion_entropy(batches) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="`k`"):
        downstream.batch_mixing_entropy(mixed, batches, k=300)
