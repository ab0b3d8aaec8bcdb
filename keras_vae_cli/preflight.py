"""Checks of a command's paths that need neither Keras nor the data, run before TensorFlow is imported.

An output that cannot be created, a run with nothing to resume, or a truncated
checkpoint is reported in milliseconds, as one line, instead of after seconds
of imports and minutes of data loading. `keras_vae.app.runs` runs the same
checks when the command line is called in-process.
"""

import os
import shutil
import tempfile
import zipfile

# A run directory's files (`keras_vae.app.runs` names the same).
CONFIG, MODEL, CHECKPOINTS, STATE = "config.json", "model.keras", "checkpoints", "state.json"


class PreflightError(ValueError):
    """A path the command cannot use: the message says which, why, and what to do."""


def check_creatable_directory(path, option):
    """`path` is a directory, or one can be created there: tried in its nearest existing parent, then removed."""
    path = os.path.abspath(path)
    if os.path.isdir(path):
        return
    parent = path
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if parent == path:
        raise PreflightError(f"{option} {path} is a file: choose a directory path for {option}.")
    if not os.path.isdir(parent):
        raise PreflightError(f"{option} {path} cannot be created: {parent} is a file, not a directory.")
    try:
        shutil.rmtree(tempfile.mkdtemp(prefix=".keras-vae-check-", dir=parent))
    except OSError as error:
        raise PreflightError(
            f"{option} {path} cannot be created in {parent} ({error.strerror or error}): choose a writable {option}."
        ) from None


def check_new_run_directory(output, overwrite=False, dataset=None):
    """`output` can hold a new run: free, or (with `overwrite`) an old run that is safe to delete; creatable."""
    if os.path.exists(output):
        if not overwrite:
            raise PreflightError(
                f"run directory {output} exists: choose another --output, pass --overwrite, or --resume {output}."
            )
        here = os.path.abspath(output)
        if os.path.isdir(here) and os.listdir(here) and not os.path.isfile(os.path.join(here, CONFIG)):
            raise PreflightError(
                f"--overwrite replaces keras-vae runs only, and {output} is not one (no {CONFIG}): "
                "choose another --output."
            )
        held = [os.getcwd()] + ([os.path.abspath(dataset)] if dataset and os.path.exists(dataset) else [])
        if any(path == here or path.startswith(here + os.sep) for path in held):
            raise PreflightError(
                f"--overwrite would delete {output}, which holds the working directory or the dataset: "
                "choose another --output."
            )
    check_creatable_directory(output, "--output")


def checkpoint_paths(run_dir):
    """The run's complete checkpoint directories (`checkpoints/epoch-NNNN`), oldest first."""
    directory = os.path.join(run_dir, CHECKPOINTS)
    if not os.path.isdir(directory):
        return []
    epochs = sorted(name for name in os.listdir(directory) if name.startswith("epoch-") and name[6:].isdigit())
    return [os.path.join(directory, name) for name in epochs]


def check_run_directory(run_dir, option="RUN_DIR"):
    """`run_dir` holds a keras-vae run (its `config.json`)."""
    missing = "no such directory" if not os.path.isdir(run_dir) else f"no {CONFIG}"
    if not os.path.isfile(os.path.join(run_dir, CONFIG)):
        raise PreflightError(
            f"{option} {run_dir} is not a keras-vae run directory ({missing}): "
            "pass the --output of a keras-vae train run."
        )


def check_resumable(run_dir, overwrite=False):
    """`run_dir` is a run with an intact newest checkpoint to continue from (and not also to be replaced)."""
    if overwrite:
        raise PreflightError("--resume continues a run and --overwrite replaces it: pass one of them.")
    check_run_directory(run_dir, "--resume")
    paths = checkpoint_paths(run_dir)
    if not paths:
        raise PreflightError(
            f"--resume {run_dir}: nothing to resume, the run has no checkpoint (it stopped before its first epoch "
            f"ended); start it again with: keras-vae train --output {run_dir} --overwrite"
        )
    check_model_file(
        os.path.join(paths[-1], MODEL),
        f"delete {paths[-1]} to resume from the checkpoint before it, or start the run again with --overwrite",
    )


def check_model_file(path, fix):
    """`path` is a complete `.keras` archive (every member's checksum read back); else says so, and `fix`."""
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except FileNotFoundError:
        raise PreflightError(f"{path} is missing: {fix}.") from None
    except (OSError, EOFError, zipfile.BadZipFile) as error:
        raise PreflightError(f"{path} is truncated or unreadable ({error}): {fix}.") from None
    if damaged is not None:
        raise PreflightError(f"{path} is damaged (its {damaged} fails its checksum): {fix}.")


def option_value(args, name):
    """The value of `--name VALUE` or `--name=VALUE` in `args`, else None."""
    for index, arg in enumerate(args):
        if arg == name and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def check_command_line(args):
    """The checks of `keras-vae train`'s run directory options (`--output`, `--overwrite`, `--resume`), from the
    raw arguments; those of a config file or a default output wait for the command line (a few seconds later)."""
    if not args or args[0] != "train" or any(arg in ("-h", "--help") for arg in args):
        return
    resume, output = option_value(args, "--resume"), option_value(args, "--output")
    if resume is not None:
        check_resumable(resume, "--overwrite" in args)
    elif output is not None:
        check_new_run_directory(output, "--overwrite" in args, option_value(args, "--dataset"))
