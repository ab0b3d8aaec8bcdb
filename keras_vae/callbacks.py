"""Keras callbacks for VAE training."""

import keras
import numpy as np

from keras_vae import training


class AggressiveTrainingSwitch(keras.callbacks.Callback):
    """Ends aggressive inference-network training once I(x; z) stops rising.

    He et al. (2019) train the encoder aggressively only until the mutual
    information between x and z, measured on held-out data after each epoch,
    stops climbing. `VAE.fit` adds this callback itself when the model was
    compiled with `aggressive=True`; it logs `aggressive` (1 while the epoch ran
    in aggressive mode), `encoder_steps` (mean inner encoder updates per
    iteration) and `mutual_info` (while aggressive).

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
        self.best = -np.inf
        self.wait = 0

    def on_epoch_end(self, epoch, logs=None):
        logs = {} if logs is None else logs
        counts = self.model.pop_inner_step_counts()
        active = self.model.is_aggressive()
        logs[training.AGGRESSIVE] = float(active)
        logs[training.ENCODER_STEPS] = float(np.mean(counts)) if counts else 0.0
        if not active:
            return
        mutual_info = training.estimate_mutual_information(self.model, self.data, self.batch_size)
        logs[training.MUTUAL_INFO] = mutual_info
        if mutual_info > self.best:
            self.best, self.wait = mutual_info, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.model.aggressive_mode.assign(0)
            print(
                f"Epoch {epoch + 1}: mutual information stopped rising "
                f"({mutual_info:.3f} ≤ best {self.best:.3f} nats); aggressive "
                "encoder training is off from now on."
            )
