"""VAE gradient steps on PyTorch: backward pass, then the part's optimizer."""

import keras
import torch

from keras_vae import names


class VAETrainer:
    def _train_step(self, data, part, variables):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        self.zero_grad()
        loss = self._step_loss(x, part)
        loss.backward()
        with torch.no_grad():
            self.optimizer.apply([v.value.grad for v in variables], variables)
        return loss.detach() if part == names.ENCODER else self.get_metrics_result()

    def make_train_function(self, force=False):
        if self.train_function is not None and not force:
            return self.train_function
        # Looked up once: walking the layers for them on every step costs time.
        part_variables = {part: self._trainable_variables_of(part) for part in names.PARTS}

        def run_step(part, batch):
            return self._train_step(batch, part, part_variables[part])

        def train_function(data):
            # Keras's torch fit passes a list of one batch.
            return self._run_iteration(data[0], run_step, aggressive=self.is_aggressive())

        self.train_function = train_function
        return train_function

    def _train_part_on_batch(self, x, part):
        return self._train_step((x,), part, self._trainable_variables_of(part))


def compile_inference(model, fn):
    """`fn(*tensors)`, a function that reads `model`'s variables, run without autograd.

    It runs eagerly on the live variables, recording nothing for gradients.
    (`torch.compile` took 40 s per input shape for the default MLP on CPU:
    longer than small evaluations take in all.)
    """

    def run(*args):
        with torch.inference_mode():
            return fn(*args)

    return run


def scale_loss_for_replicas(loss):
    """`loss` unchanged: Keras has no distribution API for PyTorch."""
    return loss
