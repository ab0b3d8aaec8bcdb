"""`CollapseMonitor`: the latent code assessed every epoch; a plain-words warning on collapse, and optionally a remedy."""

import json
import os
import warnings

import keras

from keras_vae.datasets import batching
from keras_vae.evaluation import assessment
from keras_vae.files import write_json
from keras_vae.names import COLLAPSE_REMEDIES as REMEDIES
from keras_vae.names import REMEDY_AGGRESSIVE, REMEDY_FREE_BITS
from keras_vae.trainers.aggressive import AggressiveTrainingSwitch

# The verdicts that mean the code carries nothing the decoder uses.
COLLAPSE_VERDICTS = (assessment.COLLAPSED, assessment.FORCED)
RECORDS_FILE = "collapse_monitor.json"


class PosteriorCollapseWarning(UserWarning):
    """The latent code has stopped carrying information about the input."""


class CollapseMonitor(keras.callbacks.Callback):
    """Assesses the latent code at each epoch end; warns once on collapse, and can act on it.

    Each epoch it runs `keras_vae.evaluation.assessment.assess` on the probe data
    (I(x; z) with its interval, the active dimensions, the decoder-uses-z gap) and
    keeps the verdict in `records`. A collapsed (or forced-but-uninformative) verdict
    `patience` epochs in a row (a young model may pass through one) raises one
    `PosteriorCollapseWarning` with the evidence and the remedies.

    With `remedy`, a collapsed verdict in the first `remedy_within` epochs switches
    on a cure at once (He et al. 2019: collapse starts early, so act early):
    `"aggressive"` turns on aggressive encoder training (drawing its inner batches
    from `train_data`, and ending by He et al.'s I(x; z) rule), `"free-bits"` sets
    the model's free bits to `free_bits` nats per dimension. The switch, its epoch
    and reason go to `events`, to the logs (`remedy`: 1 from that epoch on) and,
    with `output_dir`, to `collapse_monitor.json` there, with the per-epoch verdicts.

    Args:
        data: probe inputs (anything `fit` accepts as `x`).
        patience: int, consecutive collapsed epochs before warning. Defaults to `2`.
        batch_size: int. Defaults to `128`.
        max_examples: int, probe examples assessed (I(x; z)'s mixture is N × N). Defaults to `1000`.
        remedy: None, `"aggressive"` or `"free-bits"`.
        remedy_within: int, the remedy acts only on a collapse seen in this many first epochs. Defaults to `3`.
        free_bits: float, nats per dimension for the free-bits remedy. Defaults to `0.25`.
        train_data: the training data, for the aggressive remedy's inner encoder batches.
        output_dir: str or None, where `collapse_monitor.json` goes.
        seed: int, for the assessment's draws.
    """

    def __init__(
        self,
        data,
        patience=2,
        batch_size=128,
        max_examples=1000,
        remedy=None,
        remedy_within=3,
        free_bits=0.25,
        train_data=None,
        output_dir=None,
        seed=0,
    ):
        super().__init__()
        if remedy not in (None, *REMEDIES):
            raise ValueError(f"`remedy` must be None or one of {REMEDIES}; got {remedy!r}.")
        if remedy == REMEDY_AGGRESSIVE and train_data is None:
            raise ValueError("The aggressive remedy draws its inner encoder batches from `train_data`: pass it.")
        self.data = data
        self.patience = patience
        self.batch_size = batch_size
        self.max_examples = max_examples
        self.remedy = remedy
        self.remedy_within = remedy_within
        self.free_bits = free_bits
        self.train_data = train_data
        self.output_dir = output_dir and os.fspath(output_dir)
        self.seed = seed
        self.records = []
        self.events = []
        self.flagged_epochs = 0
        self.warned = False
        self.last = None
        self._switch = None

    @property
    def remedy_applied(self):
        return bool(self.events)

    def on_epoch_end(self, epoch, logs=None):
        result = assessment.assess(
            self.model, self.data, max_examples=self.max_examples, batch_size=self.batch_size, seed=self.seed
        )
        self.last = result
        self.records.append(
            {
                "epoch": epoch + 1,
                "verdict": result.verdict,
                "mutual_info": result.mutual_info,
                "mutual_info_interval": list(result.mutual_info_interval),
                "decoder_gap": result.decoder_gap,
                "active_units": result.active_units,
                "kl": result.kl,
            }
        )
        collapsed = result.verdict in COLLAPSE_VERDICTS
        if self._switch is not None:  # He et al.'s rule ends the aggressive remedy
            self._switch.on_epoch_end(epoch, {} if logs is None else logs)
        elif logs is not None and self.remedy == REMEDY_AGGRESSIVE:  # the same columns in every epoch's logs
            logs.setdefault("aggressive", float(self.model.is_aggressive()))
            logs.setdefault("encoder_steps", 0.0)
        if collapsed and not self.events and epoch + 1 <= self.remedy_within and self._remedy_would_act(result):
            self._apply_remedy(epoch, result)
        if logs is not None and self.remedy:
            logs["remedy"] = float(self.remedy_applied)
        self.flagged_epochs = self.flagged_epochs + 1 if collapsed else 0
        if self.flagged_epochs >= self.patience and not self.warned:
            self.warned = True
            warnings.warn(
                PosteriorCollapseWarning(
                    f"Epoch {epoch + 1}: the latent code is {result.verdict}: {'; '.join(result.evidence)}. "
                    f"Remedies: {'; '.join(result.remedies)}."
                ),
                stacklevel=2,
            )
        self._write()

    def _remedy_would_act(self, result):
        if self.remedy == REMEDY_AGGRESSIVE:
            return not self.model.is_aggressive()
        # Free bits that already hold a code up (the "forced" verdict) are not raised further.
        return (
            self.remedy == REMEDY_FREE_BITS
            and result.verdict != assessment.FORCED
            and self.free_bits > self.model.free_bits
        )

    def _install_aggressive_switch(self):
        model = self.model
        model._encoder_batches = batching.random_batches(self.train_data, self.batch_size)
        self._switch = AggressiveTrainingSwitch(
            self.data, patience=model.mi_patience, batch_size=self.batch_size, min_gain=model.min_mi_gain
        )
        self._switch.set_model(model)

    def on_train_begin(self, logs=None):
        # A resumed run: its earlier verdicts and remedy, and the remedy still in force.
        if self.output_dir and not self.records and os.path.isfile(os.path.join(self.output_dir, RECORDS_FILE)):
            with open(os.path.join(self.output_dir, RECORDS_FILE)) as file:
                saved = json.load(file)
            self.records, self.events = saved["records"], saved["events"]
            if any(event["remedy"] == REMEDY_AGGRESSIVE for event in self.events) and self.model.is_aggressive():
                self._install_aggressive_switch()

    def _apply_remedy(self, epoch, result):
        model = self.model
        reason = f"{result.verdict}: {result.mutual_info_text()}, decoder gap {result.decoder_gap:.2f} nats"
        if self.remedy == REMEDY_AGGRESSIVE:
            model.aggressive_mode.assign(1)
            model.best_mutual_info.assign(0.0)
            model.epochs_without_mi_gain.assign(0)
            self._install_aggressive_switch()
            action = "aggressive encoder training switched on"
        else:
            model.free_bits = float(self.free_bits)
            model._compile_arguments["free_bits"] = model.free_bits  # saved with the model: a resumed run keeps it
            model.make_train_function(force=True)  # the steps were traced with the old free bits
            action = f"free bits raised to {self.free_bits:g} nats per dimension"
        self.events.append({"epoch": epoch + 1, "remedy": self.remedy, "action": action, "reason": reason})
        print(f"Epoch {epoch + 1}: {action} ({reason}).")

    def on_train_end(self, logs=None):
        if self._switch is not None and self.model is not None:
            self.model._encoder_batches = None

    def _write(self):
        if self.output_dir:
            os.makedirs(self.output_dir, exist_ok=True)
            write_json(os.path.join(self.output_dir, RECORDS_FILE), {"records": self.records, "events": self.events})
