"""Judging a latent space by downstream tasks: how well a linear classifier reads labels from it, and
how well it separates cell types while mixing batches (integration metrics).

NumPy in, floats and NumPy arrays out, on every Keras backend; the baselines are PCA and chance.
"""

import keras
import numpy as np


def pca(train, test=None, dim=2):
    """Principal component projections, fitted on `train` only.

    Hand-written because scikit-learn is not a dependency of keras-vae: the
    components are the eigenvectors of the centred data's scatter matrix
    (`np.linalg.eigh`, in float64) when there are no more features than
    examples (about 3 times faster than `np.linalg.svd` of the data for
    1600 × 1000 on a 2-core CPU), and the right singular vectors otherwise. Each
    component's sign is fixed so that its largest loading is positive, so
    results do not depend on the LAPACK build.

    Args:
        train: array `(examples, features)`.
        test: optional array `(examples, features)`, projected with the
            training mean and components.
        dim: int, the number of components, from 1 to
            `min(train examples, features)`. Defaults to `2`.

    Returns:
        The training projections `(examples, dim)`, in order of decreasing
        variance; with `test`, a tuple `(train_projections, test_projections)`.
        Float inputs keep their dtype, others become float64.
    """
    train = _float_matrix(train, "train")
    if int(dim) != dim or not 1 <= dim <= min(train.shape):
        raise ValueError(
            f"`dim` must be an integer from 1 to min(examples, features) = {min(train.shape)}; got {dim!r}."
        )
    dim = int(dim)
    mean = train.mean(axis=0)
    centred = (train - mean).astype(np.float64)
    num_examples, num_features = train.shape
    if num_features <= num_examples:
        _, eigenvectors = np.linalg.eigh(centred.T @ centred)  # eigenvalues in ascending order
        components = eigenvectors[:, ::-1][:, :dim].T
    else:
        components = np.linalg.svd(centred, full_matrices=False)[2][:dim]
    largest = np.abs(components).argmax(axis=1)
    components = components * np.sign(components[np.arange(dim), largest])[:, None]
    components = components.astype(train.dtype)
    train_projections = (train - mean) @ components.T
    if test is None:
        return train_projections
    test = _float_matrix(test, "test")
    if test.shape[1] != train.shape[1]:
        raise ValueError(
            f"`test` has {test.shape[1]} features but `train` {train.shape[1]}; pass arrays of the same features."
        )
    return train_projections, (test - mean) @ components.T


def classification_accuracy(train_features, train_labels, test_features, test_labels, epochs=100, learning_rate=0.1):
    """Held-out accuracy of a multinomial logistic regression.

    The classifier is a `keras.Sequential` of one softmax `Dense` layer on
    features standardized with the training mean and standard deviation,
    trained with Adam on the sparse categorical cross-entropy, one step per
    epoch on the whole training set. The problem is convex and the weights
    start at zero, so no seed is needed, and the fixed number of steps keeps
    the weights from growing without bound on separable data (a mild
    regularization). On a 2-core CPU, 2000 examples of 32 features take
    about a second, most of it tracing and compiling.

    Args:
        train_features: array `(examples, features)`.
        train_labels: integer array `(examples,)`, classes from 0.
        test_features: array `(examples, features)`.
        test_labels: integer array `(examples,)`.
        epochs: int ≥ 1, full-batch Adam steps. Defaults to `100`.
        learning_rate: float. Defaults to `0.1`, enough for standardized
            features to converge in 100 steps.

    Returns:
        A float in [0, 1], the share of test examples classified correctly.
    """
    train_features = _float_matrix(train_features, "train_features")
    test_features = _float_matrix(test_features, "test_features")
    train_labels = _labels(train_labels, len(train_features), "train_labels", "train_features")
    test_labels = _labels(test_labels, len(test_features), "test_labels", "test_features")
    if test_features.shape[1] != train_features.shape[1]:
        raise ValueError(
            f"`test_features` has {test_features.shape[1]} features but `train_features` "
            f"{train_features.shape[1]}; pass features of the same encoder."
        )
    if int(epochs) != epochs or epochs < 1:
        raise ValueError(f"`epochs` must be an integer ≥ 1; got {epochs!r}.")
    mean = train_features.mean(axis=0)
    scale = train_features.std(axis=0)
    scale[scale == 0] = 1.0  # a constant feature stays 0 instead of becoming NaN
    train_features = ((train_features - mean) / scale).astype("float32")
    test_features = ((test_features - mean) / scale).astype("float32")
    num_classes = int(max(train_labels.max(), test_labels.max())) + 1

    classifier = keras.Sequential(
        [
            keras.Input((train_features.shape[1],)),
            keras.layers.Dense(num_classes, activation="softmax", kernel_initializer="zeros"),
        ]
    )
    classifier.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy")

    def full_batches():
        while True:
            yield train_features, train_labels

    # One Keras epoch of `epochs` steps: Keras's per-epoch overhead (tens of
    # milliseconds on TensorFlow) would otherwise cost more than the steps.
    classifier.fit(full_batches(), steps_per_epoch=int(epochs), epochs=1, shuffle=False, verbose=0)
    probabilities = keras.ops.convert_to_numpy(classifier(test_features))
    return float(np.mean(probabilities.argmax(axis=1) == test_labels))


