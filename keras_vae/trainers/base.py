"""The VAE's training loop, written once; each backend adds only its gradient bookkeeping.

`BaseVAETrainer` is the backend-independent half of training; `VAETrainer` in
`trainers/{tensorflow,jax,torch}.py` subclasses it, the way Keras splits its own
trainers (`keras/src/backend/{tensorflow,jax,torch}/trainer.py`).
"""

import collections.abc
import itertools

import keras
from keras import ops

from keras_vae import names
from keras_vae.datasets import batching
from keras_vae.trainers.aggressive import AggressiveTrainingSwitch, run_inner_encoder_steps
from keras_vae.trainers.optimizer import EncoderDecoderOptimizer


class BaseVAETrainer:
    """Trains a VAE by parts: the encoder, the decoder, or both (joint).

    Mixed into `keras.Model` before it (`class VAE(VAETrainer, keras.Model)`).
    One training iteration is one joint gradient step, or, in He et al. (2019)'s
    aggressive mode, an inner loop of encoder-only steps on fresh random
    minibatches followed by one decoder-only step. Each part has its own
    optimizer state (an `EncoderDecoderOptimizer`).

    The model provides:
        `encoder`: the inference network. Its trainable variables are the
            encoder part; every other trainable variable (decoder, learned
            likelihood parameters) is the decoder part.
        `_step_loss(x, part)`: the scalar loss that a step on `part`
            differentiates, the mean over this device's examples of `x`. A
            decoder or joint step updates the model's metrics and counts an
            iteration; an encoder step changes no model state.
        The options `aggressive`, `max_inner_steps`, `inner_check_every` and
            `mi_patience`, `min_mi_gain`, which its `compile` sets (defaults here).

    This class provides the training state (`train_iterations`, which the β
    schedule reads, and aggressive training's `aggressive_mode`,
    `best_mutual_info`, `epochs_without_mi_gain`), `fit`, `make_train_function`,
    `train_part_on_batch`, `is_aggressive` and `pop_inner_step_counts`; and, to
    the backends, `_part_loss`, `_trainable_variables_of`, `_trainable_indices`
    and `_run_iteration`.

    Each backend provides the gradient bookkeeping, under these names:
        `_compile_part_step(part)`: the (compiled) gradient step on `part`: it
            differentiates `_part_loss(x, part)` with respect to
            `_trainable_variables_of(part)` and applies the model's optimizer to
            those only; it returns the batch loss for an encoder step and
            `get_metrics_result()` otherwise.
        `_keras_train_function()`: the `train_function` that Keras's `fit` loop
            calls on this backend, running `_run_iteration` on the compiled steps.
        `_run_part_step(part, data)`: one compiled step on a batch outside `fit`.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Training state that must live in the model (not in Python) so that
        # jitted steps see it and a saved model resumes with it.
        self.train_iterations = self.add_weight(
            shape=(),
            dtype="int32",
            initializer="zeros",
            trainable=False,
            name="train_iterations",
            # Counted once per step, not once per tf.distribute replica.
            aggregation="only_first_replica",
        )
        self.aggressive_mode = self.add_weight(
            shape=(), dtype="int32", initializer="zeros", trainable=False, name="aggressive_mode"
        )
        # He et al.'s stopping rule, kept across fit() calls and saves.
        self.best_mutual_info = self.add_weight(shape=(), initializer="zeros", trainable=False, name="best_mutual_info")
        self.epochs_without_mi_gain = self.add_weight(
            shape=(), dtype="int32", initializer="zeros", trainable=False, name="epochs_without_mi_gain"
        )
        self.aggressive = False
        self.max_inner_steps = 100
        self.inner_check_every = 10
        self.mi_patience = 1
        self.min_mi_gain = 0.05
        self._encoder_batches = None
        self._inner_step_counts = []
        self._encoder_variable_ids = None

    # ------------------------------------------------ what the model provides
    # The parts a training iteration steps on (a compiled step each), and those whose
    # step returns its batch loss rather than the running metrics.
    _step_parts = names.PARTS
    _loss_only_parts = (names.ENCODER,)

    def _part_of(self, variable):
        """The part whose step updates `variable`: the encoder's or (every other variable) the decoder's."""
        return names.ENCODER if self._is_encoder_variable(variable) else names.DECODER

    def _step_loss(self, x, part):
        raise NotImplementedError

    # ---------------------------------------------- what a backend provides
    def _compile_part_step(self, part):
        raise NotImplementedError

    def _keras_train_function(self):
        raise NotImplementedError

    def _run_part_step(self, part, data):
        raise NotImplementedError

    # ------------------------------------------------------------ the loop
    def make_train_function(self, force=False):
        if self.train_function is not None and not force:
            return self.train_function
        self._part_steps = {part: self._compile_part_step(part) for part in self._step_parts}
        self.train_function = self._keras_train_function()
        return self.train_function

    def _run_iteration(self, data, run_step, aggressive):
        """One training iteration, whatever the backend.

        `run_step(part, batch)` is the backend's compiled gradient step on
        `part`; in aggressive mode the encoder first runs its inner loop.
        """
        if not aggressive:
            return run_step(names.JOINT, data)
        batches = self._encoder_batches
        if batches is None:  # e.g. train_on_batch: no training set to draw from
            batches = itertools.repeat(keras.utils.unpack_x_y_sample_weight(data)[0])
        steps = run_inner_encoder_steps(
            lambda batch: run_step(names.ENCODER, batch),
            batches,
            self.max_inner_steps,
            self.inner_check_every,
        )
        if self._encoder_batches is not None:  # inside fit, whose switch reads and clears them
            self._inner_step_counts.append(steps)
        return run_step(names.DECODER, data)

    def _part_loss(self, x, part):
        """`_step_loss`, also counted in Keras's `loss` metric (as Keras's own train steps do), except on encoder steps."""
        loss = self._step_loss(x, part)
        if part != names.ENCODER:
            # Keras's guide to custom train steps finds this metric by name.
            tracker = next(metric for metric in self.metrics if metric.name == names.LOSS)
            tracker.update_state(loss, sample_weight=ops.shape(keras.tree.flatten(x)[0])[0])
        return loss

    # ----------------------------------------------------------- the parts
    def _is_encoder_variable(self, variable):
        if self._encoder_variable_ids is None and self.encoder.built:
            self._encoder_variable_ids = {id(v) for v in self.encoder.variables}
        return id(variable) in (self._encoder_variable_ids or ())

    def _trainable_indices(self, part):
        """Positions in `trainable_variables` of the variables a step on `part` updates."""
        return [
            i
            for i, variable in enumerate(self.trainable_variables)
            if part == names.JOINT or self._part_of(variable) == part
        ]

    def _trainable_variables_of(self, part):
        variables = self.trainable_variables
        return [variables[i] for i in self._trainable_indices(part)]

    def _encoder_decoder_optimizer(self, optimizer, encoder_optimizer=None):
        """`compile`'s optimizer arguments as one `EncoderDecoderOptimizer` that knows the encoder's variables."""
        if isinstance(optimizer, EncoderDecoderOptimizer):
            if encoder_optimizer is not None:
                raise ValueError("Pass `encoder_optimizer` or an EncoderDecoderOptimizer, not both.")
            pair = optimizer
        else:
            pair = EncoderDecoderOptimizer(encoder_optimizer, decoder_optimizer=optimizer)
        pair.is_encoder_variable = self._is_encoder_variable
        return pair

    # ----------------------------------------------------------- public API
    def fit(
        self,
        x=None,
        y=None,
        batch_size=None,
        epochs=1,
        verbose="auto",
        callbacks=None,
        validation_split=0.0,
        validation_data=None,
        **kwargs,
    ):
        """`keras.Model.fit`, plus the extra data and callback of aggressive training.

        With `aggressive=True`, the inner encoder loop draws random minibatches
        of `x` (a `tf.data.Dataset` in its own order: shuffle it with
        `reshuffle_each_iteration`), and I(x; z) is measured after each epoch on
        `validation_data` (on `x` when there is none).
        """
        if kwargs.get("sample_weight") is not None or kwargs.get("class_weight") is not None:
            raise ValueError("VAE does not weight examples: remove `sample_weight` (or `class_weight`) from fit().")
        self._check_first_batch(x, batch_size)
        callbacks = list(callbacks or [])
        if "shuffle" not in kwargs and not all(hasattr(leaf, "__array__") for leaf in keras.tree.flatten(x)):
            # Keras shuffles only arrays, and warns on every fit when its default
            # shuffle=True meets a tf.data pipeline, PyDataset or generator.
            kwargs["shuffle"] = False
        if self.aggressive:
            if validation_split:
                raise ValueError(
                    "Aggressive training draws extra batches from all of `x`, held-out part "
                    "included: pass validation_data instead of validation_split."
                )
            if isinstance(x, collections.abc.Iterator):
                raise ValueError(
                    "Aggressive training reads `x` twice (fit's pass and the inner loop's random "
                    "batches); a one-shot iterator or generator cannot be: pass arrays, a "
                    "tf.data.Dataset or a keras.utils.PyDataset."
                )
            self._encoder_batches = batching.random_batches(x, batch_size or 32)
            # First, so that CSVLogger, TensorBoard and checkpoints see its logs and its decision.
            callbacks.insert(
                0,
                AggressiveTrainingSwitch(
                    x if validation_data is None else validation_data,
                    patience=self.mi_patience,
                    min_gain=self.min_mi_gain,
                    batch_size=batch_size or 128,
                ),
            )
        try:
            return super().fit(
                x,
                y,
                batch_size=batch_size,
                epochs=epochs,
                verbose=verbose,
                callbacks=callbacks,
                validation_split=validation_split,
                validation_data=validation_data,
                **kwargs,
            )
        finally:
            self._encoder_batches = None

    def _check_first_batch(self, x, batch_size):
        """The likelihood's `check_data` on the first batch of `x` (a one-shot iterator is not read ahead)."""
        if not self.likelihood.checks_data or isinstance(x, collections.abc.Iterator):
            return
        for batch in batching.numpy_batches(x, batch_size or 32):
            self.likelihood.check_data(batch["x"] if isinstance(batch, dict) else batch)
            return

    def train_part_on_batch(self, x, part):
        """One gradient step on `part` (`"encoder"`, `"decoder"` or `"joint"`) of the batch `x`.

        The building block of aggressive training, for custom loops. An encoder
        step updates only the encoder and its optimizer, and leaves the metrics
        and the β schedule's iteration counter unchanged; a decoder step updates
        only the decoder (and learned likelihood parameters) and its optimizer.

        Returns:
            The batch loss for an encoder step; the running metrics (a dict) otherwise.
        """
        if part not in names.PARTS:
            raise ValueError(f"`part` must be one of {names.PARTS}; got {part!r}.")
        if not self.built:
            self(x)
        if not self.optimizer.built:
            self.optimizer.build(self.trainable_variables)
        self.make_train_function()
        return self._run_part_step(part, (x,))

    def is_aggressive(self):
        """Whether iterations currently run He et al.'s inner encoder loop."""
        # Through a tensor: a tf.distribute MirroredVariable is not an array inside its scope.
        return bool(ops.convert_to_numpy(ops.convert_to_tensor(self.aggressive_mode)))

    def pop_inner_step_counts(self):
        """Inner encoder updates of each aggressive iteration since the last call."""
        counts, self._inner_step_counts = list(self._inner_step_counts), []
        return counts
