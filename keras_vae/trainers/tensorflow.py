"""VAE gradient steps on TensorFlow: a tape per step, one tf.function per part.

Under a `tf.distribute` strategy (the model built in its scope) each step runs
once per replica on that replica's slice of the batch; the optimizers sum the
replicas' gradients, so each replica's loss is divided by their number.
"""

import functools

import keras
import tensorflow as tf
from keras.src.trainers.trainer import model_supports_jit

from keras_vae.trainers.base import BaseVAETrainer


class VAETrainer(BaseVAETrainer):
    def _train_step(self, data, part):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        variables = self._trainable_variables_of(part)
        with tf.GradientTape() as tape:
            loss = self._part_loss(x, part)
            # Keras scales its own losses for the replicas, not a custom one
            # (measured: steps twice as large on two replicas without this).
            scaled_loss = scale_loss_for_replicas(loss)
        if not self.optimizer.built:
            # Keras's TF trainer defers building to the first trace (after the
            # forward pass, which may create variables); the pair optimizer must
            # see every variable, not only this part's.
            self.optimizer.build(self.trainable_variables)
        self.optimizer.apply(tape.gradient(scaled_loss, variables), variables)
        return loss if part in self._loss_only_parts else self.get_metrics_result()

    def _distributed_step(self, data, part):
        strategy = self.distribute_strategy
        if not self.optimizer.built and strategy.num_replicas_in_sync > 1:
            self.optimizer.build(self.trainable_variables)  # replicas cannot create variables
        outputs = strategy.run(functools.partial(self._train_step, part=part), args=(data,))
        return tf.nest.map_structure(lambda value: strategy.reduce("MEAN", value, axis=None), outputs)

    def _compile_part_step(self, part):
        step = functools.partial(self._distributed_step, part=part)
        if self.run_eagerly:
            return step
        return tf.function(step, jit_compile=self.jit_compile, reduce_retracing=True)

    def _keras_train_function(self):
        def train_function(iterator):
            return self._run_iteration(next(iterator), self._run_part_step, aggressive=self.is_aggressive())

        return train_function

    def _run_part_step(self, part, data):
        return self._part_steps[part](self._distribute_batch(data))

    def _distribute_batch(self, batch):
        """A batch that is not yet split (the inner loop's, `train_part_on_batch`'s) split over the replicas."""
        strategy = self.distribute_strategy
        if strategy.num_replicas_in_sync == 1:
            return batch
        leaves = tf.nest.flatten(batch)
        if any(isinstance(leaf, tf.distribute.DistributedValues) for leaf in leaves):
            return batch
        batch = tf.nest.map_structure(tf.convert_to_tensor, batch)
        replicas = strategy.num_replicas_in_sync

        def replica_slice(context):
            i = context.replica_id_in_sync_group

            def cut(tensor):
                size = tf.shape(tensor)[0]
                return tensor[i * size // replicas : (i + 1) * size // replicas]

            return tf.nest.map_structure(cut, batch)

        return strategy.experimental_distribute_values_from_function(replica_slice)

    # Keras internals, the only ones keras-vae uses on TensorFlow: Keras has no
    # public hook for the first-batch build of `fit` under a strategy, nor for
    # what `jit_compile="auto"` means.
    def _resolve_auto_jit_compile(self):
        # Keras leaves XLA off on a CPU-only machine; there the VAE's steps ran 9% faster with it (the
        # default MLP, benchmarks/throughput.py). Off under tf.distribute, as in Keras.
        return not self._distribute_strategy and model_supports_jit(self)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras (3.15) averages the first batch over the replicas only to read its
        # shapes, which fails when it does not split evenly (19 examples on two
        # devices); the first replica's slice has the shapes too.
        strategy = self.distribute_strategy
        if iterator is None or strategy.num_replicas_in_sync == 1:
            return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
        for _, _, batches in iterator:
            data_batch = tf.nest.map_structure(
                lambda value: (
                    strategy.experimental_local_results(value)[0]
                    if isinstance(value, tf.distribute.DistributedValues)
                    else value
                ),
                next(batches),
            )
            break
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)


def scale_loss_for_replicas(loss):
    """`loss` over the replicas in sync: the strategy sums their gradients."""
    context = tf.distribute.get_replica_context()
    replicas = context.num_replicas_in_sync if context is not None else 1
    return loss if replicas == 1 else loss / replicas


def compile_inference(model, fn):
    """`fn(*tensors)`, a function that reads `model`'s variables, as one graph.

    A `tf.function` reads variables when it runs, so the weights are never
    stale. Without XLA: the graph's oneDNN matrix products were as fast on CPU,
    and there is no XLA compilation per input shape.
    """
    return tf.function(fn, jit_compile=False)
