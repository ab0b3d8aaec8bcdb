"""VAE gradient steps on JAX: stateless, jitted, one compiled step per part.

Keras's JAX trainer threads the state (trainable, non-trainable, optimizer and
metric variables) through `train_function(state, iterator)`; each part's step
differentiates with respect to its own variables and applies only its own
optimizer's stateless update, so the other part's weights and optimizer slots
pass through untouched. Under a `keras.distribution` (DataParallel), the batch
is sharded over the devices and the jitted step computes the global-batch mean
with XLA's all-reduce: nothing to scale.
"""

import functools

import jax
import keras
import numpy as np

from keras_vae import names
from keras_vae.trainers.base import BaseVAETrainer


class VAETrainer(BaseVAETrainer):
    def _train_step(self, state, data, part):
        trainable, non_trainable, optimizer_values, metrics_values = state
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        indices = self._trainable_indices(part)

        def loss_fn(part_values):
            values = list(trainable)
            for i, value in zip(indices, part_values, strict=True):
                values[i] = value
            mapping = [
                *zip(self.trainable_variables, values, strict=True),
                *zip(self.non_trainable_variables, non_trainable, strict=True),
                *zip(self.metrics_variables, metrics_values, strict=True),
            ]
            with keras.StatelessScope(state_mapping=mapping) as scope:
                loss = self._part_loss(x, part)
            return loss, (
                [scope.get_current_value(v) for v in self.non_trainable_variables],
                [scope.get_current_value(v) for v in self.metrics_variables],
            )

        (loss, (non_trainable, metrics_values)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            [trainable[i] for i in indices]
        )
        gradient_of = dict(zip(indices, grads, strict=True))
        trainable, optimizer_values = list(trainable), list(optimizer_values)
        for name, (optimizer, variables) in self.optimizer.parts().items():
            if part not in (name, names.JOINT):
                continue
            owned = self._trainable_indices(name)
            new_values, optimizer_values[variables] = optimizer.stateless_apply(
                optimizer_values[variables], [gradient_of[i] for i in owned], [trainable[i] for i in owned]
            )
            for i, value in zip(owned, new_values, strict=True):
                trainable[i] = value

        if part in self._loss_only_parts:
            logs = loss
        else:
            with keras.StatelessScope(state_mapping=list(zip(self.metrics_variables, metrics_values, strict=True))):
                logs = self.get_metrics_result()
        return logs, (trainable, non_trainable, optimizer_values, metrics_values)

    def _compile_part_step(self, part):
        step = functools.partial(self._train_step, part=part)
        if self.run_eagerly or not self.jit_compile:
            return step
        return jax.jit(step, donate_argnums=0)

    def _keras_train_function(self):
        flag = next(i for i, v in enumerate(self.non_trainable_variables) if v is self.aggressive_mode)

        def train_function(state, iterator):
            def run_step(part, batch):
                nonlocal state
                logs, state = self._part_steps[part](state, _distribute_batch(batch))
                return logs

            # The mode is model state: read it from the state being trained.
            logs = self._run_iteration(next(iterator), run_step, aggressive=bool(state[1][flag]))
            return logs, state

        return train_function

    def _run_part_step(self, part, data):
        # The state in Keras's order (what its JAX `fit` passes to `train_function`).
        groups = (
            self.trainable_variables,
            self.non_trainable_variables,
            self.optimizer.variables,
            self.metrics_variables,
        )
        state = tuple([variable.value for variable in group] for group in groups)
        logs, state = self._part_steps[part](state, _distribute_batch(data))
        for group, values in zip(groups, state, strict=True):
            for variable, value in zip(group, values, strict=True):
                variable.assign(value)
        return logs


def _distribute_batch(batch):
    """A batch that is not yet sharded (the inner loop's, `train_part_on_batch`'s) sharded
    as Keras shards `fit`'s batches: over the distribution's batch axis, each
    process giving its own examples."""
    distribution = keras.distribution.distribution()
    if distribution is None:
        return batch

    def shard(array):
        if isinstance(array, jax.Array) and len(array.sharding.device_set) > 1:
            return array  # fit's batches come sharded
        layout = distribution.get_data_layout(array.shape).backend_layout
        return jax.make_array_from_process_local_data(layout, np.asarray(array))

    return jax.tree_util.tree_map(shard, batch)


def compile_inference(model, fn):
    """`fn(*arrays)`, a function that reads `model`'s variables, jitted.

    The variables' current values are passed in at every call, so the compiled
    function never sees stale weights.
    """
    variables = model.variables

    @jax.jit
    def stateless(values, *args):
        with keras.StatelessScope(state_mapping=list(zip(variables, values, strict=True))):
            return fn(*args)

    return lambda *args: stateless([v.value for v in variables], *args)


def scale_loss_for_replicas(loss):
    """`loss` unchanged: a jitted step on a sharded batch already means over the global batch."""
    return loss
