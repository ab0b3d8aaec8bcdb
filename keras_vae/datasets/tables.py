"""Count tables (samples × features) as arrays in the .npz layout: .csv files, read by pyarrow's CSV reader,
and AnnData .h5ad files: the numeric columns as features, a label column, condition columns."""

import os

import numpy as np

from keras_vae.datasets.splits import DataError, first_line

TABLE_EXTENSIONS = (".csv", ".h5ad")
# Table columns read as class labels (for plots and downstream accuracy), first found.
LABEL_COLUMNS = ("label", "cell_type")


def read_table(path, conditions):
    """The arrays of a samples × features table (.csv, or .h5ad through anndata), in the .npz layout."""
    if path.lower().endswith(".h5ad"):
        return _read_anndata(path, conditions)
    return _read_csv(path, conditions)


def _read_csv(path, conditions):
    """A .csv table with a header row: numeric columns are features, other text columns (names) are skipped."""
    import pyarrow as pa
    from pyarrow import csv

    bad_rows = []

    def on_bad_row(row):
        bad_rows.append(row)
        return "error"

    if os.path.getsize(path) == 0:
        raise DataError(f"{path} has no data rows: save a header row of column names, then one row per example.")
    try:
        table = csv.read_csv(
            path,
            # One thread, so that pyarrow knows the number of a bad row.
            read_options=csv.ReadOptions(use_threads=False),
            parse_options=csv.ParseOptions(invalid_row_handler=on_bad_row),
            # Labels and conditions as written, so that numbers and names are told apart the same way in both.
            convert_options=csv.ConvertOptions(
                column_types={name: pa.string() for name in (*LABEL_COLUMNS, *conditions)}
            ),
        )
    except (ValueError, OSError) as error:  # pyarrow's ArrowInvalid is a ValueError
        if bad_rows:
            row = bad_rows[0]
            raise DataError(
                f"{path}: line {row.number} has another number of fields ({row.actual_columns}) than the header "
                f"({row.expected_columns}); fix that row (blank lines are not counted)."
            ) from error
        raise DataError(f"Cannot read {path} as a CSV table ({first_line(error)}); save it as UTF-8 text.") from error
    if table.num_rows == 0:
        raise DataError(f"{path} has no data rows: save a header row of column names, then one row per example.")
    for name, column in zip(table.column_names, table.columns, strict=True):
        if pa.types.is_binary(column.type):  # what pyarrow makes of text that is not UTF-8
            raise DataError(
                f"Cannot read {path} as a CSV table (column {name} is not UTF-8 text); save it as UTF-8 text."
            )

    label = next((name for name in LABEL_COLUMNS if name in table.column_names), None)
    # Integer and float columns; empty cells in them become NaN, which the array checks refuse.
    features = [
        column.to_numpy().astype(np.float64)
        for name, column in zip(table.column_names, table.columns, strict=True)
        if name != label and name not in conditions and _is_number(column.type)
    ]
    if not features:
        raise DataError(
            f"{path} has no numeric columns: save the features (e.g. one count column per gene) as numbers."
        )
    arrays = {"x_train": np.stack(features, axis=1)}
    if label is not None:
        arrays["y_train"] = column_values(table.column(label).to_numpy(), categorical=True)
    for name in conditions:
        if name not in table.column_names:
            raise DataError(f"{path} has no column {name!r} for the condition: add it, or drop the condition.")
        arrays[name] = column_values(table.column(name).to_numpy())
    return arrays


def _is_number(arrow_type):
    import pyarrow as pa

    return pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type)


def _read_anndata(path, conditions):
    try:
        import anndata
    except ImportError:
        raise DataError(f'Reading {path} needs the anndata package: pip install "keras-vae[anndata]".') from None
    try:
        table = anndata.read_h5ad(path)
    except (OSError, ValueError, KeyError) as error:
        raise DataError(
            f"Cannot read {path} as AnnData ({first_line(error)}); write it with AnnData.write_h5ad."
        ) from error
    matrix = table.X.toarray() if hasattr(table.X, "toarray") else np.asarray(table.X)
    arrays = {"x_train": matrix}
    label = next((name for name in LABEL_COLUMNS if name in table.obs), None)
    if label is not None:
        arrays["y_train"] = column_values(np.asarray(table.obs[label]), categorical=True)
    for name in conditions:
        if name not in table.obs:
            raise DataError(f"{path} has no obs column {name!r} for the condition: add it, or drop the condition.")
        values = np.asarray(table.obs[name])
        arrays[name] = values if values.dtype.kind in "biuf" else column_values(values)
    return arrays


def column_values(values, categorical=False):
    """Values written as text: integers where every value is one (or `categorical`), else floats; text
    that is not all numbers as the index of each value's category in sorted order."""
    texts = np.asarray(values).astype(str)
    try:
        numbers = texts.astype(np.float64)
    except ValueError:
        return np.unique(texts, return_inverse=True)[1].reshape(-1).astype(np.int64)
    if categorical or np.all(np.mod(numbers, 1) == 0):
        return numbers.astype(np.int64)
    return numbers
