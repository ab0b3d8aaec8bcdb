"""He et al. (2019)'s aggressive inference-network training: the inner encoder loop and the MI switch.

`VAE` runs the inner loop in its train step; the switch, a callback, ends
aggressive mode once I(x; z) on held-out data stops rising. Both change the
model's training state, so they belong to training, not to the diagnostics.
"""

import math

import keras
import numpy as np
from keras import ops

from keras_vae import names
from keras_vae.ops import latent


def run_inner_encoder_steps(encoder_step, batches, max_steps, check_every):
    """He et al. (2019)'s inner loop: update the encoder until it stops improving.

    Runs `encoder_step(batch)` (which returns the batch loss) on up to
    `max_steps` fresh batches; every `check_every` steps it compares the mean
    loss of the last window with the window before and stops once it went up.

    Returns:
        The number of encoder updates made.
    """
    previous = math.inf
    window = []
    for step in range(1, max_steps + 1):
        window.append(encoder_step(next(batches)))
        if step % check_every == 0:
            current = float(np.mean([ops.convert_to_numpy(loss) for loss in window]))
            if current > previous:
                break
            previous, window = current, []
    return step


def first_epoch_without_rise(mutual_infos):
    """He et al. (2019)'s rule on a per-epoch I(x; z) curve: the first epoch (1-based) whose estimate is not
    above the previous epoch's, where they end aggressive mode; None if it rose every epoch."""
    for epoch in range(1, len(mutual_infos)):
        if not mutual_infos[epoch] > mutual_infos[epoch - 1]:
            return epoch + 1
    return None


class AggressiveTrainingSwitch(keras.callbacks.Callback):
    """Ends aggressive inference-network training once I(x; z) stops rising.

    He et al. (2019) train the encoder aggressively only until the mutual
    information between x and z, measured on held-out data after each epoch,
    stops climbing: in their code, as soon as an epoch's estimate is not above
    the previous epoch's. Here an epoch counts as a rise only if it beats the
    best estimate so far by more than `min_gain` (as `EarlyStopping`'s
    `min_delta`), and the mode ends after `patience` epochs in a row without
    one: the minibatch estimate is noisy, and on Penn Treebank it crept up by
    hundredths of a nat per epoch, which kept aggressive mode (and its cost)
    on for the whole run. The best starts at 0 nats, as He et al.'s previous
    estimate does: a first epoch that leaves I(x; z) under `min_gain` counts
    as no rise. `VAE.fit` puts this callback first in the list itself when
    the model was compiled with `aggressive=True`. It logs `aggressive` (1 while
    the epoch ran in aggressive mode), `encoder_steps` (mean inner encoder
    updates per iteration) and, while aggressive, `val_mutual_info`. The best
    estimate and the epochs since are model state, so the rule holds across
    `fit` calls and saves.

    Args:
        data: held-out data (anything `fit` accepts as `x`) for the estimate.
        patience: int, epochs without a new highest estimate before switching off.
        batch_size: int, minibatch size of the estimate (it is ≤ log(batch_size)).
        min_gain: float, nats by which an estimate must beat the best so far to count.
    """

    def __init__(self, data, patience=1, batch_size=128, min_gain=0.0):
        super().__init__()
        self.data = data
        self.patience = patience
        self.batch_size = batch_size
        self.min_gain = min_gain

    def on_epoch_end(self, epoch, logs=None):
        logs = {} if logs is None else logs
        model = self.model
        counts = model.pop_inner_step_counts()
        active = model.is_aggressive()
        logs[names.AGGRESSIVE] = float(active)
        logs[names.ENCODER_STEPS] = float(np.mean(counts)) if counts else 0.0
        if not active:
            return
        mutual_info = latent.latent_statistics(model, self.data, self.batch_size)["mutual_info"]
        logs[names.VAL_MUTUAL_INFO] = mutual_info
        best = float(keras.ops.convert_to_numpy(model.best_mutual_info))
        if mutual_info > best + self.min_gain:
            model.best_mutual_info.assign(mutual_info)
            model.epochs_without_mi_gain.assign(0)
            return
        model.epochs_without_mi_gain.assign_add(1)
        if int(keras.ops.convert_to_numpy(model.epochs_without_mi_gain)) >= self.patience:
            model.aggressive_mode.assign(0)
            print(
                f"Epoch {epoch + 1}: mutual information stopped rising "
                f"({mutual_info:.3f} ≤ best {best:.3f} + {self.min_gain:g} nats); aggressive "
                "encoder training is off from now on."
            )
