"""What an export holds, whatever its format: the endpoints, their named inputs and outputs, and the metadata.

The endpoints are written in `keras.ops`, so they run on any backend; the writers trace them.
"""

import json
import os

import keras
import numpy as np

from keras_vae.models.autoregressive_vae import AutoregressiveVAE
from keras_vae.version import __version__

# Each endpoint's one input, by name: `x` is shaped like an example, `z` and `epsilon` like a code.
ENDPOINT_INPUTS = {
    "encode": "x",
    "embed": "x",
    "decode": "z",
    "reconstruct": "x",
    "sample": "epsilon",
}
ENDPOINTS = tuple(ENDPOINT_INPUTS)
# Encoding needs no autoregression; decoding with an autoregressive decoder takes one pass per position.
AUTOREGRESSIVE_ENDPOINTS = ("encode", "embed")
AUTOREGRESSIVE_REFUSAL = (
    "not exported: an autoregressive decoder generates one position per decoder pass "
    "(AutoregressiveVAE.generate); load the .keras model with keras_vae installed to decode."
)


class ExportError(RuntimeError):
    """An export that could not be written or does not match the model."""


def endpoint_names(model):
    """The endpoints `model` can be exported with, in `ENDPOINTS` order."""
    return AUTOREGRESSIVE_ENDPOINTS if isinstance(model, AutoregressiveVAE) else ENDPOINTS


def refused_endpoints(model):
    """`{endpoint: why it is not exported}` for the endpoints `model` has no export of."""
    return {name: AUTOREGRESSIVE_REFUSAL for name in ENDPOINTS if name not in endpoint_names(model)}


def endpoint_inputs(model):
    """`{endpoint: input names}`: its `ENDPOINT_INPUTS` entry, then a conditional model's conditions."""
    conditions = list(getattr(model, "conditions", ()))
    return {name: [ENDPOINT_INPUTS[name], *conditions] for name in endpoint_names(model)}


def endpoint_input_shapes(model):
    """`{input name: shape}` of one example, from the encoder's input, the latent size and the conditions.

    An `AutoregressiveVAE`'s example shape is its `data_shape` (the LSTM
    encoder takes any length; the export takes the longest the model was built for).
    """
    if isinstance(model, AutoregressiveVAE):
        try:
            example_shape = model.data_shape
        except ValueError as error:
            raise ExportError(f"Exporting needs the example shape: {error}") from None
    else:
        inputs = getattr(model.encoder, "inputs", None)
        if not inputs or any(size is None for size in inputs[0].shape[1:]):
            raise ExportError(
                "Exporting needs the encoder's input shape: build the encoder as a functional "
                "model with keras.Input(shape=...) of fixed size (the batch size may stay free)."
            )
        example_shape = tuple(inputs[0].shape[1:])
    shapes = {"x": tuple(example_shape), "z": (model.latent_dim,), "epsilon": (model.latent_dim,)}
    return {**shapes, **{name: () for name in getattr(model, "conditions", ())}}


def endpoint_functions(model):
    """The endpoints as functions of their input tensors (in `endpoint_inputs` order) returning dicts."""
    likelihood = model.likelihood
    names = list(getattr(model, "conditions", ()))

    # The model's tensor-level methods: its public ones may return NumPy arrays.
    def split(tensors):
        """`x` and the condition vector (None without conditions) from the input tensors."""
        if not names:
            return tensors[0], None
        return tensors[0], model.condition_vector(dict(zip(names, tensors[1:])))

    def encode(*tensors):
        z_mean, z_log_var = model._posterior(*split(tensors))
        return {"z_mean": z_mean, "z_log_var": z_log_var}

    def embed(*tensors):
        return {"z_mean": model._posterior(*split(tensors))[0]}

    def decode(*tensors):
        condition = split(tensors)[1]
        decoded = model.decoded(tensors[0], condition)
        return likelihood.distribution_parameters(decoded, condition=condition)

    def reconstruct(*tensors):
        return decode(model._posterior(*split(tensors))[0], *tensors[1:])

    def sample(*tensors):
        return decode(*tensors)

    functions = {"encode": encode, "embed": embed, "decode": decode, "reconstruct": reconstruct, "sample": sample}
    return {name: functions[name] for name in endpoint_names(model)}


def example_inputs(model, batch_size, rng):
    """Random inputs of every endpoint, by name, in the data's domain.

    `x` is uniform in [0, 1], or token ids for a categorical likelihood; `z`,
    `epsilon` and continuous conditions are standard normal; categorical
    conditions are category indices (as floats).
    """
    shapes = endpoint_input_shapes(model)
    num_classes = getattr(model.likelihood, "num_classes", None)
    if num_classes:
        x = rng.integers(0, num_classes, (batch_size, *shapes["x"]))
    else:
        x = rng.uniform(size=(batch_size, *shapes["x"]))
    inputs = {
        "x": x.astype("float32"),
        "z": rng.standard_normal((batch_size, *shapes["z"])).astype("float32"),
        "epsilon": rng.standard_normal((batch_size, *shapes["epsilon"])).astype("float32"),
    }
    for condition, categories in getattr(model, "conditions", {}).items():
        values = rng.integers(0, categories, batch_size) if categories else rng.standard_normal(batch_size)
        inputs[condition] = values.astype("float32")
    return inputs


def describe(model, export_format, exported_from=None, **extra):
    """The metadata of an export of `model`: versions, shapes, each endpoint's inputs and outputs, the config."""
    shapes = endpoint_input_shapes(model)
    functions, inputs = endpoint_functions(model), endpoint_inputs(model)
    probe = {name: keras.ops.zeros((1, *shape), "float32") for name, shape in shapes.items()}
    endpoints = {}
    for name in endpoint_names(model):
        outputs = functions[name](*(probe[input_name] for input_name in inputs[name]))
        endpoints[name] = {
            "inputs": {input_name: [None, *shapes[input_name]] for input_name in inputs[name]},
            "outputs": {key: [None, *value.shape[1:]] for key, value in outputs.items()},
        }
    return {
        "format": export_format,
        "keras_vae_version": __version__,
        "keras_version": keras.__version__,
        **extra,
        "backend": exported_from or keras.backend.backend(),
        "input_shape": list(shapes["x"]),
        "latent_dim": model.latent_dim,
        "conditions": dict(getattr(model, "conditions", {})),
        "likelihood": type(model.likelihood).__name__,
        "endpoints": endpoints,
        "refused_endpoints": refused_endpoints(model),
        "model": keras.saving.serialize_keras_object(model),
    }


def write_metadata(path, metadata):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as file:
        json.dump(metadata, file, indent=2, default=_json_default)


def _json_default(value):
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
