"""The SavedModel format: one TensorFlow SavedModel whose signatures are the endpoints, read with `tf.saved_model.load`."""

import os

import keras

from keras_vae.hub.endpoints import (
    ExportError,
    describe,
    endpoint_functions,
    endpoint_input_shapes,
    endpoint_inputs,
    write_metadata,
)

METADATA = os.path.join("assets", "keras_vae.json")


def is_saved_model(path):
    return os.path.isfile(os.path.join(path, "saved_model.pb"))


def write_saved_model(model, path, exported_from=None, verbose=False):
    """Writes the SavedModel and its metadata asset in this process (TensorFlow or JAX backend)."""
    import tensorflow as tf
    from keras.export import ExportArchive

    shapes = endpoint_input_shapes(model)
    archive = ExportArchive()
    if keras.backend.backend() == "jax":
        # JAX needs it to map its variables to TF ones. Under TensorFlow the
        # endpoints capture the variables anyway, and tracking would store
        # each one twice (as a Keras and as a TF variable), doubling the export.
        archive.track(model)
    functions, inputs = endpoint_functions(model), endpoint_inputs(model)
    for name, function in functions.items():
        specs = [tf.TensorSpec((None, *shapes[input_name]), tf.float32, name=input_name) for input_name in inputs[name]]
        archive.add_endpoint(name, function, input_signature=specs)
    archive.write_out(path, verbose=verbose)
    metadata = describe(model, "savedmodel", exported_from, tensorflow_version=tf.__version__)
    write_metadata(os.path.join(path, METADATA), metadata)


def saved_model_runner(path):
    """A function `(endpoint, {input name: array}) -> {output name: array}` calling the export's signatures."""
    import tensorflow as tf

    loaded = tf.saved_model.load(path)

    def run(name, inputs):
        if name not in loaded.signatures:
            raise ExportError(f"The export at {path} has no {name!r} signature.")
        outputs = loaded.signatures[name](**{key: tf.constant(value) for key, value in inputs.items()})
        return {key: value.numpy() for key, value in outputs.items()}

    return run
