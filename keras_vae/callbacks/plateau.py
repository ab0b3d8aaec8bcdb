"""Acting on a plateau of the validation loss: He et al. (2019)'s learning-rate decay that reloads the best
weights, and Keras's early stopping carried over a resumed run.

He et al. (2019) train their text VAEs with SGD at learning rate 1.0, gradients
clipped to norm 5; when the validation loss stops improving they reload the
best model so far and halve the learning rate, and they stop after the 5th
decay. Keras's `ReduceLROnPlateau` lowers the rate but trains on from the worse
weights: hence `DecayOnPlateau`.
"""

import math
import os
import warnings

import keras
import numpy as np

from keras_vae import names
from keras_vae.files import atomic_path


def network_weights(model):
    """The weights that hold what `model` has learned: those of its layers (encoder, decoder, likelihood,
    discriminator, ...), without the model's own training state (its non-trainable variables: the
    iteration counter that β schedules read, aggressive training's mode and I(x; z) record)."""
    own_state = {id(v) for v in model.non_trainable_weights} - {
        id(v) for layer in model.layers for v in layer.non_trainable_weights
    }
    return [v for v in model.weights if id(v) not in own_state]


def part_optimizers(optimizer):
    """The optimizers that step the model's parts: a `MultiPartOptimizer`'s, else `optimizer` itself."""
    parts = getattr(optimizer, "part_optimizers", None)
    return list(parts.values()) if parts is not None else [optimizer]


def optimizer_slots(optimizer):
    """The optimizers' per-weight state (SGD's momentum, Adam's moments), without their step counters and rates."""
    slots = []
    for part in part_optimizers(optimizer):
        skip = {id(part.iterations), id(part.learning_rate)}
        slots.extend(v for v in part.variables if id(v) not in skip)
    return slots


def improves(value, best, mode="min", min_delta=0.0):
    """Whether `value` beats `best` (None: nothing yet) by more than `min_delta`; a non-finite value never does."""
    if not math.isfinite(value):
        return False
    if best is None:
        return True
    return value < best - min_delta if mode == "min" else value > best + min_delta


def _values(variables):
    return [np.array(keras.ops.convert_to_numpy(v.value), copy=True) for v in variables]


