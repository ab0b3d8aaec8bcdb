"""`keras-vae embed`: a count table's latent means and normalized expression, written for scanpy (.h5ad) or NumPy (.npz).

`embed_file` is also the library function: it takes a loaded model, reads the
input a batch of rows at a time, and writes one file atomically.
"""

import json

import keras
import numpy as np

from keras_vae.datasets import tables
from keras_vae.datasets.splits import DataError
from keras_vae.files import atomic_path
from keras_vae.models.conditional_vae import ConditionalVAE

LATENT_KEY = "X_keras_vae"
NORMALIZED_LAYER = "keras_vae_normalized"
COUNTERFACTUAL_LAYER = "keras_vae_counterfactual"
SETTINGS_KEY = "keras_vae"
OUTPUT_EXTENSIONS = (".h5ad", ".npz")


def embed_file(
    vae,
    input_path,
    output_path,
    library_size=1e4,
    counterfactual=None,
    batch_size=1024,
    settings=None,
    verbose=False,
):
    """Writes the latent means and normalized expression of every row of a count table.

    The input is an `.h5ad` (read in backed mode, `batch_size` rows at a time,
    so only a batch of counts is in memory) or a `.csv`. The output:

    - `.h5ad`: the input's `X` (counts untouched), `obs` and `var`, plus
      `obsm["X_keras_vae"]` (latent means), `layers["keras_vae_normalized"]`
      (expression at the posterior mean, as proportions times `library_size`,
      or times each row's own total count when `library_size` is None),
      `layers["keras_vae_counterfactual"]` with `counterfactual`, and
      `uns["keras_vae"]` (the settings, as JSON text);
    - `.npz`: arrays `latent`, `normalized`, optionally `counterfactual`, and
      `settings` (JSON text), for users without AnnData.

    Args:
        vae: a trained `VAE` or `ConditionalVAE`; a conditional model's
            conditions are read from the table's columns (obs) of those names.
        input_path: str, `.h5ad` or `.csv`.
        output_path: str, `.h5ad` or `.npz`.
        library_size: float, or None for each row's own total.
        counterfactual: `None` or `{condition: value}`: also decode every row
            under these conditions (e.g. `{"batch": 0}`).
        batch_size: int, rows per model call.
        settings: dict of JSON-able values to store with the output (e.g. the
            run's config).
        verbose: bool, show a progress bar.

    Returns:
        The number of rows written.
    """
    if not str(output_path).lower().endswith(OUTPUT_EXTENSIONS):
        raise DataError(f"{output_path}: write an .h5ad or an .npz file (give the output that extension).")
    conditions = list(vae.conditions) if isinstance(vae, ConditionalVAE) else []
    if counterfactual and not conditions:
        raise DataError("--condition needs a conditional model; this run was trained without conditions.")
    unknown = sorted(set(counterfactual or {}) - set(conditions))
    if unknown:
        raise DataError(f"The model has no condition {unknown[0]!r}; it was trained with {conditions}.")
    reader = _Rows(input_path, conditions)
    for name, text_categories in reader.text_categories.items():
        # Text categories are numbered in sorted order, as training numbered its own: only the same set maps alike.
        if len(text_categories) != vae.conditions[name]:
            raise DataError(
                f"{input_path}: condition {name!r} has {len(text_categories)} categories ({', '.join(text_categories[:5])}"
                f"{', ...' if len(text_categories) > 5 else ''}) and the model was trained on {vae.conditions[name]}: "
                "embed a table with the training data's categories, or write them as the training indices."
            )
    latent, normalized, changed = [], [], []
    progress = keras.utils.Progbar(reader.num_rows, unit_name="row") if verbose else None
    for start in range(0, reader.num_rows, batch_size):
        counts, values = reader.rows(start, start + batch_size)
        inputs = {"x": counts, **values} if conditions else counts
        z = vae.embed(inputs)
        latent.append(keras.ops.convert_to_numpy(z))
        normalized.append(_normalized(vae.decode(z, values) if conditions else vae.decode(z), counts, library_size))
        if counterfactual:
            changed.append(_normalized(vae.decode(z, {**values, **counterfactual}), counts, library_size))
        if progress is not None:
            progress.add(len(counts))
    record = {
        "library_size": "own" if library_size is None else float(library_size),
        "counterfactual": counterfactual or {},
        "conditions": conditions,
        **(settings or {}),
    }
    arrays = {"latent": np.concatenate(latent), "normalized": np.concatenate(normalized)}
    if counterfactual:
        arrays["counterfactual"] = np.concatenate(changed)
    if str(output_path).lower().endswith(".npz"):
        with atomic_path(output_path) as temporary:
            np.savez(temporary, **arrays, settings=json.dumps(record))
    else:
        _write_anndata(reader, arrays, record, output_path)
    return reader.num_rows


