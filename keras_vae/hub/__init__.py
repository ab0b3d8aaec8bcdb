"""Export for use without keras-vae: a TensorFlow-Hub-style SavedModel, or ONNX files, verified against the model.

```python
import tensorflow as tf

vae = tf.saved_model.load("exports/mnist")
codes = vae.signatures["embed"](x=tf.zeros((8, 28, 28, 1)))["z_mean"]  # (8, latent_dim)
```

Every endpoint is a method of the loaded object and a signature of the same
name (for TF Serving, `tensorflow_hub.KerasLayer(..., signature=...)` and
`keras.layers.TFSMLayer(..., call_endpoint=...)`); `encode` is also
`serving_default`. With `format="onnx"` each endpoint is `NAME.onnx` instead,
with the same input and output names. Batch sizes are free; inputs are float32.

    encode(x)        -> z_mean, z_log_var        the posterior q(z|x)
    embed(x)         -> z_mean                   the deterministic code
    decode(z)        -> mean, and the likelihood's other parameters
                        (logits for Bernoulli, log_scale for Gaussian)
    reconstruct(x)   -> as decode, at z = z_mean
    sample(epsilon)  -> as decode, at z = epsilon: pass standard normal noise
                        of shape (n, latent_dim); an export that drew it itself
                        would repeat the same samples on every call under JAX

A `ConditionalVAE`'s endpoints all take its conditions too, by name, one value
per example of shape `(batch,)`: category indices (as floats) or numbers. An
`AutoregressiveVAE` (PixelCNN, LSTM decoders) exports `encode` and `embed` only.

The metadata (`assets/keras_vae.json`, or `keras_vae.json` beside the ONNX
files) holds the versions, the Keras backend it was exported from, the input
shape, the latent size, each endpoint's input and output names and shapes, the
endpoints not exported and why, and the model's Keras config.

Under TensorFlow and JAX a SavedModel is written in this process (by Keras's
`ExportArchive`). Under PyTorch, whose Keras export cannot take the VAE, and
for ONNX under JAX and PyTorch (tf2onnx converts TensorFlow graphs), the model
is saved to a `.keras` file and exported by a TensorFlow-backend Python
process that loads it; custom layers must then be importable there.
"""

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings

import keras
import numpy as np

from keras_vae.files import atomic_directory
from keras_vae.hub import onnx as onnx_format
from keras_vae.hub.endpoints import (
    ENDPOINT_INPUTS,
    ENDPOINTS,
    ExportError,
    endpoint_functions,
    endpoint_input_shapes,
    endpoint_inputs,
    endpoint_names,
    example_inputs,
    refused_endpoints,
)
from keras_vae.hub.savedmodel import METADATA, is_saved_model, saved_model_runner, write_saved_model

__all__ = [
    "ATOL",
    "ENDPOINTS",
    "ENDPOINT_INPUTS",
    "FORMATS",
    "METADATA",
    "RTOL",
    "VERIFY_BATCH_SIZES",
    "ExportError",
    "directory_size",
    "endpoint_functions",
    "endpoint_input_shapes",
    "endpoint_inputs",
    "export",
    "is_export",
    "read_metadata",
    "verify",
    "write_saved_model",
]

SAVEDMODEL, ONNX = "savedmodel", "onnx"
FORMATS = (SAVEDMODEL, ONNX)
# An export must match the model to this: |export - model| ≤ ATOL + RTOL·|model|.
ATOL = 1e-4
RTOL = 1e-4
VERIFY_BATCH_SIZES = (1, 7)
# In a staging directory while its export is written and verified, locked by the exporting process.
STAGING_MARKER = ".keras-vae-staging"
# A staging directory without a marker older than this is a leftover (the marker is written at once).
UNMARKED_STAGING_SECONDS = 600


