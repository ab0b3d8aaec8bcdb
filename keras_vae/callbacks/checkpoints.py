"""Resumable checkpoints written atomically at every epoch end, and the per-epoch history as CSV."""

import csv
import os
import shutil

import keras
import numpy as np

from keras_vae.files import atomic_directory, atomic_path, write_json


class RunCheckpoint(keras.callbacks.Callback):
    """A resumable checkpoint at every epoch end, written atomically.

    Each checkpoint is a directory `directory/epoch-NNNN/` holding `model.keras`
    (weights, both optimizers' state, the β schedule's iteration counter and the
    aggressive-training state: all of it is in the model) and `state.json` (the
    epoch, the history so far and `extra_state()`). It is written under a
    temporary name and renamed when complete, so a run killed at any moment
    leaves only complete checkpoints; `keep` of the newest are kept. With
    `history_csv`, the history is also rewritten there (atomically) each epoch.

    Keras's `BackupAndRestore` writes its weights and its epoch counter as two
    files, in place, one after the other: a kill between or during them leaves a
    backup that does not match its counter. Hence this callback.

    Args:
        directory: str, where the `epoch-NNNN` directories go.
        keep: int, checkpoints kept. Defaults to `2`.
        history: dict of per-epoch lists to continue (from a resumed checkpoint).
        extra_state: callable returning a JSON-serializable dict, or None.
        history_csv: str or None.
    """

    def __init__(self, directory, keep=2, history=None, extra_state=None, history_csv=None):
        super().__init__()
        self.directory = os.fspath(directory)
        self.keep = keep
        self.history = {key: list(values) for key, values in (history or {}).items()}
        self.extra_state = extra_state
        self.history_csv = history_csv

    def on_train_begin(self, logs=None):
        # Staging directories of a run killed mid-save.
        if os.path.isdir(self.directory):
            for name in os.listdir(self.directory):
                if name.startswith((".tmp-epoch-", ".old-epoch-")):
                    shutil.rmtree(os.path.join(self.directory, name), ignore_errors=True)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        done = len(next(iter(self.history.values()), []))
        for key in set(self.history) | set(logs):
            # A key that appears later (e.g. val_mutual_info) is padded with NaN.
            self.history.setdefault(key, [float("nan")] * done).append(float(logs.get(key, float("nan"))))
        state = {"epoch": epoch + 1, "history": self.history}
        if self.extra_state is not None:
            state.update(self.extra_state())
        with atomic_directory(os.path.join(self.directory, f"epoch-{epoch + 1:04d}"), replace=True) as staging:
            self.model.save(os.path.join(staging, "model.keras"))
            write_json(os.path.join(staging, "state.json"), state)
        for old in checkpoint_paths(self.directory)[: -self.keep]:
            shutil.rmtree(old, ignore_errors=True)
        if self.history_csv:
            write_history_csv(self.history_csv, self.history)


def checkpoint_paths(directory):
    """Complete `RunCheckpoint` directories in `directory`, oldest first."""
    if not os.path.isdir(directory):
        return []
    epochs = sorted(n for n in os.listdir(directory) if n.startswith("epoch-") and n[6:].isdigit())
    return [os.path.join(directory, n) for n in epochs]


def write_history_csv(path, history):
    """Writes per-epoch lists as `CSVLogger` does (an `epoch` column, then sorted keys), atomically."""
    keys = sorted(history)
    epochs = len(history[keys[0]]) if keys else 0
    with atomic_path(path) as temporary, open(temporary, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["epoch", *keys])
        for epoch in range(epochs):
            writer.writerow([epoch, *(_csv_value(history[key][epoch]) for key in keys)])


def _csv_value(value):
    return "NA" if value is None or (isinstance(value, float) and np.isnan(value)) else repr(float(value))
