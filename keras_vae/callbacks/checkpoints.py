"""Resumable checkpoints written atomically at every epoch end, and the per-epoch history as CSV."""

import csv
import json
import os
import shutil

import keras
import numpy as np

from keras_vae import names
from keras_vae.callbacks.plateau import improves
from keras_vae.files import atomic_directory, atomic_path, restore_moved_aside, write_json


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
        # What a run killed mid-save left: a directory moved aside but not yet replaced goes back, then staging
        # directories (.tmp-epoch-0003-…, .tmp-best-…), files (.tmp-….npz) and replaced ones (.old-…) go.
        restore_moved_aside(self.directory)
        if os.path.isdir(self.directory):
            for name in os.listdir(self.directory):
                path = os.path.join(self.directory, name)
                if not name.startswith((".tmp-", ".old-")):
                    continue
                if os.path.isdir(path):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    os.remove(path)

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


BEST_RECORD = "best.json"


class BestModelCheckpoint(keras.callbacks.Callback):
    """The model of the best epoch so far, written atomically: `directory/model.keras` and `directory/best.json`.

    At the end of each epoch whose `monitor` beats the best so far (by more than
    `min_delta`), the whole model is saved, with `best.json` holding `{"epoch"
    (from 1), "monitor", "value"}`; both are written into a temporary directory
    that replaces `directory` when complete, so a run killed at any moment
    leaves the previous best whole. Keras's `ModelCheckpoint(save_best_only=True)`
    writes its file in place, and forgets its best when `fit` starts again.
    `best` and `best_epoch` (from 0, as Keras's callbacks count) say which epoch it holds.

    Args:
        directory: str, where `model.keras` and `best.json` go.
        monitor: str, the logged value compared. Defaults to `"val_loss"`.
        mode: `"min"` or `"max"`. Defaults to `"min"`.
        min_delta: float ≥ 0. Defaults to `0`.
        resume: bool, start from the best recorded in `directory` (a resumed
            run) instead of the first epoch's value. Defaults to `False`.
    """

    def __init__(self, directory, monitor=names.VAL_LOSS, mode="min", min_delta=0.0, resume=False):
        super().__init__()
        if mode not in ("min", "max"):
            raise ValueError(f"`mode` must be 'min' or 'max'; got {mode!r}.")
        self.directory = os.fspath(directory)
        self.monitor = monitor
        self.mode = mode
        self.min_delta = float(min_delta)
        self.best = None
        self.best_epoch = None
        if resume:  # a kill while the best was being replaced may have left it moved aside
            restore_moved_aside(os.path.dirname(os.path.abspath(self.directory)))
        record = read_best_record(self.directory) if resume else None
        if record is not None:
            self.best, self.best_epoch = record["value"], record["epoch"] - 1

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not improves(float(value), self.best, self.mode, self.min_delta):
            return
        self.best, self.best_epoch = float(value), epoch
        with atomic_directory(self.directory, replace=True) as staging:
            self.model.save(os.path.join(staging, "model.keras"))
            write_json(
                os.path.join(staging, BEST_RECORD), {"epoch": epoch + 1, "monitor": self.monitor, "value": self.best}
            )


def read_best_record(directory):
    """`BestModelCheckpoint`'s record in `directory` (`{"epoch", "monitor", "value"}`), or None if there is none."""
    path = os.path.join(directory, BEST_RECORD)
    if not os.path.isfile(path):
        return None
    with open(path) as file:
        return json.load(file)


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