def export(model, path, format=SAVEDMODEL, verbose=False):
    """Exports `model` with the endpoints above, and checks it.

    The export is written to a temporary directory beside `path`, reloaded
    (with `tf.saved_model.load`, or onnxruntime), and compared with `model`
    endpoint by endpoint at two batch sizes; only then is it renamed to
    `path`. A failure leaves `path` as it was; leftovers of an export that was
    killed are removed by the next export to the same `path`. An existing
    export at `path` (of either format) is replaced; any other existing file
    or directory is refused.

    Args:
        model: a `keras_vae.VAE`, `ConditionalVAE` or `AutoregressiveVAE`
            whose encoder has a fixed input shape.
        path: the directory to write.
        format: `"savedmodel"` or `"onnx"` (needs the `[onnx]` extra).
        verbose: bool, print the endpoints as they are written.

    Returns:
        A dict `{"endpoint/output": largest absolute difference}` between the
        export and the model.
    """
    path = os.fspath(path)
    if format not in FORMATS:
        raise ExportError(f"Unknown export format {format!r}: use one of {', '.join(FORMATS)}.")
    if format == ONNX:
        onnx_format.check_installed()
    if os.path.exists(path) and not is_export(path):
        raise ExportError(
            f"{path} exists and is not an export (no saved_model.pb, no .onnx files with keras_vae.json): "
            "choose another directory or remove it."
        )
    shapes = endpoint_input_shapes(model)  # fails early on a model it cannot export
    if not model.built:
        conditions = {name: (None,) for name in getattr(model, "conditions", ())}
        model.build({"x": (None, *shapes["x"]), **conditions} if conditions else (None, *shapes["x"]))
    for name, reason in refused_endpoints(model).items():
        warnings.warn(f"{name} {reason}", stacklevel=2)
    remove_stale_staging(path)
    with _staging(path) as staging:
        if keras.backend.backend() == "tensorflow":
            writer = onnx_format.write_onnx if format == ONNX else write_saved_model
            writer(model, staging, verbose=verbose)
        elif format == SAVEDMODEL and keras.backend.backend() == "jax":
            write_saved_model(model, staging, verbose=verbose)
        else:
            _write_in_tensorflow_process(model, staging, format)
        differences = verify(model, staging)
    remove_stale_staging(path)  # an interrupted swap's `.old-` copy, now that `path` is whole
    return differences


def is_export(path):
    """Whether `path` holds a complete export (a staging directory, verified or not, is not one)."""
    path = os.fspath(path)
    if os.path.exists(os.path.join(path, STAGING_MARKER)):
        return False
    return is_saved_model(path) or onnx_format.is_onnx_export(path)


def export_format(path):
    return ONNX if onnx_format.is_onnx_export(path) else SAVEDMODEL


def read_metadata(path):
    """The metadata of an export (`assets/keras_vae.json`, or `keras_vae.json` of an ONNX export), as a dict."""
    name = onnx_format.METADATA if export_format(path) == ONNX else METADATA
    with open(os.path.join(path, name)) as file:
        return json.load(file)


def verify(model, path, seed=0):
    """Compares every endpoint of the export at `path` with `model` on random inputs.

    Inputs are drawn by `endpoints.example_inputs` (uniform `x`, or token ids;
    standard normal codes) at each of `VERIFY_BATCH_SIZES`. The export is
    called by input name, as a TF Serving, TF Hub or onnxruntime client would.

    Returns:
        `{"endpoint/output": largest absolute difference}`.

    Raises:
        ExportError: an endpoint is missing, returns other outputs or shapes,
            or differs by more than `ATOL + RTOL·|model|`.
    """
    run = onnx_format.onnx_runner(path) if export_format(path) == ONNX else saved_model_runner(path)
    functions = endpoint_functions(model)
    names = endpoint_inputs(model)
    rng = np.random.default_rng(seed)
    differences = {}
    for batch_size in VERIFY_BATCH_SIZES:
        inputs = example_inputs(model, batch_size, rng)
        for name in endpoint_names(model):
            expected = functions[name](*(keras.ops.convert_to_tensor(inputs[input_name]) for input_name in names[name]))
            actual = run(name, {input_name: inputs[input_name] for input_name in names[name]})
            if set(actual) != set(expected):
                raise ExportError(
                    f"The export's {name} returns {sorted(actual)}; the model returns {sorted(expected)}."
                )
            for key, value in expected.items():
                value = keras.ops.convert_to_numpy(value)
                exported = np.asarray(actual[key])
                if exported.shape != value.shape:
                    raise ExportError(
                        f"The export's {name}/{key} has shape {exported.shape}; the model's has {value.shape}."
                    )
                difference = float(np.max(np.abs(exported - value)))
                differences[f"{name}/{key}"] = max(differences.get(f"{name}/{key}", 0.0), difference)
                if not np.all(np.abs(exported - value) <= ATOL + RTOL * np.abs(value)):  # NaN fails too
                    raise ExportError(
                        f"The export's {name}/{key} differs from the model by up to {difference:.3g} "
                        f"(batch of {batch_size}; tolerance {ATOL:g} + {RTOL:g}·|value|)."
                    )
    return differences


