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

class VAETrainer:
    def _train_step(self, state, data, part):
        trainable, non_trainable, optimizer_values, metrics_values = state
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        indices = self._trainable_indices(part)

        def loss_fn(part_values):
            values = list(trainable)
            for i, value in zip(indices, part_values):
                values[i] = value
            mapping = [
                *zip(self.trainable_variables, values),
                *zip(self.non_trainable_variables, non_trainable),
                *zip(self.metrics_variables, metrics_values),
            ]
            with keras.StatelessScope(state_mapping=mapping) as scope:
                loss = self._step_loss(x, part)
            return loss, (
                [scope.get_current_value(v) for v in self.non_trainable_variables],
                [scope.get_current_value(v) for v in self.metrics_variables],
            )

        (loss, (non_trainable, metrics_values)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            [trainable[i] for i in indices]
        )
        gradient_of = dict(zip(indices, grads))
        trainable, optimizer_values = list(trainable), list(optimizer_values)
        for name, (optimizer, variables) in self.optimizer.parts().items():
            if part not in (name, names.JOINT):
                continue
            owned = self._trainable_indices(name)
            new_values, optimizer_values[variables] = optimizer.stateless_apply(
                optimizer_values[variables], [gradient_of[i] for i in owned], [trainable[i] for i in owned]
            )
            for i, value in zip(owned, new_values):
                trainable[i] = value

        if part == names.ENCODER:
            logs = loss
        else:
            with keras.StatelessScope(state_mapping=list(zip(self.metrics_variables, metrics_values))):
                logs = self.get_metrics_result()
        return logs, (trainable, non_trainable, optimizer_values, metrics_values)

    def make_train_function(self, force=False):
        if self.train_function is not None and not force:
            return self.train_function
        self._part_steps = {}
        for part in names.PARTS:
            step = functools.partial(self._train_step, part=part)
            if not self.run_eagerly and self.jit_compile:
                step = jax.jit(step, donate_argnums=0)
            self._part_steps[part] = step
        flag = next(i for i, v in enumerate(self.non_trainable_variables) if v is self.aggressive_mode)

        def train_function(state, iterator):
            def run_step(part, batch):
                nonlocal state
                logs, state = self._part_steps[part](state, _distribute_batch(batch))
                return logs

            # The mode is model state: read it from the state being trained.
            logs = self._run_iteration(next(iterator), run_step, aggressive=bool(state[1][flag]))
            return logs, state

        self.train_function = train_function
        return train_function

    def _train_part_on_batch(self, x, part):
        self.make_train_function()
        state = self._get_jax_state(
            trainable_variables=True, non_trainable_variables=True, optimizer_variables=True, metrics_variables=True
        )
        logs, state = self._part_steps[part](state, _distribute_batch((x,)))
        for variables, values in zip(
            (self.trainable_variables, self.non_trainable_variables, self.optimizer.variables, self.metrics_variables),
            state,
        ):
            for variable, value in zip(variables, values):
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
        with keras.StatelessScope(state_mapping=list(zip(variables, values))):
            return fn(*args)

    return lambda *args: stateless([v.value for v in variables], *args)


def scale_loss_for_replicas(loss):
    """`loss` unchanged: a jitted step on a sharded batch already means over the global batch."""
    return loss
