"""TensorFlow-Hub-style export: one SavedModel with named signatures.

An export needs neither keras-vae nor the backend the model was trained on:

```python
import tensorflow as tf

vae = tf.saved_model.load("exports/mnist")
codes = vae.signatures["embed"](x=tf.zeros((8, 28, 28, 1)))["z_mean"]  # (8, latent_dim)
```

Every endpoint is a method of the loaded object and a signature of the same
name (for TF Serving, `tensorflow_hub.KerasLayer(..., signature=...)` and
`keras.layers.TFSMLayer(..., call_endpoint=...)`); `encode` is also
`serving_default`. Batch sizes are free; inputs are float32.

    encode(x)        -> z_mean, z_log_var        the posterior q(z|x)
    embed(x)         -> z_mean                   the deterministic code
    decode(z)        -> mean, and the likelihood's other parameters
                        (logits for Bernoulli, log_scale for Gaussian)
    reconstruct(x)   -> as decode, at z = z_mean
    sample(epsilon)  -> as decode, at z = epsilon: pass standard normal noise
                        of shape (n, latent_dim); an export that drew it itself
                        would repeat the same samples on every call under JAX

A `ConditionalVAE`'s endpoints all take its conditions too, by name, one value
per example of shape `(batch,)`: category indices (as floats) or numbers.

`assets/keras_vae.json` holds the keras-vae and Keras versions, the Keras
backend it was exported from, the input shape, the latent size, each
endpoint's input and output names and shapes, and the model's Keras config.

Under TensorFlow and JAX the model is exported in this process (by Keras's
`ExportArchive`). Under PyTorch, whose Keras export cannot take the VAE, the
model is saved to a `.keras` file and exported by a TensorFlow-backend Python
process that loads it; custom layers must then be importable there.
"""

import json
import os
import subprocess
import sys
import tempfile

import keras
import numpy as np

from keras_vae.files import atomic_directory
from keras_vae.models.autoregressive_vae import AutoregressiveVAE
from keras_vae.version import __version__

METADATA = os.path.join("assets", "keras_vae.json")
# Each endpoint's one input, by name: `x` is shaped like an example, `z` and `epsilon` like a code.
ENDPOINT_INPUTS = {
    "encode": "x",
    "embed": "x",
    "decode": "z",
    "reconstruct": "x",
    "sample": "epsilon",
}
ENDPOINTS = tuple(ENDPOINT_INPUTS)
# An export must match the model to this: |export - model| ≤ ATOL + RTOL·|model|.
ATOL = 1e-4
RTOL = 1e-4
VERIFY_BATCH_SIZES = (1, 7)


class ExportError(RuntimeError):
    """An export that could not be written or does not match the model."""


def export(model, path, verbose=False):
    """Exports `model` as a SavedModel with the endpoints above, and checks it.

    The export is written to a temporary directory beside `path`, reloaded
    with `tf.saved_model.load`, and compared with `model` endpoint by endpoint
    at two batch sizes; only then is it renamed to `path`. A failure leaves
    `path` as it was. An existing export at `path` is replaced; any other
    existing file or directory is refused.

    Args:
        model: a `keras_vae.VAE` (or `ConditionalVAE`) whose encoder has a fixed input shape.
        path: the directory to write.
        verbose: bool, print Keras's listing of the endpoints.

    Returns:
        A dict `{"endpoint/output": largest absolute difference}` between the
        export and the model.
    """
    path = os.fspath(path)
    if isinstance(model, AutoregressiveVAE):
        raise ExportError(
            "An autoregressive decoder decodes one position per call, which the export's decode endpoint cannot express: "
            "save the model as .keras instead (model.save)."
        )
    if os.path.exists(path) and not is_export(path):
        raise ExportError(f"{path} exists and is not a SavedModel export: choose another directory or remove it.")
    shapes = endpoint_input_shapes(model)  # fails early on a model it cannot export
    if not model.built:
        conditions = {name: (None,) for name in getattr(model, "conditions", ())}
        model.build({"x": (None, *shapes["x"]), **conditions} if conditions else (None, *shapes["x"]))
    with atomic_directory(path, replace=True) as staging:
        if keras.backend.backend() == "torch":
            _write_in_tensorflow_process(model, staging)
        else:
            write_saved_model(model, staging, shapes, verbose=verbose)
        return verify(model, staging)