def directory_size(path):
    """Bytes in all files under `path`."""
    return sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(path) for name in names)


# ------------------------------------------------------------------ staging
def remove_stale_staging(path):
    """Removes what killed exports to `path` left beside it: staging directories no live export holds.

    A staging directory is `atomic_directory`'s `.tmp-NAME-XXXXXXXX`; its
    exporter holds a lock on the marker inside, which the system releases
    when the process dies, however it dies. `.old-NAME-XXXXXXXX` (an earlier
    export being swapped out) is a leftover once `path` exists again.
    """
    parent, name = os.path.split(os.path.abspath(path))
    if not os.path.isdir(parent):
        return
    leftover = re.compile(rf"\.(tmp|old)-{re.escape(name)}-[a-z0-9_]{{8}}")
    for entry in os.listdir(parent):
        match = leftover.fullmatch(entry)
        directory = os.path.join(parent, entry)
        if not match or not os.path.isdir(directory):
            continue
        stale = _abandoned(directory) if match.group(1) == "tmp" else os.path.exists(path)
        if stale:
            shutil.rmtree(directory, ignore_errors=True)


def _abandoned(staging):
    marker = os.path.join(staging, STAGING_MARKER)
    if not os.path.isfile(marker):
        return time.time() - os.path.getmtime(staging) > UNMARKED_STAGING_SECONDS
    with open(marker, "a") as file:
        return _try_lock(file)


def _try_lock(file):
    """Takes the lock on an open marker without waiting: False if a live exporter holds it."""
    try:
        import fcntl
    except ImportError:  # Windows: the marker's age has to do
        return time.time() - os.path.getmtime(file.name) > UNMARKED_STAGING_SECONDS
    try:
        fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


@contextlib.contextmanager
def _staging(path):
    """`atomic_directory(path, replace=True)` with a marker this process holds locked until the export is verified."""
    with atomic_directory(path, replace=True) as staging:
        marker = os.path.join(staging, STAGING_MARKER)
        with open(marker, "w") as file:
            _try_lock(file)
            file.write(f"{os.getpid()}\n")
            file.flush()
            yield staging
            os.remove(marker)  # verified: what is renamed to `path` is an export


def _write_in_tensorflow_process(model, path, format):
    """Saves `model` and has a TensorFlow-backend process load it and write the export."""
    with tempfile.TemporaryDirectory(prefix="keras-vae-export-") as scratch:
        model_file = os.path.join(scratch, "model.keras")
        model.save(model_file)
        environment = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
        result = subprocess.run(
            [sys.executable, "-m", "keras_vae.hub", model_file, path, keras.backend.backend(), format],
            env=environment,
            capture_output=True,
            text=True,
        )
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit code {result.returncode}"
        raise ExportError(
            f"Exporting rebuilds a {keras.backend.backend()}-backend model in a TensorFlow-backend process, "
            f"which failed: {reason} (custom layers must be registered in a module that process can import)."
        )
