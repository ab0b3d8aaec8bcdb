"""`CollapseMonitor`: a warning, in plain words, when a training VAE shows the red flags of posterior collapse."""

import warnings

import keras

from keras_vae.evaluation import diagnostics
from keras_vae.ops import latent


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
