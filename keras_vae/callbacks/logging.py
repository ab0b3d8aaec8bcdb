"""Per-epoch log lines, and a stop at the first NaN or infinite loss."""

import keras
import numpy as np

from keras_vae import names


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
        line = f"epoch {epoch + 1:03d} | train loss={logs[names.LOSS]:.4f}"
        line += f" recon={logs[names.RECONSTRUCTION_LOSS]:.4f} kl={logs[names.KL_LOSS]:.4f}"
        beta = logs.get(names.BETA)
        if beta is not None and (beta != self._previous_beta if self._previous_beta is not None else beta != 1.0):
            line += f" beta={beta:.4f}"
        self._previous_beta = beta
        if "val_" + names.LOSS in logs:
            line += f" | val loss={logs['val_' + names.LOSS]:.4f}"
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

    It is `async_safe`: on JAX and PyTorch, Keras then reads each batch's loss
    for it on a worker thread, so the training loop does not wait for every
    step's loss; an error raised there surfaces a batch later, and at the
    latest before the epoch-end callbacks run. (Keras never dispatches
    callbacks asynchronously on TensorFlow.)
    """

    async_safe = True

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
