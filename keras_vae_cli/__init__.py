"""The `keras-vae` console script: selects the Keras backend, then runs the command line.

Keras reads `KERAS_BACKEND` once, when it is first imported, and `import keras_vae`
imports Keras. So this module, which is outside the `keras_vae` package and
imports nothing heavy, reads the backend a command asks for (`--backend`, else
the `backend` key of its `--config` section) before it imports
`keras_vae.app.cli`. The command line itself checks and reports bad values.
"""

import json
import os
import sys
import tomllib

# TensorFlow's C++ INFO lines (CUDA probing, oneDNN notes) would bury the progress bar.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _option(args, name):
    """The value of `--name VALUE` or `--name=VALUE` in `args`, else None."""
    for index, arg in enumerate(args):
        if arg == name and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def requested_backend(args):
    """The backend named by `--backend`, else by the command's `--config` section, else None."""
    backend = _option(args, "--backend")
    config = _option(args, "--config")
    if backend is None and config is not None:
        command = next((arg for arg in args if not arg.startswith("-")), None)
        try:
            with open(config, "rb") as file:
                sections = json.load(file) if config.endswith(".json") else tomllib.load(file)
            section = sections.get("train" if command == "lr-find" else command, {})
            backend = section.get("backend") if isinstance(section, dict) else None
        except (OSError, ValueError, AttributeError):
            backend = None  # the command line reports an unreadable file in one line
    return backend if isinstance(backend, str) else None


def main(args=None):
    args = sys.argv[1:] if args is None else list(args)
    backend = requested_backend(args)
    if backend is not None and "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = backend
    from keras_vae.app.cli import main as cli

    cli(args, prog_name="keras-vae")
