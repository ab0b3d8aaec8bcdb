"""The ONNX format: one `.onnx` file per endpoint, converted from TensorFlow by tf2onnx, run by onnxruntime.

Inputs and outputs carry the SavedModel's names. Conversion needs the
TensorFlow backend: models of the other backends are rebuilt there first.
"""

import importlib.util
import os

from keras_vae.hub.endpoints import (
    ExportError,
    describe,
    endpoint_functions,
    endpoint_input_shapes,
    endpoint_inputs,
    write_metadata,
)

METADATA = "keras_vae.json"
# Opset 17 is read by onnxruntime 1.13 and later (2022) and by most serving stacks.
OPSET = 17
REQUIRED = ("onnx", "tf2onnx", "onnxruntime")


def check_installed():
    """Raises `ExportError` in one line when the `[onnx]` extra is missing."""
    missing = [name for name in REQUIRED if importlib.util.find_spec(name) is None]
    if missing:
        raise ExportError(
            f"ONNX export needs {', '.join(missing)}: pip install 'keras-vae[onnx]' (onnx, tf2onnx, onnxruntime)."
        )


def is_onnx_export(path):
    """`keras_vae.json` and at least one `.onnx` file: what `write_onnx` leaves."""
    if not os.path.isfile(os.path.join(path, METADATA)):
        return False
    return any(name.endswith(".onnx") for name in os.listdir(path))


def endpoint_file(path, name):
    return os.path.join(path, f"{name}.onnx")


def write_onnx(model, path, exported_from=None, verbose=False):
    """Converts each endpoint to `NAME.onnx` and writes `keras_vae.json`, in this TensorFlow-backend process."""
    import onnx
    import tensorflow as tf
    import tf2onnx

    shapes = endpoint_input_shapes(model)
    inputs = endpoint_inputs(model)
    for name, function in endpoint_functions(model).items():
        specs = [tf.TensorSpec((None, *shapes[input_name]), tf.float32, name=input_name) for input_name in inputs[name]]
        tf2onnx.convert.from_function(
            tf.function(function, autograph=False),
            input_signature=specs,
            opset=OPSET,
            custom_op_handlers={"Log1p": (_log1p, [])},
            output_path=endpoint_file(path, name),
        )
        if verbose:
            graph = onnx.load(endpoint_file(path, name)).graph
            print(f"{name}.onnx: {[i.name for i in graph.input]} -> {[o.name for o in graph.output]}")
    metadata = describe(
        model,
        "onnx",
        exported_from,
        onnx_opset=OPSET,
        onnx_version=onnx.__version__,
        tf2onnx_version=tf2onnx.__version__,
        tensorflow_version=tf.__version__,
    )
    metadata["files"] = {name: os.path.basename(endpoint_file(path, name)) for name in metadata["endpoints"]}
    write_metadata(os.path.join(path, METADATA), metadata)


def _log1p(graph, node, name, args):
    """TensorFlow's Log1p (the count likelihoods' encoder input transform), which tf2onnx lacks: log(x + 1)."""
    import numpy as np
    from tf2onnx import utils

    dtype = utils.map_onnx_to_numpy_type(graph.get_dtype(node.input[0]))
    one = graph.make_const(utils.make_name(f"{node.name}_one"), np.array(1, dtype))
    shifted = graph.make_node("Add", [node.input[0], one.output[0]], op_name_scope=node.name)
    graph.replace_input(node, node.input[0], shifted.output[0], 0)
    node.type = "Log"


def onnx_runner(path):
    """A function `(endpoint, {input name: array}) -> {output name: array}` running the export with onnxruntime."""
    import onnxruntime

    sessions = {}

    def run(name, inputs):
        if name not in sessions:
            if not os.path.isfile(endpoint_file(path, name)):
                raise ExportError(f"The export at {path} has no {name}.onnx.")
            sessions[name] = onnxruntime.InferenceSession(endpoint_file(path, name), providers=["CPUExecutionProvider"])
        session = sessions[name]
        expected = sorted(item.name for item in session.get_inputs())
        if expected != sorted(inputs):
            raise ExportError(f"The export's {name}.onnx takes {expected}; the model's {name} takes {sorted(inputs)}.")
        output_names = [item.name for item in session.get_outputs()]
        return dict(zip(output_names, session.run(output_names, inputs)))

    return run
