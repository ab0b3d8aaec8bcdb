"""Atomic output: write to a temporary file or directory beside the target, then rename.

A run killed mid-write leaves the previous version of the file, never half of one.
"""

import contextlib
import json
import os
import shutil
import tempfile


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path in the target's directory; renames it to `path` on success."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    suffix = os.path.splitext(path)[1]  # writers such as matplotlib read the format from it
    handle, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=directory)
    os.close(handle)
    try:
        yield temporary
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes it private; give it a normal file's mode
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


@contextlib.contextmanager
def atomic_directory(path, replace=False):
    """Yields an empty temporary directory beside `path`; renames it to `path` on success.

    On failure the temporary directory is removed and `path` is left as it was.
    With `replace=True` an existing `path` is swapped out (moved aside, then
    deleted) once the new one is complete; otherwise it must not exist.
    """
    path = os.path.abspath(path)
    parent, name = os.path.split(path)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=parent)
    try:
        yield staging
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes it private; give it a normal directory's mode
        if replace and os.path.exists(path):
            old = tempfile.mkdtemp(prefix=f".old-{name}-", dir=parent)
            os.replace(path, os.path.join(old, name))
            os.replace(staging, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(staging, path)  # fails, keeping both, if `path` appeared meanwhile
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def restore_moved_aside(parent):
    """Moves back into `parent` what `atomic_directory(replace=True)` had moved aside when a kill came between
    its two renames (so that `path` is missing); a no-op when `parent` does not exist."""
    if not os.path.isdir(parent):
        return
    for aside in os.listdir(parent):
        folder = os.path.join(parent, aside)
        if not (aside.startswith(".old-") and os.path.isdir(folder)):
            continue
        for name in os.listdir(folder):
            if not os.path.exists(os.path.join(parent, name)):
                os.replace(os.path.join(folder, name), os.path.join(parent, name))


def _umask():
    umask = os.umask(0)
    os.umask(umask)
    return umask


def write_json(path, value):
    with atomic_path(path) as temporary, open(temporary, "w") as file:
        json.dump(value, file, indent=2)