def is_export(path):
    return os.path.isfile(os.path.join(path, "saved_model.pb"))


def endpoint_inputs(model):
    """`{endpoint: input names}`: its `ENDPOINT_INPUTS` entry, then a conditional model's conditions."""
    conditions = list(getattr(model, "conditions", ()))
    return {name: [ENDPOINT_INPUTS[name], *conditions] for name in ENDPOINTS}


def endpoint_input_shapes(model):
    """`{input name: shape}` of one example, from the encoder's input, the latent size and the conditions."""
    inputs = getattr(model.encoder, "inputs", None)
    if not inputs or any(size is None for size in inputs[0].shape[1:]):
        raise ExportError(
            "Exporting needs the encoder's input shape: build the encoder as a functional "
            "model with keras.Input(shape=...) of fixed size (the batch size may stay free)."
        )
    shapes = {"x": tuple(inputs[0].shape[1:]), "z": (model.latent_dim,), "epsilon": (model.latent_dim,)}
    return {**shapes, **{name: () for name in getattr(model, "conditions", ())}}


def endpoint_functions(model):
    """The endpoints as functions of their input tensors (in `endpoint_inputs` order) returning dicts.

    Written in `keras.ops`, so they run on any backend.
    """
    likelihood = model.likelihood
    names = list(getattr(model, "conditions", ()))

    def split(tensors):
        """The model's inputs from `x` and the condition tensors, and the condition vector."""
        if not names:
            return tensors[0], None
        inputs = {"x": tensors[0], **dict(zip(names, tensors[1:]))}
        return inputs, model.condition_vector(inputs)

    def encode(*tensors):
        z_mean, z_log_var = model.encode(split(tensors)[0])
        return {"z_mean": z_mean, "z_log_var": z_log_var}

    def embed(*tensors):
        return {"z_mean": model.embed(split(tensors)[0])}

    def decode(*tensors):
        condition = split(tensors)[1]
        decoded = model.decoder(model._decoder_inputs(tensors[0], condition, None))
        return likelihood.distribution_parameters(decoded, condition=condition)

    def reconstruct(*tensors):
        return decode(model.embed(split(tensors)[0]), *tensors[1:])

    def sample(*tensors):
        return decode(*tensors)

    return {"encode": encode, "embed": embed, "decode": decode, "reconstruct": reconstruct, "sample": sample}


def write_saved_model(model, path, shapes=None, exported_from=None, verbose=False):
    """Writes the SavedModel and its metadata asset in this process (TensorFlow or JAX backend)."""
    import tensorflow as tf
    from keras.export import ExportArchive

    shapes = shapes or endpoint_input_shapes(model)
    archive = ExportArchive()
    if keras.backend.backend() == "jax":
        # JAX needs it to map its variables to TF ones. Under TensorFlow the
        # endpoints capture the variables anyway, and tracking would store
        # each one twice (as a Keras and as a TF variable), doubling the export.
        archive.track(model)
    functions = endpoint_functions(model)
    inputs = endpoint_inputs(model)
    for name in ENDPOINTS:
        specs = [tf.TensorSpec((None, *shapes[input_name]), tf.float32, name=input_name) for input_name in inputs[name]]
        archive.add_endpoint(name, functions[name], input_signature=specs)
    archive.write_out(path, verbose=verbose)

    probe = {name: keras.ops.zeros((1, *shape), "float32") for name, shape in shapes.items()}
    endpoints = {}
    for name in ENDPOINTS:
        outputs = functions[name](*(probe[input_name] for input_name in inputs[name]))
        endpoints[name] = {
            "inputs": {input_name: [None, *shapes[input_name]] for input_name in inputs[name]},
            "outputs": {key: [None, *value.shape[1:]] for key, value in outputs.items()},
        }
    metadata = {
        "keras_vae_version": __version__,
        "keras_version": keras.__version__,
        "tensorflow_version": tf.__version__,
        "backend": exported_from or keras.backend.backend(),
        "input_shape": list(shapes["x"]),
        "latent_dim": model.latent_dim,
        "conditions": dict(getattr(model, "conditions", {})),
        "likelihood": type(model.likelihood).__name__,
        "endpoints": endpoints,
        "model": keras.saving.serialize_keras_object(model),
    }
    os.makedirs(os.path.join(path, "assets"), exist_ok=True)
    with open(os.path.join(path, METADATA), "w") as file:
        json.dump(metadata, file, indent=2, default=_json_default)


