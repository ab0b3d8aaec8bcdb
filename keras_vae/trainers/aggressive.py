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


class AggressiveTrainingSwitch(keras.callbacks.Callback):
    """Ends aggressive inference-network training once I(x; z) stops rising.

    He et al. (2019) train the encoder aggressively only until the mutual
    information between x and z, measured on held-out data after each epoch,
    stops climbing. `VAE.fit` puts this callback first in the list itself when
    the model was compiled with `aggressive=True`. It logs `aggressive` (1 while
    the epoch ran in aggressive mode), `encoder_steps` (mean inner encoder
    updates per iteration) and, while aggressive, `val_mutual_info`. The best
    estimate and the epochs since are model state, so the rule holds across
    `fit` calls and saves.

    Args:
        data: held-out data (anything `fit` accepts as `x`) for the estimate.
        patience: int, epochs without a new highest estimate before switching off.
        batch_size: int, minibatch size of the estimate (it is ≤ log(batch_size)).
    """

    def __init__(self, data, patience=1, batch_size=128):
        super().__init__()
        self.data = data
        self.patience = patience
        self.batch_size = batch_size

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
        if mutual_info > best:
            model.best_mutual_info.assign(mutual_info)
            model.epochs_without_mi_gain.assign(0)
            return
        model.epochs_without_mi_gain.assign_add(1)
        if int(keras.ops.convert_to_numpy(model.epochs_without_mi_gain)) >= self.patience:
            model.aggressive_mode.assign(0)
            print(
                f"Epoch {epoch + 1}: mutual information stopped rising "
                f"({mutual_info:.3f} ≤ best {best:.3f} nats); aggressive "
                "encoder training is off from now on."
            )
