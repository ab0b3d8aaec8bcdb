"""NumPy sources: .npy/.npz files (and tables or synthetic data in the .npz layout) as splits of examples,
with labels and conditions, a seeded validation hold-out and checks that name the file and the fix."""

import os

import numpy as np

from keras_vae.datasets.splits import DataError, Splits, array_examples, first_line, seeded_split, validation_size

ARRAY_EXTENSIONS = (".npy", ".npz")


def read_arrays(path):
    """The arrays of a .npz file by name, or of a .npy file as `{"array": array}`."""
    try:
        if path.lower().endswith(".npy"):
            return {"array": np.load(path, allow_pickle=False)}
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError) as error:  # not NumPy, truncated, or pickled objects
        raise DataError(
            f"Cannot read {path} as NumPy data ({first_line(error)}); save it with np.save or np.savez."
        ) from error


def array_splits(arrays, path, validation_fraction, seed, conditions):
    """Splits of named arrays (a .npz file's layout), with the conditions asked for."""
    train_name, test_name = _train_and_test_names(arrays, path)
    x_train = _float_examples(arrays[train_name], train_name, path)
    y_train = _labels(arrays.get("y_train"), len(x_train), "y_train", path)
    condition_train = {name: _condition_values(arrays, name, "train", len(x_train), path) for name in conditions}
    if test_name is None:
        x_test = y_test = condition_test = None
    else:
        x_test = _float_examples(arrays[test_name], test_name, path)
        y_test = _labels(arrays.get("y_test"), len(x_test), "y_test", path)
        condition_test = {name: _condition_values(arrays, name, "test", len(x_test), path) for name in conditions}
        if x_test.shape[1:] != x_train.shape[1:]:
            raise DataError(
                f"{path}: {test_name} examples have shape {x_test.shape[1:]} but {train_name} examples "
                f"{x_train.shape[1:]}; save test and training examples of one shape."
            )

    num_validation = validation_size(len(x_train), validation_fraction, path, has_test=x_test is not None)
    validation_indices, train_indices = seeded_split(len(x_train), num_validation, seed)
    train = array_examples(
        x_train[train_indices], _take(y_train, train_indices), _take_each(condition_train, train_indices)
    )
    validation = array_examples(
        x_train[validation_indices], _take(y_train, validation_indices), _take_each(condition_train, validation_indices)
    )
    raw = [arrays[name] for name in (train_name, test_name) if name is not None]
    return Splits(
        # The arrays are in memory already, so a buffer of all of them is a full shuffle.
        train=train.shuffle(len(train_indices), seed=seed, reshuffle_each_iteration=True),
        validation=validation if num_validation else None,
        test=validation if x_test is None else array_examples(x_test, y_test, condition_test),
        input_shape=x_train.shape[1:],
        name=os.path.splitext(os.path.basename(path))[0],
        value_range=_value_range(x_train, x_test),
        is_counts=all(array.dtype != np.uint8 and _is_counts(array) for array in raw),
        conditions={
            name: _categories(condition_train[name], None if x_test is None else condition_test[name])
            for name in conditions
        },
    )


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


def _float_examples(array, array_name, path):
    """`array` as float32 examples: uint8 divided by 255, other numbers as they are."""
    if array.dtype.kind not in "biuf" or array.ndim < 2:
        raise DataError(
            f"{array_name} in {path} is a {array.dtype} array of shape {array.shape}; save numbers with "
            "examples first and at least one value each, e.g. shape (examples, 28, 28)."
        )
    if len(array) == 0:
        raise DataError(f"{array_name} in {path} has no examples (shape {array.shape}); save a non-empty array.")
    examples = array.astype(np.float32) / 255.0 if array.dtype == np.uint8 else array.astype(np.float32)
    num_non_finite = examples.size - np.count_nonzero(np.isfinite(examples))
    if num_non_finite:
        raise DataError(
            f"{array_name} in {path} has {num_non_finite} NaN or infinite values (of {examples.size}); "
            "replace or drop them (e.g. np.nan_to_num) before training."
        )
    return examples


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


def _value_range(*arrays):
    arrays = [array for array in arrays if array is not None]
    return float(min(array.min() for array in arrays)), float(max(array.max() for array in arrays))