def read_metadata(path):
    """The `assets/keras_vae.json` of an export, as a dict."""
    with open(os.path.join(path, METADATA)) as file:
        return json.load(file)


def verify(model, path, seed=0):
    """Compares every endpoint of the export at `path` with `model` on random inputs.

    Inputs are uniform in [0, 1] for `x`, standard normal for `z`, `epsilon`
    and continuous conditions, and uniform over the categories of categorical
    ones, at each of `VERIFY_BATCH_SIZES`. The export is called through
    its signatures, by input name, as a TF Serving or TF Hub client would.

    Returns:
        `{"endpoint/output": largest absolute difference}`.

    Raises:
        ExportError: an endpoint is missing, returns other outputs or shapes,
            or differs by more than `ATOL + RTOL·|model|`.
    """
    import tensorflow as tf

    loaded = tf.saved_model.load(path)
    functions = endpoint_functions(model)
    names = endpoint_inputs(model)
    shapes = endpoint_input_shapes(model)
    rng = np.random.default_rng(seed)
    differences = {}
    for batch_size in VERIFY_BATCH_SIZES:
        inputs = {
            "x": rng.uniform(size=(batch_size, *shapes["x"])).astype("float32"),
            "z": rng.standard_normal((batch_size, *shapes["z"])).astype("float32"),
            "epsilon": rng.standard_normal((batch_size, *shapes["epsilon"])).astype("float32"),
        }
        for condition, categories in getattr(model, "conditions", {}).items():
            values = rng.integers(0, categories, batch_size) if categories else rng.standard_normal(batch_size)
            inputs[condition] = values.astype("float32")
        for name in ENDPOINTS:
            if name not in loaded.signatures:
                raise ExportError(f"The export at {path} has no {name!r} signature.")
            expected = functions[name](*(keras.ops.convert_to_tensor(inputs[input_name]) for input_name in names[name]))
            actual = loaded.signatures[name](
                **{input_name: tf.constant(inputs[input_name]) for input_name in names[name]}
            )
            if set(actual) != set(expected):
                raise ExportError(
                    f"The export's {name} returns {sorted(actual)}; the model returns {sorted(expected)}."
                )
            for key, value in expected.items():
                value = keras.ops.convert_to_numpy(value)
                exported = actual[key].numpy()
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


def _write_in_tensorflow_process(model, path):
    """Saves `model` and has a TensorFlow-backend process load it and write the SavedModel."""
    with tempfile.TemporaryDirectory(prefix="keras-vae-export-") as scratch:
        model_file = os.path.join(scratch, "model.keras")
        model.save(model_file)
        environment = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
        result = subprocess.run(
            [sys.executable, "-m", "keras_vae.hub", model_file, path, keras.backend.backend()],
            env=environment,
            capture_output=True,
            text=True,
        )
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit code {result.returncode}"
        raise ExportError(
            "Exporting rebuilds a PyTorch-backend model in a TensorFlow-backend process, "
            f"which failed: {reason} (custom layers must be registered in a module that process can import)."
        )


def _json_default(value):
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _main(model_file, path, exported_from):
    """`python -m keras_vae.hub MODEL_FILE PATH BACKEND`, run with KERAS_BACKEND=tensorflow."""
    import keras_vae.models  # noqa: F401  (registers the classes the file names)

    model = keras.saving.load_model(model_file, compile=False)
    write_saved_model(model, path, exported_from=exported_from)


if __name__ == "__main__":
    _main(*sys.argv[1:])
