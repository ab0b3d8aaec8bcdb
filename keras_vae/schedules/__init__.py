"""β (KL weight) and learning-rate schedules: functions of the training iteration, in `keras.ops`.

A `VAE` evaluates its β schedule inside the train step, on an iteration counter
that is part of the model's state, so the schedule takes effect under jit on
every backend and survives a save and reload. Learning-rate schedules are
`keras.optimizers.schedules.LearningRateSchedule`s, evaluated by the optimizer on
its own step counter; Keras's own are used wherever one exists. All schedules
are serializable.
"""

from keras_vae.schedules.beta import BetaSchedule, Constant, CosineWarmup, Cyclical, LinearWarmup, get
from keras_vae.schedules.learning_rate import CyclicalLearningRate, learning_rate_schedule, one_cycle

__all__ = [
    "BetaSchedule",
    "Constant",
    "CosineWarmup",
    "Cyclical",
    "CyclicalLearningRate",
    "LinearWarmup",
    "get",
    "learning_rate_schedule",
    "one_cycle",
]
