"""Keras callbacks that watch a VAE train: latent dynamics, plots, collapse, logs.

They read the model at epoch ends (or every N steps), after Keras has synced
the train state, so they work under jit on TensorFlow, JAX and PyTorch. Files
are written atomically into `output_dir`. Keras's own `CSVLogger`,
`TensorBoard` and `ProgbarLogger` do the rest: the summary numbers these
callbacks add to the epoch logs (`active_units`, `mutual_info`) reach them when
these callbacks come before them in the list.
"""

import csv
import os
import shutil
import warnings

import keras
import numpy as np

from keras_vae import names, plotting
from keras_vae.evaluation import diagnostics
from keras_vae.files import atomic_directory, atomic_path, write_json
from keras_vae.ops import latent


def _sync_state(model):
    # Mid-epoch, JAX keeps the state outside the variables until asked.
    if hasattr(model, "jax_state_sync"):
        model.jax_state_sync()


def _current_beta(model):
    return float(keras.ops.convert_to_numpy(model.beta_schedule(model.train_iterations)))


class LatentDynamics(keras.callbacks.Callback):
    """Logs how the encoder's σ² and KL evolve per latent dimension, and plots them.

    On a fixed probe set, at every epoch end (and every `every_n_steps`
    iterations if given), it records σ² and KL of each latent dimension, active
    units, I(x; z) and β, and rewrites `latent_dynamics.csv`,
    `latent_dynamics.json` and `latent_dynamics.png` (one line per dimension,
    β and active units beside) in `output_dir`. At epoch ends it also adds
    `active_units` and `mutual_info` to the logs. With `tensorboard_dir`, the
    per-dimension curves go to TensorBoard as scalars too.

    Args:
        data: probe inputs (anything `fit` accepts as `x`); a few thousand examples suffice.
        output_dir: str, where the files go.
        every_n_steps: int or None, also record every this many iterations.
        batch_size: int, encoding batch size; also the MI estimate's batch size.
        tensorboard_dir: str or None, a TensorBoard log directory.
    """

    def __init__(self, data, output_dir, every_n_steps=None, batch_size=128, tensorboard_dir=None):
        super().__init__()
        self.data = data
        self.output_dir = os.fspath(output_dir)
        self.every_n_steps = every_n_steps
        self.batch_size = batch_size
        self.tensorboard_dir = tensorboard_dir and os.fspath(tensorboard_dir)
        self.records = []
        self._epoch = 0
        self._writer = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.every_n_steps and (batch + 1) % self.every_n_steps == 0:
            _sync_state(self.model)
            self._record(self._epoch + (batch + 1) / max(self.params.get("steps") or batch + 1, 1))

    def on_epoch_end(self, epoch, logs=None):
        record = self._record(epoch + 1)
        if logs is not None:
            logs[names.ACTIVE_UNITS] = record["active_units"]
            logs[names.MUTUAL_INFO] = record["mutual_info"]

    def _record(self, epoch):
        record = latent.latent_statistics(self.model, self.data, self.batch_size)
        record.update(
            epoch=epoch, step=int(keras.ops.convert_to_numpy(self.model.train_iterations)), beta=_current_beta(self.model)
        )
        self.records.append(record)
        self._write(record)
        return record

    def _write(self, record):
        write_json(os.path.join(self.output_dir, "latent_dynamics.json"), self.records)
        dims = range(len(record["kl_per_dim"]))
        header = ["epoch", "step", "beta", "kl", "active_units", "mutual_info"]
        header += [f"variance_{j}" for j in dims] + [f"kl_{j}" for j in dims]
        rows = [
            [r[k] for k in header[:6]] + list(r["variance_per_dim"]) + list(r["kl_per_dim"]) for r in self.records
        ]
        with atomic_path(os.path.join(self.output_dir, "latent_dynamics.csv")) as temporary:
            np.savetxt(temporary, np.asarray(rows, float), delimiter=",", header=",".join(header), comments="", fmt="%.6g")
        plotting.plot_latent_dynamics(self.records, os.path.join(self.output_dir, "latent_dynamics.png"))
        if self.tensorboard_dir:
            import tensorflow as tf

            self._writer = self._writer or tf.summary.create_file_writer(self.tensorboard_dir)
            with self._writer.as_default():
                for j in dims:
                    tf.summary.scalar(f"latent/variance_{j}", record["variance_per_dim"][j], step=record["step"])
                    tf.summary.scalar(f"latent/kl_{j}", record["kl_per_dim"][j], step=record["step"])


