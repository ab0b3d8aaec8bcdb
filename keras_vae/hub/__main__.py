"""`python -m keras_vae.hub MODEL_FILE PATH BACKEND [FORMAT]`: writes an export of a saved model (KERAS_BACKEND=tensorflow).

`keras_vae.export` runs it for the backends whose models cannot be exported in their own process.
"""

import sys
import warnings

import keras


def main(model_file, path, exported_from, format="savedmodel"):
    import keras_vae.models  # noqa: F401  (registers the classes the file names)
    from keras_vae.hub import ONNX, onnx, savedmodel

    model = keras.saving.load_model(model_file, compile=False)
    writer = onnx.write_onnx if format == ONNX else savedmodel.write_saved_model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf2onnx's deprecation notices; errors still fail
        writer(model, path, exported_from=exported_from)


if __name__ == "__main__":
    main(*sys.argv[1:])
