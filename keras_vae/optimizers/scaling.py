"""The learning rate for another batch size: the linear or square-root scaling rule against a
reference batch size, and the short warm-up that a scaled-up rate needs (an optimization guide)."""

import math

import keras
from keras import ops

from keras_vae import names


def batch_size_scale(batch_size, reference_batch_size, rule):
    """The factor on a learning rate tuned at `reference_batch_size` for training at `batch_size`.

    `"linear"`: `batch_size / reference_batch_size` (Goyal et al. 2017's linear
    scaling rule); `"sqrt"`: its square root, which keeps the variance of the
    update per example constant (Krizhevsky 2014; Hoffer et al. 2017), the
    usual choice for Adam-like optimizers.
    """
    if rule not in names.LR_SCALINGS:
        raise ValueError(f"Unknown learning-rate scaling {rule!r}: use one of {names.LR_SCALINGS}.")
    if int(batch_size) < 1 or int(reference_batch_size) < 1:
        raise ValueError(
            f"Batch sizes must be positive; got batch_size={batch_size}, reference_batch_size={reference_batch_size}."
        )
    ratio = int(batch_size) / int(reference_batch_size)
    return ratio if rule == "linear" else math.sqrt(ratio)


@keras.saving.register_keras_serializable(package="keras_vae")
class WarmupLearningRate(keras.optimizers.schedules.LearningRateSchedule):
    """A learning rate (a float or a schedule) ramped up linearly over its first `warmup_steps` steps.

    At step `t` (from 0) the rate is `schedule(t) · min(1, (t + 1) / warmup_steps)`:
    the full rate is reached at the last warm-up step, and the wrapped schedule
    runs on its own clock. Keras's `CosineDecay(warmup_steps=...)` warms up only
    its own cosine; this wraps any rate.

    Args:
        learning_rate: float or `keras.optimizers.schedules.LearningRateSchedule`.
        warmup_steps: int ≥ 1.
    """

    def __init__(self, learning_rate, warmup_steps, name="WarmupLearningRate"):
        if int(warmup_steps) < 1:
            raise ValueError(f"`warmup_steps` must be a positive number of steps; got {warmup_steps}.")
        self.learning_rate = learning_rate
        self.warmup_steps = int(warmup_steps)
        self.name = name

    def __call__(self, step):
        rate = self.learning_rate(step) if callable(self.learning_rate) else self.learning_rate
        ramp = ops.minimum(1.0, (ops.cast(step, "float32") + 1.0) / float(self.warmup_steps))
        return ops.cast(rate, "float32") * ramp

    def get_config(self):
        rate = self.learning_rate
        return {
            "learning_rate": keras.saving.serialize_keras_object(rate) if callable(rate) else float(rate),
            "warmup_steps": self.warmup_steps,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config["learning_rate"], dict):
            config["learning_rate"] = keras.saving.deserialize_keras_object(config["learning_rate"])
        return cls(**config)