class _EpochFigures(keras.callbacks.Callback):
    """Base: a figure per `every` epochs, saved as PNG (and to TensorBoard if asked)."""

    def __init__(self, output_dir, every=1, tensorboard_dir=None):
        super().__init__()
        self.output_dir = os.fspath(output_dir)
        self.every = every
        self.tensorboard_dir = tensorboard_dir and os.fspath(tensorboard_dir)

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every == 0:
            for tag, path in self.draw(epoch + 1):
                self._to_tensorboard(tag, path, epoch + 1)

    def _to_tensorboard(self, tag, path, step):
        if not self.tensorboard_dir:
            return
        import tensorflow as tf

        image = tf.io.decode_png(tf.io.read_file(path), channels=4)
        with tf.summary.create_file_writer(self.tensorboard_dir).as_default():
            tf.summary.image(tag, image[None], step=step)


class LatentSpacePlot(_EpochFigures):
    """The posterior means of a labelled probe set, as a 2-D scatter coloured by label.

    With more than two latent dimensions the scatter shows the first two
    principal components; with exactly two it is the latent plane itself, drawn
    beside the decoded images of a grid over that plane. Saves
    `latent_space_epoch_NNN.png` in `output_dir` every `every` epochs.

    Args:
        x: probe inputs (array).
        labels: array of int labels for the colours, or None.
        output_dir: str.
        every: int, epochs between figures. Defaults to `1`.
        grid_size: int, images per side of the decoded grid; 0 for none. Defaults to `15`.
        tensorboard_dir: str or None.
    """

    def __init__(self, x, labels, output_dir, every=1, grid_size=15, tensorboard_dir=None):
        super().__init__(output_dir, every, tensorboard_dir)
        self.x = x
        self.labels = labels
        self.grid_size = grid_size

    def draw(self, epoch):
        z_mean, _ = latent.encode_data(self.model, self.x)
        grid = None
        if z_mean.shape[1] == 2 and np.ndim(self.x) >= 3 and self.grid_size:
            # ±1.8 standard deviations of the prior: where the decoder has seen most codes.
            edge = np.linspace(-1.8, 1.8, self.grid_size)
            plane = np.stack(np.meshgrid(edge, edge[::-1]), axis=-1).reshape(-1, 2).astype("float32")
            grid = np.asarray(keras.ops.convert_to_numpy(self.model.decode(plane)))
        path = os.path.join(self.output_dir, f"latent_space_epoch_{epoch:03d}.png")
        plotting.plot_latent_space(z_mean, path, labels=self.labels, decoded_grid=grid, title=f"epoch {epoch}")
        return [("latent_space", path)]


class ImageGrids(_EpochFigures):
    """Samples from the prior and reconstructions of probe images, as PNG grids.

    Saves `samples_epoch_NNN.png` (`n_samples` draws of the decoder's mean at
    z ~ N(0, I)) and `reconstructions_epoch_NNN.png` (each probe image above its
    reconstruction) in `output_dir` every `every` epochs.
    """

    def __init__(self, x, output_dir, n_samples=64, every=1, tensorboard_dir=None):
        super().__init__(output_dir, every, tensorboard_dir)
        self.x = np.asarray(x)[:32]
        self.n_samples = n_samples

    def draw(self, epoch):
        to_numpy = keras.ops.convert_to_numpy
        samples = to_numpy(self.model.sample(self.n_samples))
        reconstructions = to_numpy(self.model.reconstruct(self.x))
        pairs = np.concatenate([np.concatenate([self.x[i : i + 8], reconstructions[i : i + 8]]) for i in range(0, len(self.x), 8)])
        sample_path = os.path.join(self.output_dir, f"samples_epoch_{epoch:03d}.png")
        reconstruction_path = os.path.join(self.output_dir, f"reconstructions_epoch_{epoch:03d}.png")
        plotting.plot_images(samples, sample_path, title=f"samples, epoch {epoch}")
        plotting.plot_images(pairs, reconstruction_path, title=f"inputs above reconstructions, epoch {epoch}")
        return [("samples", sample_path), ("reconstructions", reconstruction_path)]


class PosteriorCollapseWarning(UserWarning):
    """The latent code has stopped carrying information about the input."""


