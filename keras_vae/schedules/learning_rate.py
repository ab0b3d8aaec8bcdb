"""Learning-rate schedules that Keras lacks, and the named schedules the command line builds.

They are `keras.optimizers.schedules.LearningRateSchedule`s, evaluated by the
optimizer on its own step counter; Keras's own are used wherever one exists.
"""

import keras
from keras import ops

from keras_vae import names

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
    warmup_steps = round(warmup_fraction * total_steps)
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
    names.LEARNING_RATE_CONSTANT: (lambda learning_rate, total_steps: float(learning_rate), ()),
    names.LEARNING_RATE_COSINE: (_cosine, ("warmup_steps",)),
    names.LEARNING_RATE_TRIANGULAR: (
        _triangular,
        ("base_learning_rate", "max_learning_rate", "step_size", "steps_per_epoch", "mode"),
    ),
    names.LEARNING_RATE_ONE_CYCLE: (one_cycle, ("warmup_fraction", "div_factor", "final_div_factor")),
}
# The command line offers `names.LEARNING_RATE_SCHEDULES` before Keras is imported: every one needs a builder here.
if set(_LEARNING_RATE_BUILDERS) != set(names.LEARNING_RATE_SCHEDULES):
    raise ImportError(
        f"keras_vae.schedules builds the learning-rate schedules {sorted(_LEARNING_RATE_BUILDERS)}, "
        f"but keras_vae.names lists {sorted(names.LEARNING_RATE_SCHEDULES)}."
    )


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
        name: one of `keras_vae.names.LEARNING_RATE_SCHEDULES`.
        learning_rate: float > 0.
        total_steps: int, iterations of the whole training run.
        **options: the named schedule's options, above.

    Returns:
        A float or a `keras.optimizers.schedules.LearningRateSchedule`, for an
        optimizer's `learning_rate`.
    """
    if name not in _LEARNING_RATE_BUILDERS:
        raise ValueError(f"Unknown learning-rate schedule {name!r}: use one of {names.LEARNING_RATE_SCHEDULES}.")
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
