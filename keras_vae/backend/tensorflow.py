"""VAE gradient steps on TensorFlow: a tape per step, one tf.function per part."""

import functools

import keras
import tensorflow as tf

from keras_vae import training as loop


class VAETrainer:
    def _train_step(self, data, part):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        variables = self._trainable_variables_of(part)
        with tf.GradientTape() as tape:
            loss = self._step_loss(x, part)
        if not self.optimizer.built:
            # Keras's TF trainer defers building to the first trace; the pair
            # optimizer must see every variable, not only this part's.
            self.optimizer.build(self.trainable_variables)
        self.optimizer.apply(tape.gradient(loss, variables), variables)
        return loss if part == loop.ENCODER else self.get_metrics_result()

    def make_train_function(self, force=False):
        if self.train_function is not None and not force:
            return self.train_function
        self._part_steps = {}
        for part in loop.PARTS:
            step = functools.partial(self._train_step, part=part)
            if not self.run_eagerly:
                step = tf.function(step, jit_compile=self.jit_compile, reduce_retracing=True)
            self._part_steps[part] = step

        def train_function(iterator):
            return self._run_iteration(
                next(iterator),
                lambda part, batch: self._part_steps[part](batch),
                aggressive=self.is_aggressive(),
            )

        self.train_function = train_function
        return train_function

    def _train_part_on_batch(self, x, part):
        self.make_train_function()
        return self._part_steps[part]((x,))


def compile_inference(model, fn):
    """`fn(*tensors)`, a function that reads `model`'s variables, as one graph.

    A `tf.function` reads variables when it runs, so the weights are never
    stale. Without XLA: the graph's oneDNN matrix products were as fast on CPU,
    and there is no XLA compilation per input shape.
    """
    return tf.function(fn, jit_compile=False)
