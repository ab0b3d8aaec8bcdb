"""Smith (2017)'s learning-rate range test: train while raising the learning rate, watch the loss.

`lr_range_test` records the loss of every batch along an exponential ramp of
learning rates and suggests the bounds of a cyclical or one-cycle schedule.
"""

import dataclasses
import math

import keras
import numpy as np

from keras_vae import names
from keras_vae.datasets import batching

# "Where the loss starts to fall": the first point at which the smoothed loss
# has covered this share of its whole fall, so that batch noise on the flat
# start does not count as a fall.
_FALL_STARTED = 0.1


@dataclasses.dataclass
class LRRangeTest:
    """The curve of a learning-rate range test and the rates it suggests.

    Attributes:
        learning_rates: the learning rate of each step.
        losses: the loss of each step's batch, before its update.
        smoothed_losses: their bias-corrected exponential moving average.
        base_learning_rate: where the loss starts to fall (NaN if it never fell).
        max_learning_rate: where it stops falling (NaN if it never fell).
        diverged: whether the test stopped early because the loss diverged.
    """

    learning_rates: list
    losses: list
    smoothed_losses: list
    base_learning_rate: float
    max_learning_rate: float
    diverged: bool

    def to_dict(self):
        """Plain Python values for JSON (non-finite numbers become None)."""
        return {key: _finite_or_none(value) for key, value in dataclasses.asdict(self).items()}


