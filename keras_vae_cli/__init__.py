"""The `keras-vae` console script: checks paths, selects the Keras backend, then runs the command line.

Keras reads `KERAS_BACKEND` once, when it is first imported, and `import keras_vae`
imports Keras (and TensorFlow, seconds of CPU). So this package, which is outside
`keras_vae` and imports nothing heavy, first runs the checks that need neither
(`preflight`), reads the backend a command asks for (`--backend`, else the
`backend` key of its `--config` section), and hides TensorFlow's native log
noise (`native_logs`), before it imports `keras_vae.app.cli`. The command line
itself checks and reports bad values.
"""

import json
import os
import sys
import tomllib

from keras_vae_cli import native_logs, preflight


def requested_backend(args):
    """The backend named by `--backend`, else by the command's `--config` section, else None."""
    backend = preflight.option_value(args, "--backend")
    config = preflight.option_value(args, "--config")
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
    try:
        preflight.check_command_line(args)
    except preflight.PreflightError as error:
        print(f"Error: {error}", file=sys.stderr)
        sys.exit(2)
    backend = requested_backend(args)
    if backend is not None and "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = backend
    verbose = any(arg in ("--verbose", "-v") for arg in args)
    with native_logs.filtered(enabled=not verbose):
        from keras_vae.app.cli import main as cli

        cli(args, prog_name="keras-vae")
