"""VAE gradient steps on PyTorch: backward pass, then the part's optimizer."""

import keras
import torch

from keras_vae import training as loop


class VAETrainer:
    def _train_step(self, data, part):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        self.zero_grad()
        loss = self._step_loss(x, part)
        loss.backward()
        variables = self._trainable_variables_of(part)
        with torch.no_grad():
            self.optimizer.apply([v.value.grad for v in variables], variables)
        return loss.detach() if part == loop.ENCODER else self.get_metrics_result()

    def make_train_function(self, force=False):
        if self.train_function is not None and not force:
            return self.train_function

        def train_function(data):
            # Keras's torch fit passes a list of one batch.
            return self._run_iteration(
                data[0], lambda part, batch: self._train_step(batch, part), aggressive=self.is_aggressive()
            )

        self.train_function = train_function
        return train_function

    def train_part_on_batch(self, x, part):
        """One gradient step on `part` (`"encoder"`, `"decoder"` or `"joint"`) of the batch `x`.

        The building block of aggressive training; an encoder step leaves the
        metrics and the β schedule's iteration counter unchanged.
        """
        return self._train_step((x,), part)
