"""What every keras-vae model shares with `keras.Model.compile`: it computes its own loss, and the arguments
of its `compile` go into its `.keras` file."""

import keras

LOSS_ARGUMENTS = ("loss", "metrics", "loss_weights", "weighted_metrics")


class ComputesOwnLoss:
    """A mixin for a `keras.Model` that computes its own loss.

    `refuse_loss_arguments(kwargs)` is called by its `compile`, which keeps
    its arguments in `self._compile_arguments`; `get_compile_config` and
    `compile_from_config` save them and compile again on load.
    """

    def refuse_loss_arguments(self, kwargs):
        for name in LOSS_ARGUMENTS:
            if kwargs.get(name) is not None:
                raise ValueError(f"{type(self).__name__} computes its own loss; remove `{name}` from compile().")

    def get_compile_config(self):
        if not self.compiled:
            return None
        return {k: keras.saving.serialize_keras_object(v) for k, v in self._compile_arguments.items()}

    def compile_from_config(self, config):
        self.compile(**{k: keras.saving.deserialize_keras_object(v) for k, v in config.items()})
        if self.built:
            self.optimizer.build(self.trainable_variables)
