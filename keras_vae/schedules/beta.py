"""β (KL weight) schedules: functions of the training iteration, in `keras.ops`.

A `VAE` evaluates its β schedule inside the train step, on an iteration counter
that is part of the model's state, so the schedule takes effect under jit on
every backend and survives a save and reload.
"""

import math

import keras
from keras import ops


class BetaSchedule:
    """Base class: `schedule(step)` returns β as a float32 scalar tensor.

    Subclasses implement `__call__(step)` with `keras.ops` and `get_config()`.
    """

    def __call__(self, step):
        raise NotImplementedError

    def get_config(self):
        raise NotImplementedError

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({arguments})"


def _progress(step, steps):
    """min(step / steps, 1) as float32; 1 from the start when steps is 0."""
    if steps <= 0:
        return ops.ones((), dtype="float32")
    return ops.minimum(ops.cast(step, "float32") / float(steps), 1.0)


def _check_range(start, end):
    if start < 0 or end < 0:
        raise ValueError(f"β must be ≥ 0; got start={start}, end={end}.")


@keras.saving.register_keras_serializable(package="keras_vae")
class Constant(BetaSchedule):
    """β fixed at `value` (1.0 is the plain ELBO)."""

    def __init__(self, value=1.0):
        _check_range(value, value)
        self.value = float(value)

    def __call__(self, step):
        return ops.full((), self.value, dtype="float32")

    def get_config(self):
        return {"value": self.value}


@keras.saving.register_keras_serializable(package="keras_vae")
class LinearWarmup(BetaSchedule):
    """β rises linearly from `start` to `end` over `warmup_steps`, then stays.

    He et al. (2019)'s `kl_start` / `warm_up` annealing is
    `LinearWarmup(warm_up * steps_per_epoch, start=kl_start)`.

    Args:
        warmup_steps: int, iterations of the ramp.
        start: float, β at step 0. Defaults to `0.0`.
        end: float, β from `warmup_steps` on. Defaults to `1.0`.
    """

    def __init__(self, warmup_steps, start=0.0, end=1.0):
        _check_range(start, end)
        self.warmup_steps = int(warmup_steps)
        self.start = float(start)
        self.end = float(end)

    def __call__(self, step):
        return self.start + (self.end - self.start) * _progress(step, self.warmup_steps)

    def get_config(self):
        return {"warmup_steps": self.warmup_steps, "start": self.start, "end": self.end}


@keras.saving.register_keras_serializable(package="keras_vae")
class CosineWarmup(LinearWarmup):
    """Like `LinearWarmup`, but along half a cosine: slow, fast, then slow again."""

    def __call__(self, step):
        ramp = 0.5 * (1.0 - ops.cos(math.pi * _progress(step, self.warmup_steps)))
        return self.start + (self.end - self.start) * ramp


_RAMPS = ("linear", "cosine", "sigmoid")


@keras.saving.register_keras_serializable(package="keras_vae")
class Cyclical(BetaSchedule):
    """Cyclical annealing (Fu et al., 2019).

    `total_steps` is split into `n_cycles` periods. In each, β ramps from `start`
    to `end` during the first `ratio` of the period and holds `end` for the rest;
    after `total_steps` it stays at `end`.

    Args:
        total_steps: int, iterations covered by the cycles.
        n_cycles: int M, number of cycles. Defaults to `4`.
        ratio: float R in (0, 1], share of each cycle spent ramping. Defaults to `0.5`.
        ramp: `"linear"`, `"cosine"` or `"sigmoid"`. The sigmoid is Fu et al.'s
            `σ(12r - 6)`, rescaled to hit `start` and `end` exactly.
        start: float, β at the start of each cycle. Defaults to `0.0`.
        end: float, β at the top of each cycle. Defaults to `1.0`.
    """

    def __init__(self, total_steps, n_cycles=4, ratio=0.5, ramp="linear", start=0.0, end=1.0):
        _check_range(start, end)
        if ramp not in _RAMPS:
            raise ValueError(f"`ramp` must be one of {_RAMPS}; got {ramp!r}.")
        if not 0.0 < ratio <= 1.0:
            raise ValueError(f"`ratio` must be in (0, 1]; got {ratio}.")
        if n_cycles < 1 or total_steps < n_cycles:
            raise ValueError(f"Need 1 ≤ n_cycles ≤ total_steps; got n_cycles={n_cycles}, total_steps={total_steps}.")
        self.total_steps = int(total_steps)
        self.n_cycles = int(n_cycles)
        self.ratio = float(ratio)
        self.ramp = ramp
        self.start = float(start)
        self.end = float(end)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        period = self.total_steps / self.n_cycles
        position = ops.mod(step, period) / period
        progress = ops.minimum(position / self.ratio, 1.0)
        if self.ramp == "cosine":
            progress = 0.5 * (1.0 - ops.cos(math.pi * progress))
        elif self.ramp == "sigmoid":
            low, high = 1.0 / (1.0 + math.exp(6.0)), 1.0 / (1.0 + math.exp(-6.0))
            progress = (ops.sigmoid(12.0 * progress - 6.0) - low) / (high - low)
        progress = ops.where(step >= self.total_steps, 1.0, progress)
        return self.start + (self.end - self.start) * progress

    def get_config(self):
        return {
            "total_steps": self.total_steps,
            "n_cycles": self.n_cycles,
            "ratio": self.ratio,
            "ramp": self.ramp,
            "start": self.start,
            "end": self.end,
        }


def get(identifier):
    """A schedule from a number (constant β), a config dict or a schedule."""
    if isinstance(identifier, BetaSchedule):
        return identifier
    if isinstance(identifier, (int, float)) and not isinstance(identifier, bool):
        return Constant(identifier)
    if isinstance(identifier, dict):
        return keras.saving.deserialize_keras_object(identifier)
    raise ValueError(
        f"Cannot make a β schedule from {identifier!r}: pass a number or a "
        "keras_vae.schedules.BetaSchedule such as LinearWarmup(10_000)."
    )
