"""β (KL weight) and learning-rate schedules: functions of the training iteration, in `keras.ops`.

A `VAE` evaluates its β schedule inside the train step, on an iteration counter
that is part of the model's state, so the schedule takes effect under jit on
every backend and survives a save and reload. Learning-rate schedules are
`keras.optimizers.schedules.LearningRateSchedule`s, evaluated by the optimizer on
its own step counter; Keras's own are used wherever one exists. All schedules
are serializable.
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
            raise ValueError(
                f"Need 1 ≤ n_cycles ≤ total_steps; got n_cycles={n_cycles}, "
                f"total_steps={total_steps}."
            )
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


# ------------------------------------------------------------ learning rates
_CYCLICAL_MODES = ("triangular", "triangular2")


@keras.saving.register_keras_serializable(package="keras_vae")
class CyclicalLearningRate(keras.optimizers.schedules.LearningRateSchedule):
    """Smith (2017)'s triangular cyclical learning rate (Keras has none).

    The rate rises linearly from `base_learning_rate` to `max_learning_rate`
    over `step_size` steps, falls back over the next `step_size`, and repeats:
    one cycle is `2 * step_size` steps. With `mode="triangular2"` the height of
    the triangle halves after every cycle.

    Args:
        base_learning_rate: float, the rate at the start (and end) of each cycle.
        max_learning_rate: float, the rate at the top of the first cycle.
        step_size: int, steps of half a cycle. Smith suggests 2 to 10 epochs.
        mode: `"triangular"` or `"triangular2"`. Defaults to `"triangular"`.
        name: str. Defaults to `"CyclicalLearningRate"`.

    Example:
    ```python
    schedule = keras_vae.schedules.CyclicalLearningRate(2.5e-4, 1e-3, step_size=4 * steps_per_epoch)
    vae.compile(optimizer=keras.optimizers.Adam(schedule))
    ```

    References:
        Smith (2017), Cyclical Learning Rates for Training Neural Networks.
    """

    def __init__(
        self, base_learning_rate, max_learning_rate, step_size, mode="triangular", name="CyclicalLearningRate"
    ):
        if not 0 <= base_learning_rate <= max_learning_rate:
            raise ValueError(
                "Need 0 ≤ base_learning_rate ≤ max_learning_rate; got "
                f"base_learning_rate={base_learning_rate}, max_learning_rate={max_learning_rate}."
            )
        if int(step_size) < 1:
            raise ValueError(f"`step_size` must be a positive number of steps; got {step_size}.")
        if mode not in _CYCLICAL_MODES:
            raise ValueError(f"`mode` must be one of {_CYCLICAL_MODES}; got {mode!r}.")
        self.base_learning_rate = float(base_learning_rate)
        self.max_learning_rate = float(max_learning_rate)
        self.step_size = int(step_size)
        self.mode = mode
        self.name = name

    def __call__(self, step):
        step = ops.cast(step, "float32")
        cycle_length = 2.0 * self.step_size
        position = ops.mod(step, cycle_length) / self.step_size  # in [0, 2)
        height = 1.0 - ops.abs(position - 1.0)  # 0 → 1 → 0
        if self.mode == "triangular2":
            height = height * ops.power(0.5, ops.floor(step / cycle_length))
        return self.base_learning_rate + (self.max_learning_rate - self.base_learning_rate) * height

    def get_config(self):
        return {
            "base_learning_rate": self.base_learning_rate,
            "max_learning_rate": self.max_learning_rate,
            "step_size": self.step_size,
            "mode": self.mode,
            "name": self.name,
        }


def one_cycle(max_learning_rate, total_steps, warmup_fraction=0.3, div_factor=25.0, final_div_factor=1e4):
    """Smith & Topin (2019)'s one-cycle policy, as a configured Keras `CosineDecay`.

    The rate rises linearly from `max_learning_rate / div_factor` to
    `max_learning_rate` over the first `warmup_fraction` of the steps, then
    follows half a cosine down to `max_learning_rate / (div_factor *
    final_div_factor)` at `total_steps`, and stays there. The defaults are those
    of PyTorch's `OneCycleLR`.

    Args:
        max_learning_rate: float, the peak rate.
        total_steps: int, steps of the whole cycle (epochs × steps per epoch).
        warmup_fraction: float in [0, 1), share of the steps spent rising.
            Defaults to `0.3`.
        div_factor: float, the start is the peak divided by this. Defaults to `25.0`.
        final_div_factor: float, the end is the start divided by this.
            Defaults to `1e4`.

    Returns:
        A `keras.optimizers.schedules.CosineDecay`.

    References:
        Smith & Topin (2019), Super-Convergence: Very Fast Training of Neural
        Networks Using Large Learning Rates.
    """
    if not 0.0 <= warmup_fraction < 1.0:
        raise ValueError(f"`warmup_fraction` must be in [0, 1); got {warmup_fraction}.")
    if div_factor < 1 or final_div_factor < 1:
        raise ValueError(f"`div_factor` and `final_div_factor` must be ≥ 1; got {div_factor} and {final_div_factor}.")
    total_steps = int(total_steps)
    warmup_steps = int(round(warmup_fraction * total_steps))
    if total_steps - warmup_steps < 1:
        raise ValueError(f"`total_steps` must leave at least one step after the warm-up; got {total_steps}.")
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=max_learning_rate / div_factor,
        decay_steps=total_steps - warmup_steps,
        alpha=1.0 / (div_factor * final_div_factor),
        warmup_target=float(max_learning_rate),
        warmup_steps=warmup_steps,
        name="OneCycle",
    )


def _cosine(learning_rate, total_steps, warmup_steps=0):
    warmup_steps = int(warmup_steps)
    if not 0 <= warmup_steps < total_steps:
        raise ValueError(f"`warmup_steps` must be in [0, total_steps); got {warmup_steps}.")
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup_steps else learning_rate,
        decay_steps=int(total_steps) - warmup_steps,
        alpha=0.0,
        warmup_target=learning_rate if warmup_steps else None,
        warmup_steps=warmup_steps,
    )


def _triangular(
    learning_rate,
    total_steps,
    base_learning_rate=None,
    max_learning_rate=None,
    step_size=None,
    steps_per_epoch=None,
    mode="triangular",
):
    max_learning_rate = learning_rate if max_learning_rate is None else max_learning_rate
    # Smith (2017), section 3.3: "set base_lr to 1/3 or 1/4 of max_lr".
    base_learning_rate = max_learning_rate / 4 if base_learning_rate is None else base_learning_rate
    if step_size is None:
        # Half a cycle of about 4 epochs (Smith: 2 to 10), rounded so that
        # training ends at the bottom of a cycle; one cycle without epochs.
        half_cycle = 4 * steps_per_epoch if steps_per_epoch else total_steps / 2
        cycles = max(1, round(total_steps / (2 * half_cycle)))
        step_size = max(1, total_steps // (2 * cycles))
    return CyclicalLearningRate(base_learning_rate, max_learning_rate, step_size, mode=mode)


# Name -> (builder, the options it takes besides learning_rate and total_steps).
_LEARNING_RATE_BUILDERS = {
    "constant": (lambda learning_rate, total_steps: float(learning_rate), ()),
    "cosine": (_cosine, ("warmup_steps",)),
    "triangular": (_triangular, ("base_learning_rate", "max_learning_rate", "step_size", "steps_per_epoch", "mode")),
    "one-cycle": (one_cycle, ("warmup_fraction", "div_factor", "final_div_factor")),
}
LEARNING_RATE_SCHEDULES = tuple(_LEARNING_RATE_BUILDERS)


def learning_rate_schedule(name, learning_rate, total_steps, **options):
    """The learning rate of an optimizer, by name (for the command line).

    - `"constant"`: `learning_rate` itself, a float.
    - `"cosine"`: Keras's `CosineDecay` from `learning_rate` down to 0 at
      `total_steps`; option `warmup_steps` (default 0) first rises linearly from
      0 to `learning_rate` over that many of the steps.
    - `"triangular"`: `CyclicalLearningRate` with `learning_rate` as the top
      (`max_learning_rate`) and a quarter of it as the bottom
      (`base_learning_rate`), Smith (2017)'s rule of thumb. `step_size` defaults
      to about 4 epochs when `steps_per_epoch` is given (Smith: 2 to 10), rounded
      so that `total_steps` is a whole number of cycles, else to one cycle over
      `total_steps`. Options: `base_learning_rate`, `max_learning_rate`,
      `step_size`, `steps_per_epoch`, `mode`.
    - `"one-cycle"`: `one_cycle(learning_rate, total_steps)`, peaking at
      `learning_rate`. Options: `warmup_fraction`, `div_factor`, `final_div_factor`.

    Every schedule accepts `steps_per_epoch` (only `"triangular"` uses it), and
    options that are `None` are ignored, so a command line can pass the same
    options whatever the name.

    Args:
        name: one of `LEARNING_RATE_SCHEDULES`.
        learning_rate: float > 0.
        total_steps: int, iterations of the whole training run.
        **options: the named schedule's options, above.

    Returns:
        A float or a `keras.optimizers.schedules.LearningRateSchedule`, for an
        optimizer's `learning_rate`.
    """
    if name not in _LEARNING_RATE_BUILDERS:
        raise ValueError(f"Unknown learning-rate schedule {name!r}: use one of {LEARNING_RATE_SCHEDULES}.")
    if learning_rate <= 0:
        raise ValueError(f"`learning_rate` must be > 0; got {learning_rate}.")
    if int(total_steps) < 1:
        raise ValueError(f"`total_steps` must be a positive number of steps; got {total_steps}.")
    build, accepted = _LEARNING_RATE_BUILDERS[name]
    options = {key: value for key, value in options.items() if value is not None}
    unknown = sorted(set(options) - set(accepted) - {"steps_per_epoch"})
    if unknown:
        raise ValueError(
            f"The {name!r} learning-rate schedule takes no option {', '.join(map(repr, unknown))}; "
            f"it takes {', '.join(map(repr, accepted)) or 'none'}."
        )
    options = {key: value for key, value in options.items() if key in accepted}
    return build(learning_rate, int(total_steps), **options)
