"""VAE gradient steps on PyTorch: the gradients of the part's variables, then the part's optimizer."""

import functools

import keras
import torch

from keras_vae.trainers.base import BaseVAETrainer


class VAETrainer(BaseVAETrainer):
    def _train_step(self, data, part, variables):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        loss = self._part_loss(x, part)
        # The gradients of this part's variables only: autograd then skips the others' (an encoder step
        # backpropagates through the decoder to z, without the decoder's weight gradients).
        gradients = torch.autograd.grad(loss, [v.value for v in variables], allow_unused=True)
        with torch.no_grad():
            self.optimizer.apply(list(gradients), variables)
        return loss.detach() if part in self._loss_only_parts else self.get_metrics_result()

    def _compile_part_step(self, part):
        # The variables looked up once: walking the layers for them on every step costs time.
        step = functools.partial(self._train_step, part=part, variables=self._trainable_variables_of(part))
        if self.run_eagerly or not self.jit_compile:
            return step
        return torch.compile(step)

    def _keras_train_function(self):
        def train_function(data):
            # Keras's torch fit passes a list of one batch.
            return self._run_iteration(data[0], self._run_part_step, aggressive=self.is_aggressive())

        return train_function

    def _run_part_step(self, part, data):
        return self._part_steps[part](data)


def compile_inference(model, fn):
    """`fn(*tensors)`, a function that reads `model`'s variables, run without autograd.

    It runs eagerly on the live variables, recording nothing for gradients.
    (`torch.compile` compiles once per input shape, which for the default MLP
    on CPU took longer than small evaluations take in all.)
    """

    def run(*args):
        with torch.inference_mode():
            return fn(*args)

    return run


def scale_loss_for_replicas(loss):
    """`loss` unchanged: Keras has no distribution API for PyTorch."""
    return loss