class CollapseMonitor(keras.callbacks.Callback):
    """Warns once, in plain words, when the run shows the red flags of posterior collapse.

    At each epoch end it measures, on the probe data: the KL (near 0 means the
    posterior is the prior), the active units (none means no dimension varies
    with the input) and I(x; z) (near 0 means z tells nothing about x). Two or
    more red flags, `patience` epochs in a row (a young model may pass through
    them), raise a `PosteriorCollapseWarning` naming the remedies.

    Args:
        data: probe inputs (anything `fit` accepts as `x`).
        kl_threshold: float, KL in nats below which KL counts as near 0. Defaults to `0.1`.
        mi_threshold: float, I(x; z) in nats below which it counts as near 0. Defaults to `0.1`.
        patience: int, consecutive epochs with the red flags before warning. Defaults to `2`.
        batch_size: int. Defaults to `128`.
    """

    def __init__(self, data, kl_threshold=0.1, mi_threshold=0.1, patience=2, batch_size=128):
        super().__init__()
        self.data = data
        self.kl_threshold = kl_threshold
        self.mi_threshold = mi_threshold
        self.patience = patience
        self.batch_size = batch_size
        self.flagged_epochs = 0
        self.warned = False

    def on_epoch_end(self, epoch, logs=None):
        if self.warned:
            return
        stats = latent.latent_statistics(self.model, self.data, self.batch_size)
        flags = []
        if stats["kl"] < self.kl_threshold:
            flags.append(f"KL is {stats['kl']:.3f} nats (near 0)")
        if stats["active_units"] == 0:
            flags.append("no latent dimension is active")
        if stats["mutual_info"] < self.mi_threshold:
            flags.append(f"I(x; z) is {stats['mutual_info']:.3f} nats (near 0)")
        self.flagged_epochs = self.flagged_epochs + 1 if len(flags) >= 2 else 0
        if self.flagged_epochs >= self.patience:
            self.warned = True
            warnings.warn(
                PosteriorCollapseWarning(
                    f"Epoch {epoch + 1}: posterior collapse: {'; '.join(flags)}. The encoder ignores its "
                    f"input and the decoder models the data without z. Remedies: {diagnostics.REMEDIES}."
                ),
                stacklevel=2,
            )


class EpochLogger(keras.callbacks.Callback):
    """One line per epoch: `epoch 005 | train loss=0.5926 recon=0.4825 kl=0.2203 | val loss=0.5779`.

    β is shown in every epoch where it differs from the epoch before, and in the
    first epoch when it is not 1.
    """

    def __init__(self, print_fn=print):
        super().__init__()
        self.print_fn = print_fn
        self._previous_beta = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        line = f"epoch {epoch + 1:03d} | train loss={logs['loss']:.4f}"
        line += f" recon={logs[names.RECONSTRUCTION_LOSS]:.4f} kl={logs[names.KL_LOSS]:.4f}"
        beta = logs.get(names.BETA)
        if beta is not None and (beta != self._previous_beta if self._previous_beta is not None else beta != 1.0):
            line += f" beta={beta:.4f}"
        self._previous_beta = beta
        if "val_loss" in logs:
            line += f" | val loss={logs['val_loss']:.4f}"
        self.print_fn(line)


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss; the run was stopped."""

    def __init__(self, epoch, batch, loss):
        super().__init__(f"the loss became {loss} in epoch {epoch + 1}, batch {batch + 1}")
        self.epoch = epoch
        self.batch = batch
        self.loss = loss


class StopOnNonFiniteLoss(keras.callbacks.TerminateOnNaN):
    """Keras's `TerminateOnNaN`, raising at once with the epoch and batch.

    Raising (rather than setting `stop_training`) ends `fit` before any
    epoch-end callback runs on the diverged weights, so no checkpoint, plot or
    statistic of them is written: the last good checkpoint stays the newest.
    """

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get(names.LOSS)
        if loss is not None and not np.isfinite(loss):
            raise NonFiniteLossError(getattr(self, "_epoch", 0), batch, float(loss))

    def on_epoch_end(self, epoch, logs=None):
        # A batch's loss predates its update: the epoch's last update can break
        # the weights unseen. The validation loss, computed after it, shows it.
        for key in (names.LOSS, "val_" + names.LOSS):
            value = (logs or {}).get(key)
            if value is not None and not np.isfinite(value):
                raise NonFiniteLossError(epoch, self.params.get("steps", 1) - 1, float(value))


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
    names = sorted(n for n in os.listdir(directory) if n.startswith("epoch-") and n[6:].isdigit())
    return [os.path.join(directory, n) for n in names]


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