class DecayOnPlateau(keras.callbacks.Callback):
    """Reloads the best weights and multiplies the learning rate by `factor` when `monitor` stops improving.

    He et al. (2019)'s schedule: when the validation loss has not improved for
    `patience` epochs, the weights of the best epoch so far are reloaded and the
    learning rate is halved; after `max_decays` decays, training stops (on the
    reloaded best weights). Keras's `ReduceLROnPlateau` lowers the rate but keeps
    the worse weights.

    What is reloaded: the networks' weights (`network_weights`: encoder,
    decoder, likelihood and discriminator parameters, ...) and the optimizers'
    per-weight state (`optimizer_slots`: SGD's momentum, Adam's moments) as they
    were at the end of the best epoch. What is not: the model's training state
    (the iteration counter that β schedules read, aggressive training's mode and
    record), and the optimizers' step counters, which keep counting.

    He et al. start new optimizers after a decay; their text runs use SGD
    without momentum, where the two are the same.

    Each part's optimizer (a `MultiPartOptimizer`'s encoder, decoder, ...) has
    its own rate multiplied. The rate must be a float: a `LearningRateSchedule`
    recomputes it at every step, and is refused when training begins.

    Logs `learning_rate` (the rate this epoch trained at; the counting part's)
    and `lr_decays` (decays made, this epoch's included).

    Its state carries over `fit` calls (use a new callback for a new model).
    For a resumable run, `get_state()` is a JSON-serializable dict of the
    counters (to save with each checkpoint) and `set_state()` puts it back; with
    `best_weights_path`, the best weights are also written there (an `.npz`,
    atomically) at each new best, and a callback given a state by `set_state`
    reads them back when training begins.

    Args:
        monitor: str, the logged value watched. Defaults to `"val_loss"`.
        factor: float in (0, 1), the learning rate's multiplier at each decay.
            Defaults to `0.5`.
        patience: int ≥ 1, epochs without improvement before a decay. Defaults to `2`.
        max_decays: int ≥ 1 or None, decays after which training stops (None:
            never). Defaults to `5` (He et al. 2019).
        min_delta: float ≥ 0, the least change that counts as an improvement.
            Defaults to `0`.
        mode: `"min"` or `"max"`, whether lower or higher is better. Defaults to `"min"`.
        start_from_epoch: int, the first epoch (from 0) that may decay; the
            epochs before still count towards the best and the patience.
            Defaults to `0`; He et al. (2019)'s text runs use `15`.
        best_weights_path: str or None, an `.npz` file for the best weights.
        verbose: int, 1 prints a line at each decay. Defaults to `0`.
        print_fn: callable that prints a line. Defaults to `print`.

    Example:
    ```python
    vae.compile(optimizer=keras.optimizers.SGD(1.0, global_clipnorm=5.0))
    vae.fit(x, validation_data=(x_val,), epochs=100, callbacks=[keras_vae.callbacks.DecayOnPlateau()])
    ```
    """

    def __init__(
        self,
        monitor=names.VAL_LOSS,
        factor=0.5,
        patience=2,
        max_decays=5,
        min_delta=0.0,
        mode="min",
        start_from_epoch=0,
        best_weights_path=None,
        verbose=0,
        print_fn=print,
    ):
        super().__init__()
        if not 0.0 < factor < 1.0:
            raise ValueError(f"`factor` must be in (0, 1) (0.5 halves the learning rate); got {factor}.")
        if int(patience) < 1:
            raise ValueError(f"`patience` must be at least 1 epoch; got {patience}.")
        if max_decays is not None and int(max_decays) < 1:
            raise ValueError(f"`max_decays` must be at least 1, or None for no limit; got {max_decays}.")
        if min_delta < 0:
            raise ValueError(f"`min_delta` must be ≥ 0; got {min_delta}.")
        if mode not in ("min", "max"):
            raise ValueError(f"`mode` must be 'min' or 'max'; got {mode!r}.")
        self.monitor = monitor
        self.factor = float(factor)
        self.patience = int(patience)
        self.max_decays = None if max_decays is None else int(max_decays)
        self.min_delta = float(min_delta)
        self.mode = mode
        self.start_from_epoch = int(start_from_epoch)
        self.best_weights_path = best_weights_path and os.fspath(best_weights_path)
        self.verbose = verbose
        self.print_fn = print_fn
        self.best = None
        self.best_epoch = None
        self.wait = 0
        self.decays = 0
        self._best_weights = None
        self._best_slots = None
        self._read_best_weights = False
        self._warned = False

    # ----------------------------------------------------------------- state
    def get_state(self):
        """The counters as a JSON-serializable dict: `best`, `best_epoch` (from 0), `wait`, `decays`."""
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait, "decays": self.decays}

    def set_state(self, state):
        """Continues from `get_state()`'s dict; the best weights are read from `best_weights_path` when training begins."""
        self.best, self.best_epoch = state.get("best"), state.get("best_epoch")
        self.wait, self.decays = int(state.get("wait", 0)), int(state.get("decays", 0))
        self._read_best_weights = self.best is not None and self.best_weights_path is not None
        if self.best is not None and self.best_weights_path is None:
            warnings.warn(
                "DecayOnPlateau was given a best epoch but no `best_weights_path` to read its weights from: "
                "it will not decay until a new best: pass the `best_weights_path` the run wrote.",
                stacklevel=2,
            )

    # ------------------------------------------------------------- training
    def on_train_begin(self, logs=None):
        for part in part_optimizers(self.model.optimizer):
            if not isinstance(part.learning_rate, keras.Variable):
                raise ValueError(
                    f"DecayOnPlateau multiplies the learning rate, but {part.name}'s is a schedule "
                    f"({type(part._learning_rate).__name__}) that sets it at every step: give the optimizer a float "
                    "learning rate (keras-vae train: --lr-schedule constant, without --reference-batch-size)."
                )
        if self._read_best_weights and self._best_weights is None:
            self._load_best_weights()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        logs[names.LEARNING_RATE] = self.learning_rate()
        current = logs.get(self.monitor)
        if current is None:
            if not self._warned:
                self._warned = True
                warnings.warn(
                    f"DecayOnPlateau watches `{self.monitor}`, which is not logged (logged: {', '.join(logs)}): "
                    "pass validation data to fit, or another `monitor`.",
                    stacklevel=2,
                )
        elif improves(float(current), self.best, self.mode, self.min_delta):
            self.best, self.best_epoch, self.wait = float(current), epoch, 0
            self._best_weights = _values(network_weights(self.model))
            self._best_slots = _values(optimizer_slots(self.model.optimizer))
            self._write_best_weights()
        else:
            self.wait += 1
            if self.wait >= self.patience and epoch >= self.start_from_epoch and self._best_weights is not None:
                self._decay(epoch)
        logs[names.LR_DECAYS] = float(self.decays)

    def learning_rate(self):
        """The rate the model's optimizer trains at (a `MultiPartOptimizer`'s counting part's)."""
        return float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def _decay(self, epoch):
        self._restore_best()
        for part in part_optimizers(self.model.optimizer):
            part.learning_rate = float(keras.ops.convert_to_numpy(part.learning_rate)) * self.factor
        self.decays += 1
        self.wait = 0
        stop = self.max_decays is not None and self.decays >= self.max_decays
        if stop:
            self.model.stop_training = True
        if self.verbose:
            self.print_fn(
                f"Epoch {epoch + 1}: {self.monitor} has not improved for {self.patience} epochs: reloaded the weights "
                f"of epoch {self.best_epoch + 1} ({self.monitor} {self.best:.4g}), learning rate now "
                f"{self.learning_rate():.4g} (decay {self.decays}"
                + (f" of {self.max_decays}" if self.max_decays else "")
                + ("; training stops" if stop else "")
                + ")."
            )

    def _restore_best(self):
        weights, slots = network_weights(self.model), optimizer_slots(self.model.optimizer)
        for variables, values, what in ((weights, self._best_weights, "weights"), (slots, self._best_slots, "slots")):
            if [tuple(v.shape) for v in variables] != [value.shape for value in values]:
                source = f" in {self.best_weights_path}" if self._read_best_weights else ""
                raise ValueError(
                    f"The best epoch's {what}{source} do not fit this model's ({len(values)} arrays for "
                    f"{len(variables)} variables): use a new DecayOnPlateau for a new model."
                )
            for variable, value in zip(variables, values, strict=True):
                variable.assign(value)

    def _write_best_weights(self):
        if not self.best_weights_path:
            return
        arrays = {f"weights_{i}": value for i, value in enumerate(self._best_weights)}
        arrays.update({f"slots_{i}": value for i, value in enumerate(self._best_slots)})
        with atomic_path(self.best_weights_path) as temporary, open(temporary, "wb") as file:
            np.savez(file, best=self.best, best_epoch=self.best_epoch, **arrays)

    def _load_best_weights(self):
        if not os.path.isfile(self.best_weights_path):
            raise ValueError(
                f"DecayOnPlateau resumes from a best epoch, but its weights file {self.best_weights_path} is "
                "missing: restore it, or start training again."
            )
        with np.load(self.best_weights_path) as saved:
            count = sum(1 for key in saved.files if key.startswith("weights_"))
            self._best_weights = [saved[f"weights_{i}"] for i in range(count)]
            count = sum(1 for key in saved.files if key.startswith("slots_"))
            self._best_slots = [saved[f"slots_{i}"] for i in range(count)]
            # Written at each new best, so it may be an epoch newer than the counters (a run killed in between):
            # then that epoch was the last improvement.
            best_epoch = int(saved["best_epoch"])
            if best_epoch != self.best_epoch:
                self.wait = 0
            self.best, self.best_epoch = float(saved["best"]), best_epoch


class ResumedEarlyStopping(keras.callbacks.EarlyStopping):
    """Keras's `EarlyStopping`, starting from the epochs a resumed run already did.

    Keras's forgets its best value and its count of epochs without improvement
    when `fit` starts; this one replays `history[monitor]` through Keras's own
    rule first, so a resumed run stops where the uninterrupted one would.

    Args:
        history: dict of per-epoch lists (a resumed run's history), or None.
        **kwargs: `keras.callbacks.EarlyStopping`'s arguments.
    """

    def __init__(self, history=None, **kwargs):
        if history and kwargs.get("restore_best_weights"):
            raise ValueError(
                "ResumedEarlyStopping cannot restore the best weights of epochs it did not see: "
                "keep the best model with keras_vae.callbacks.BestModelCheckpoint instead."
            )
        super().__init__(**kwargs)
        self.history = history

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        stop_training = self.model.stop_training
        for epoch, value in enumerate((self.history or {}).get(self.monitor, [])):
            if value is not None and math.isfinite(value):
                super().on_epoch_end(epoch, {self.monitor: value})
        # A run resumed after it stopped early trains (at least) one more epoch, as it was asked to.
        self.model.stop_training, self.stopped_epoch = stop_training, 0