def chance_accuracy(train_labels, test_labels):
    """Accuracy of always predicting the most common training class (the smallest on ties).

    Returns:
        A float in [0, 1]: the share of that class among the test labels.
    """
    train_labels = _labels(train_labels, None, "train_labels", None)
    test_labels = _labels(test_labels, None, "test_labels", None)
    majority_class = np.bincount(train_labels).argmax()
    return float(np.mean(test_labels == majority_class))


def _squared_distances(a, b):
    """Squared Euclidean distances `(len(a), len(b))`, in float64, never below 0."""
    distances = np.square(a).sum(1)[:, None] + np.square(b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.maximum(distances, 0.0)


def silhouette(features, labels, chunk=1024):
    """The mean silhouette width of `labels` in `features` (Euclidean), from -1 to 1.

    For each example, a is its mean distance to the others of its class and b
    the smallest mean distance to another class; its width is (b - a)/max(a, b)
    (0 for an example alone in its class). Near 1: classes form separate
    clusters; near 0: they overlap. Written with NumPy (scikit-learn is not a
    dependency; this matches its `silhouette_score`), in blocks of `chunk` rows.

    Args:
        features: array `(examples, features)`.
        labels: integer array `(examples,)` with at least two classes.
    """
    features = _float_matrix(features, "features").astype(np.float64)
    labels = _labels(labels, len(features), "labels", "features")
    classes, labels = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        raise ValueError("`labels` must hold at least two classes for a silhouette.")
    one_hot = np.eye(len(classes))[labels]
    sizes = one_hot.sum(0)
    widths = np.empty(len(features))
    for start in range(0, len(features), chunk):
        block = np.sqrt(_squared_distances(features[start : start + chunk], features))
        sums = block @ one_hot  # (rows, classes): distance sums to each class
        own = labels[start : start + chunk]
        rows = np.arange(len(own))
        own_size = sizes[own] - 1
        a = np.where(own_size > 0, sums[rows, own] / np.maximum(own_size, 1), 0.0)
        means = sums / sizes
        means[rows, own] = np.inf
        b = means.min(axis=1)
        width = (b - a) / np.maximum(np.maximum(a, b), 1e-300)
        widths[start : start + chunk] = np.where(own_size > 0, width, 0.0)
    return float(widths.mean())


def batch_mixing_entropy(features, batches, k=30, chunk=1024):
    """How evenly the batches mix among each example's `k` nearest neighbours, from 0 to 1.

    The entropy of the batch labels of each example's k nearest neighbours
    (itself excluded, Euclidean), divided by log(number of batches) and averaged
    (Haghverdi et al. 2018's kNN batch-mixing entropy, normalized). 1: every
    neighbourhood holds the batches in equal shares; 0: neighbours come from
    the example's own batch only. With unequal batch sizes, the ceiling is the
    entropy of the batch proportions (reported by `latent_space_report`).

    Args:
        features: array `(examples, features)`.
        batches: integer array `(examples,)` with at least two batches.
        k: int, neighbours per example (at most examples - 1). Defaults to `30`.
    """
    features = _float_matrix(features, "features").astype(np.float64)
    batches = _labels(batches, len(features), "batches", "features")
    classes, batches = np.unique(batches, return_inverse=True)
    if len(classes) < 2:
        raise ValueError("`batches` must hold at least two batches for a mixing entropy.")
    if int(k) != k or not 1 <= k < len(features):
        raise ValueError(f"`k` must be an integer from 1 to examples - 1 = {len(features) - 1}; got {k!r}.")
    entropies = []
    for start in range(0, len(features), chunk):
        distances = _squared_distances(features[start : start + chunk], features)
        distances[np.arange(len(distances)), np.arange(start, start + len(distances))] = np.inf  # not itself
        neighbours = np.argpartition(distances, int(k), axis=1)[:, : int(k)]
        shares = np.stack([(batches[neighbours] == c).mean(1) for c in range(len(classes))], axis=1)
        entropies.append(-(shares * np.log(np.where(shares > 0, shares, 1.0))).sum(1))
    return float(np.concatenate(entropies).mean() / np.log(len(classes)))


def proportion_entropy(batches):
    """The normalized entropy of the batch proportions: `batch_mixing_entropy`'s ceiling."""
    shares = np.bincount(_labels(batches, None, "batches", None)) / len(batches)
    shares = shares[shares > 0]
    return float(-(shares * np.log(shares)).sum() / np.log(len(shares))) if len(shares) > 1 else 0.0


def latent_space_report(
    train_latent,
    train_labels,
    test_latent,
    test_labels,
    train_inputs,
    test_inputs,
    train_batches=None,
    test_batches=None,
    transform=np.log1p,
    epochs=100,
):
    """How well labels (and batches) can be read linearly from a latent space, against baselines.

    A useful latent space classifies the labels about as well as or better
    than the inputs' first principal components of the same dimension, and
    far above chance; a collapsed one sits near chance. With batch labels, it
    also reports how well the latent space predicts the batch: for a model
    conditioned on the batch, near chance is good (batches are mixed), while
    high accuracy means batch effects leak into the latent space.

    Args:
        train_latent: array `(examples, latent_dim)`, e.g. the posterior means
            of the training examples.
        train_labels: integer array `(examples,)`, e.g. cell types.
        test_latent: array `(examples, latent_dim)`.
        test_labels: integer array `(examples,)`.
        train_inputs: array `(examples, ...)`, the inputs that were encoded;
            flattened to one row per example for the PCA baseline.
        test_inputs: array `(examples, ...)`.
        train_batches: optional integer array `(examples,)`, each training
            example's batch (experimental, not minibatch).
        test_batches: optional integer array `(examples,)`; required with
            `train_batches`.
        transform: function applied to the inputs before PCA, or None.
            Defaults to `np.log1p`, for counts (as is usual for RNA-seq); pass
            None for inputs already on a suitable scale, such as images.
        epochs: int, steps of each classifier (see `classification_accuracy`).
            Defaults to `100`.

    Returns:
        A dict of floats: `"latent_accuracy"` (labels from the latent
        space), `"pca_accuracy"` (labels from the PCA baseline),
        `"chance_accuracy"` (majority class), `"label_silhouette"` and
        `"pca_label_silhouette"` (`silhouette` of the test labels in the
        latent space and in the PCA baseline: higher separates them better);
        and with batches, `"batch_accuracy"` (batches from the latent space),
        `"batch_chance_accuracy"`, `"batch_silhouette"` (near 0 or below:
        batches overlap), `"batch_mixing_entropy"` (from 0 to 1, higher is
        better mixed; `batch_mixing_entropy` with k = 30) and
        `"batch_mixing_ceiling"` (its value for perfectly mixed batches).
    """
    if (train_batches is None) != (test_batches is None):
        raise ValueError("Pass both `train_batches` and `test_batches`, or neither.")
    train_latent = _float_matrix(train_latent, "train_latent")
    train_inputs = np.asarray(train_inputs).reshape(len(train_inputs), -1)
    test_inputs = np.asarray(test_inputs).reshape(len(test_inputs), -1)
    if transform is not None:
        train_inputs, test_inputs = transform(train_inputs), transform(test_inputs)
    train_pca, test_pca = pca(train_inputs, test_inputs, dim=train_latent.shape[1])
    report = {
        "latent_accuracy": classification_accuracy(train_latent, train_labels, test_latent, test_labels, epochs),
        "pca_accuracy": classification_accuracy(train_pca, train_labels, test_pca, test_labels, epochs),
        "chance_accuracy": chance_accuracy(train_labels, test_labels),
    }
    if len(np.unique(test_labels)) > 1:
        report["label_silhouette"] = silhouette(test_latent, test_labels)
        report["pca_label_silhouette"] = silhouette(test_pca, test_labels)
    if train_batches is not None:
        report["batch_accuracy"] = classification_accuracy(
            train_latent, train_batches, test_latent, test_batches, epochs
        )
        report["batch_chance_accuracy"] = chance_accuracy(train_batches, test_batches)
        if len(np.unique(test_batches)) > 1:
            report["batch_silhouette"] = silhouette(test_latent, test_batches)
            report["batch_mixing_entropy"] = batch_mixing_entropy(
                test_latent, test_batches, k=min(30, len(test_latent) - 1)
            )
            report["batch_mixing_ceiling"] = proportion_entropy(test_batches)
    return report


def _float_matrix(array, name):
    """`array` as a 2-D float array (float inputs keep their dtype); a ValueError if it is not one."""
    array = np.asarray(array)
    if array.ndim != 2 or array.dtype.kind not in "biuf" or not len(array):
        raise ValueError(
            f"`{name}` must be a non-empty numeric array (examples, features); got {array.dtype} of shape "
            f"{array.shape}."
        )
    return array if array.dtype.kind == "f" else array.astype(np.float64)


def _labels(labels, num_examples, name, features_name):
    """`labels` as an int64 vector of classes from 0; a ValueError if they are not."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or not len(labels) or labels.dtype.kind not in "biu" or labels.min() < 0:
        raise ValueError(
            f"`{name}` must be a non-empty vector of integer classes from 0; got {labels.dtype} of shape "
            f"{labels.shape}."
        )
    if num_examples is not None and len(labels) != num_examples:
        raise ValueError(
            f"`{name}` has {len(labels)} labels for {num_examples} rows of `{features_name}`; pass one per example."
        )
    return labels.astype(np.int64)
