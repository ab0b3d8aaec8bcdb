"""`LatentDynamics`: σ² and KL of each latent dimension, active units and I(x; z) over training, as CSV, JSON and a figure."""

import os

import keras
import numpy as np

from keras_vae import names
from keras_vae.files import atomic_path, write_json
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
    units, I(x; z) and β, and rewrites `latent_dynamics.csv` and
    `latent_dynamics.json` in `output_dir`; every `figure_every` epochs and
    after the last, `latent_dynamics.png` too (one line per dimension, β and
    active units beside). At epoch ends it also adds
    `active_units` and `mutual_info` to the logs. With `tensorboard_dir`, the
    per-dimension curves go to TensorBoard as scalars too.

    Args:
        data: probe inputs (anything `fit` accepts as `x`); a few thousand examples suffice.
        output_dir: str, where the files go.
        every_n_steps: int or None, also record every this many iterations.
        batch_size: int, encoding batch size; also the MI estimate's batch size.
        tensorboard_dir: str or None, a TensorBoard log directory.
        figure_every: int, epochs between redrawn figures. Defaults to `1`.
    """

    def __init__(self, data, output_dir, every_n_steps=None, batch_size=128, tensorboard_dir=None, figure_every=1):
        super().__init__()
        self.data = data
        self.output_dir = os.fspath(output_dir)
        self.every_n_steps = every_n_steps
        self.batch_size = batch_size
        self.tensorboard_dir = tensorboard_dir and os.fspath(tensorboard_dir)
        self.figure_every = figure_every
        # Without mid-epoch records its batch hook does nothing: Keras may then run the batch hooks on a worker
        # thread instead of reading every step's logs in the training loop.
        self.async_safe = not every_n_steps
        self.records = []
        self._epoch = 0
        self._writer = None
        self._drawn = None

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
        if (epoch + 1) % self.figure_every == 0:
            self._draw()

    def on_train_end(self, logs=None):
        if self.records and self._drawn != len(self.records):
            self._draw()

    def _draw(self):
        from keras_vae import plotting  # matplotlib: only once a figure is drawn

        self._drawn = len(self.records)
        plotting.plot_latent_dynamics(self.records, os.path.join(self.output_dir, "latent_dynamics.png"))

    def _record(self, epoch):
        record = latent.latent_statistics(self.model, self.data, self.batch_size)
        record.update(
            epoch=epoch,
            step=int(keras.ops.convert_to_numpy(self.model.train_iterations)),
            beta=_current_beta(self.model),
        )
        self.records.append(record)
        self._write(record)
        return record

    def _write(self, record):
        write_json(os.path.join(self.output_dir, "latent_dynamics.json"), self.records)
        dims = range(len(record["kl_per_dim"]))
        header = ["epoch", "step", "beta", "kl", "active_units", "mutual_info"]
        header += [f"variance_{j}" for j in dims] + [f"kl_{j}" for j in dims]
        rows = [[r[k] for k in header[:6]] + list(r["variance_per_dim"]) + list(r["kl_per_dim"]) for r in self.records]
        with atomic_path(os.path.join(self.output_dir, "latent_dynamics.csv")) as temporary:
            np.savetxt(
                temporary, np.asarray(rows, float), delimiter=",", header=",".join(header), comments="", fmt="%.6g"
            )
        if self.tensorboard_dir:
            import tensorflow as tf

            self._writer = self._writer or tf.summary.create_file_writer(self.tensorboard_dir)
            with self._writer.as_default():
                for j in dims:
                    tf.summary.scalar(f"latent/variance_{j}", record["variance_per_dim"][j], step=record["step"])
                    tf.summary.scalar(f"latent/kl_{j}", record["kl_per_dim"][j], step=record["step"])