def lr_range_test(
    vae,
    data,
    min_learning_rate=1e-6,
    max_learning_rate=1.0,
    num_steps=300,
    batch_size=128,
    divergence_factor=4.0,
    smoothing=0.9,
    verbose=1,
):
    """Trains `vae` for up to `num_steps` batches while the learning rate rises exponentially.

    Step `i` trains one joint step (encoder and decoder, whatever the compiled
    `aggressive` setting) at the learning rate
    `min_learning_rate * (max_learning_rate / min_learning_rate) ** (i / (num_steps - 1))`,
    Keras's `ExponentialDecay` with a decay rate above 1, and records the loss
    of that batch (the metrics are reset before each step, so it is not a
    running mean). The test stops early once the loss diverges: when it is not
    finite, or when the smoothed loss exceeds `divergence_factor` times the
    lowest smoothed loss so far (`best + (divergence_factor - 1) * |best|`, the
    same for positive losses, still meaningful for negative ones).

    The suggestions are Smith's bounds of a cyclical schedule, read from the
    smoothed curve: the base where the loss starts to fall, the max where it
    stops falling and is about to rise.

    - `max_learning_rate`: the rate at the lowest smoothed loss;
    - `base_learning_rate`: the first rate at which the smoothed loss has
      covered a tenth of its fall from the start to that lowest point (the
      tenth keeps batch noise on the flat start from counting as a fall).

    Both are read at the step that the smoothed value there mostly stands for:
    an exponential moving average lags its input by the mean age of its
    weights, about `smoothing / (1 - smoothing)` steps. That is 9 steps for the
    default 0.9 (a factor 1.5 in learning rate over 300 steps and 6 decades),
    but 49 for fastai's 0.98 (a factor 10). In one run with a default MLP VAE on
    MNIST, the uncorrected 0.98 minimum sat at 0.036, and a one-cycle schedule
    peaking there trained worse (test -ELBO 135 after 3 epochs on 20k images)
    than one peaking at the corrected 0.004 (125), or at 0.012, the corrected
    suggestion with 0.9 (126), or a constant 0.001 (133).

    `max_learning_rate` is the peak for `schedules.one_cycle` or the top of a
    `CyclicalLearningRate`; `base_learning_rate` is the bottom of a cycle, far
    too low to train at alone. If the loss still falls at the end of the
    range, `max_learning_rate` only bounds the answer from below: test a wider
    range.

    This changes the model: its weights, its optimizers' states, and the β
    schedule's iteration counter. Run it on a fresh model, then train a new
    one. The optimizers' learning rates are restored at the end.

    Args:
        vae: a compiled `keras_vae.VAE` whose optimizers have a constant
            (settable) learning rate.
        data: the training inputs: an array (batched by `batch_size` and
            reshuffled on every pass), a `tf.data.Dataset` of batches, or
            anything else `keras_vae.datasets.numpy_batches` reads. It is read again
            from the start whenever it runs out.
        min_learning_rate: float, the first learning rate. Defaults to `1e-6`.
        max_learning_rate: float, the last one. Defaults to `1.0`.
        num_steps: int ≥ 2, steps of the ramp. Defaults to `300`.
        batch_size: int, for array data. Defaults to `128`.
        divergence_factor: float > 1. Defaults to `4.0`.
        smoothing: float in [0, 1), the moving average's weight on the past.
            Defaults to `0.9`.
        verbose: 0 or 1, a progress bar. Defaults to `1`.

    Returns:
        An `LRRangeTest`.

    Example:
    ```python
    vae = keras_vae.VAE.from_input_shape((28, 28, 1))
    vae.compile()
    result = keras_vae.lr_finder.lr_range_test(vae, x_train)
    keras_vae.plotting.plot_lr_range_test(result, "lr_range_test.png")
    schedule = keras_vae.schedules.one_cycle(result.max_learning_rate, total_steps)
    ```

    References:
        Smith (2017), Cyclical Learning Rates for Training Neural Networks.
    """
    if not 0 < min_learning_rate < max_learning_rate:
        raise ValueError(
            "Need 0 < min_learning_rate < max_learning_rate; got "
            f"min_learning_rate={min_learning_rate}, max_learning_rate={max_learning_rate}."
        )
    if int(num_steps) < 2:
        raise ValueError(f"`num_steps` must be ≥ 2; got {num_steps}.")
    if divergence_factor <= 1:
        raise ValueError(f"`divergence_factor` must be > 1; got {divergence_factor}.")
    if not 0 <= smoothing < 1:
        raise ValueError(f"`smoothing` must be in [0, 1); got {smoothing}.")
    if not vae.compiled:
        raise ValueError("Compile the VAE before the range test: vae.compile().")
    num_steps = int(num_steps)
    ramp = keras.optimizers.schedules.ExponentialDecay(
        min_learning_rate, decay_steps=num_steps - 1, decay_rate=max_learning_rate / min_learning_rate
    )
    learning_rates = np.asarray(keras.ops.convert_to_numpy(ramp(np.arange(num_steps))), "float64")

    optimizers = (vae.optimizer.encoder_optimizer, vae.optimizer.decoder_optimizer)
    saved = [float(keras.ops.convert_to_numpy(optimizer.learning_rate)) for optimizer in optimizers]
    for optimizer, learning_rate in zip(optimizers, saved):
        try:  # a no-op where the rate is settable
            optimizer.learning_rate = learning_rate
        except TypeError:
            raise ValueError(
                "The range test sets the learning rate at every step, but this VAE's optimizers were "
                "compiled with a LearningRateSchedule: compile it with a float learning rate."
            ) from None
    batches = batching.random_batches(data, batch_size)
    progress = (
        keras.utils.Progbar(num_steps, unit_name="step", stateful_metrics=("learning_rate", "loss", "smoothed_loss"))
        if verbose
        else None
    )
    losses, smoothed, average, best, diverged = [], [], 0.0, math.inf, False
    try:
        for step, learning_rate in enumerate(learning_rates):
            vae.optimizer.learning_rate = float(learning_rate)
            vae.reset_metrics()
            logs = vae.train_part_on_batch(next(batches), names.JOINT)
            loss = float(keras.ops.convert_to_numpy(logs[names.LOSS]))
            average = smoothing * average + (1 - smoothing) * loss
            smoothed_loss = average / (1 - smoothing ** (step + 1))
            losses.append(loss)
            smoothed.append(smoothed_loss)
            if progress is not None:
                progress.update(
                    step + 1,
                    values=[("learning_rate", learning_rate), ("loss", loss), ("smoothed_loss", smoothed_loss)],
                )
            if not math.isfinite(smoothed_loss) or smoothed_loss > best + (divergence_factor - 1) * abs(best):
                diverged = True
                break
            best = min(best, smoothed_loss)
    finally:
        for optimizer, learning_rate in zip(optimizers, saved):
            optimizer.learning_rate = learning_rate
    if progress is not None and diverged:
        progress.update(len(losses), finalize=True)
    base, top = _suggest(learning_rates[: len(losses)], np.asarray(smoothed), smoothing)
    return LRRangeTest(
        learning_rates=[float(rate) for rate in learning_rates[: len(losses)]],
        losses=losses,
        smoothed_losses=smoothed,
        base_learning_rate=base,
        max_learning_rate=top,
        diverged=diverged,
    )


def _suggest(learning_rates, smoothed, smoothing):
    """`(base, max)` learning rates from the smoothed curve (see `lr_range_test`)."""
    smoothed = np.where(np.isfinite(smoothed), smoothed, np.inf)
    lowest = int(np.argmin(smoothed))
    fall = smoothed[0] - smoothed[lowest]
    if lowest == 0 or not fall > 0:
        return math.nan, math.nan
    started = int(np.argmax(smoothed <= smoothed[0] - _FALL_STARTED * fall))

    # The step that the bias-corrected average at `step` is centred on: its
    # weights, proportional to smoothing ** age over ages 0..step, have mean
    # age s / (1 - s) - (step + 1) s^(step + 1) / (1 - s^(step + 1)).
    def centre(step):
        if smoothing == 0:
            return step
        power = smoothing ** (step + 1)
        age = smoothing / (1 - smoothing) - (step + 1) * power / (1 - power)
        return max(0, int(round(step - age)))

    base_step, max_step = centre(started), centre(lowest)
    # The fall can be steep enough to start and end within one step's lag.
    base_step = min(base_step, max(0, max_step - 1))
    if base_step == max_step:
        return math.nan, math.nan
    return float(learning_rates[base_step]), float(learning_rates[max_step])


def _finite_or_none(value):
    if isinstance(value, list):
        return [_finite_or_none(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