def _normalized(mean, counts, library_size):
    """Decoded means as proportions of each row, times `library_size` (or the row's own total)."""
    mean = np.asarray(keras.ops.convert_to_numpy(mean), np.float64)
    proportions = mean / mean.sum(axis=1, keepdims=True)
    scale = counts.sum(axis=1, keepdims=True) if library_size is None else library_size
    return (proportions * scale).astype(np.float32)


def _write_anndata(reader, arrays, record, output_path):
    anndata = _anndata(output_path)
    table = reader.full_table(anndata)
    table.obsm[LATENT_KEY] = arrays["latent"]
    table.layers[NORMALIZED_LAYER] = arrays["normalized"]
    if "counterfactual" in arrays:
        table.layers[COUNTERFACTUAL_LAYER] = arrays["counterfactual"]
    table.uns[SETTINGS_KEY] = json.dumps(record)
    with atomic_path(output_path) as temporary:
        table.write_h5ad(temporary)


def _anndata(path):
    try:
        import anndata
    except ImportError:
        raise DataError(f'Writing {path} needs the anndata package: pip install "keras-vae[anndata]".') from None
    return anndata


class _Rows:
    """Batches of rows of a table: an .h5ad opened in backed mode (rows read on demand), or a whole .csv."""

    def __init__(self, path, conditions):
        self.path = path
        if path.lower().endswith(".h5ad"):
            anndata = _anndata(path)
            try:
                self.backed = anndata.read_h5ad(path, backed="r")
            except (OSError, ValueError, KeyError) as error:
                raise DataError(f"Cannot read {path} as AnnData ({error}); write it with AnnData.write_h5ad.") from None
            self.num_rows, self.counts = self.backed.n_obs, None
            self.values, self.text_categories = {}, {}
            for name in conditions:
                if name not in self.backed.obs:
                    raise DataError(f"{path} has no obs column {name!r} for the condition: add it.")
                values = np.asarray(self.backed.obs[name])
                if values.dtype.kind not in "biuf":
                    self.text_categories[name] = sorted(set(values.astype(str)))
                    values = tables.column_values(values)
                self.values[name] = values
        elif path.lower().endswith(".csv"):
            arrays = tables.read_table(path, conditions)
            self.backed, self.counts, self.text_categories = None, arrays["x_train"], {}
            self.num_rows = len(self.counts)
            self.values = {name: arrays[name] for name in conditions}
        else:
            raise DataError(f"{path}: keras-vae embed reads an .h5ad or a .csv table.")

    def rows(self, start, stop):
        """`(counts float32 (rows, features), {condition: values})` of rows `start` to `stop`."""
        if self.backed is not None:
            block = self.backed.X[start:stop]
            block = block.toarray() if hasattr(block, "toarray") else np.asarray(block)
        else:
            block = self.counts[start:stop]
        return np.asarray(block, np.float32), {name: v[start:stop] for name, v in self.values.items()}

    def full_table(self, anndata):
        """The input as an in-memory AnnData (a .csv becomes one with its counts as X)."""
        if self.backed is not None:
            return self.backed.to_memory()
        return anndata.AnnData(X=self.counts.astype(np.float32))
