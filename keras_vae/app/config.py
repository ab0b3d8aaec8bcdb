"""The training options of `keras-vae train` as one typed value, and where they come from.

Flags, else a `--config` file (TOML or JSON, one section per command), else the
defaults; a run directory keeps them in `config.json` as a `[train]` section,
itself a valid config file. The model's own config is Keras's `get_config`: this
is only the command line's.
"""

import dataclasses
import difflib
import json
import os
import tomllib

import click

from keras_vae import names, plotting
from keras_vae.files import write_json

# Options a resumed run may change; the others are the run's own.
RESUMABLE = frozenset(
    {
        "epochs",
        "figure_every",
        "backend",
        "quiet",
        "verbose",
        "resume",
        "distribute",
        "devices",
        "download",
        "tensorboard",
        "mlflow",
    }
)
# Options of `train` that say how to run it, not what the run is: not in config.json.
NOT_SAVED = frozenset({"resume", "overwrite", "quiet", "verbose", "tensorboard", "mlflow"})
# Keys of config.json that record what a run resolved, not options: a config file may hold them (ignored).
RECORDED = frozenset({"resolved_learning_rate"})
SECTION = "train"
SCALE_LEARNING_RATE_REMOVED = (
    "--scale-learning-rate was replaced by --reference-batch-size N --lr-scaling linear, for any run: "
    "pass as N the batch size your --learning-rate was tuned at (--batch-size divided by the devices, for the old flag)"
)


class ConfigError(ValueError):
    """Options that cannot be used (together, or from this file): the message says which and what to do."""


def document_word_range(value):
    """`--document-words` as `(min_words, max_words)`: from "60-100" or "60,100"; `None` stays `None`."""
    if value is None:
        return None
    parts = str(value).replace(",", "-").split("-")
    try:
        low, high = (int(part) for part in parts)
    except ValueError:
        low = high = 0
    if not 1 <= low <= high:
        raise ConfigError(
            f"--document-words {value}: pass the fewest and the most words of a document as MIN-MAX, "
            "whole numbers with 1 <= MIN <= MAX, e.g. --document-words 60-100."
        )
    return low, high


@dataclasses.dataclass
class TrainConfig:
    """What a training run was asked for: data, model, objective, optimizer and budget.

    Field names are the long option names with underscores (`--latent-dim` is
    `latent_dim`) and the keys of a run's `config.json`; the defaults are the
    command line's.
    """

    # Data
    dataset: str = "mnist"
    condition: list = dataclasses.field(default_factory=list)
    test_split: str = "test"
    validation_fraction: float = 0.1
    binarize: str = "none"
    batch_size: int = 128
    seed: int = 0
    # Offline, a TFDS download retries for minutes: --no-download fails at once on an unprepared dataset.
    download: bool = True
    # Text: consecutive sentences joined into documents of "MIN-MAX" words (document_word_range); None: sentences.
    document_words: str | None = None
    # Model
    model: str = names.VAE
    architecture: str = names.MLP
    latent_dim: int = 32
    likelihood: str = names.BERNOULLI
    # Keras's dtype policy of the networks (names.DTYPE_POLICIES)
    dtype_policy: str = names.FLOAT32
    # Objective: β and its schedule, free bits, He et al. (2019)'s aggressive encoder training
    beta: float = 1.0
    beta_schedule: str = names.BETA_CONSTANT
    beta_warmup_steps: int | None = None
    beta_cycles: int = 4
    beta_ratio: float = 0.5
    free_bits: float = 0.0
    aggressive: bool = False
    max_inner_steps: int = 100
    inner_check_every: int = 10
    mi_patience: int = 1
    min_mi_gain: float = 0.05
    # CollapseMonitor's cure when the code collapses in the first epochs: "none", "aggressive" or "free-bits"
    collapse_remedy: str = "none"
    # Optimizer
    optimizer: str = names.ADAM
    # Adam-like optimizers' moment decays and ε; SGD's momentum. None: the optimizer's default.
    beta_1: float | None = None
    beta_2: float | None = None
    epsilon: float | None = None
    momentum: float | None = None
    nesterov: bool = False
    weight_decay: float | None = None
    clip_norm: float | None = None
    clip_value: float | None = None
    learning_rate: float = 1e-3
    # The batch size --learning-rate was tuned at, and how to scale it to --batch-size (with a warm-up).
    reference_batch_size: int | None = None
    lr_scaling: str | None = None
    # What the optimizer got: --learning-rate after batch-size scaling (written by the run, not an option).
    resolved_learning_rate: float | None = None
    lr_schedule: str = names.LEARNING_RATE_CONSTANT
    # He et al. (2019)'s recipe: on a plateau of the validation loss, reload the best weights and multiply the
    # learning rate by the factor (default 0.5), up to max_lr_decays (default 5) times; early stopping (a
    # patience in epochs); model.keras the best epoch's model. None: off.
    lr_decay_patience: int | None = None
    lr_decay_factor: float | None = None
    max_lr_decays: int | None = None
    early_stopping: int | None = None
    keep_best: bool = False
    # How latent-space figures draw codes of more than two dimensions: names.PROJECTIONS
    projection: str = names.PCA
    # Epochs between the figures in diagnostics/ (the last epoch's are always drawn)
    figure_every: int = 5
    # Budget and placement
    epochs: int = 10
    distribute: str = "none"
    devices: int | None = None
    output: str | None = None
    backend: str | None = None

    @classmethod
    def from_options(cls, options):
        """The config of parsed options (a dict with at least every field; other keys are ignored)."""
        values = {field.name: options[field.name] for field in dataclasses.fields(cls) if field.name in options}
        if "condition" in values:
            values["condition"] = list(values["condition"] or ())
        return cls(**values)

    def to_dict(self):
        return dataclasses.asdict(self)

    def to_json(self, path):
        """Writes `{"train": {...}}` atomically: a config file that reproduces the run."""
        write_json(path, {SECTION: self.to_dict()})

    @classmethod
    def from_json(cls, path):
        """Reads what `to_json` wrote; keys missing from older files take the defaults."""
        try:
            with open(path) as file:
                values = dict(json.load(file)[SECTION])
            # Runs from before --reference-batch-size: their scaled learning rate is in the saved
            # optimizer, which evaluating, sampling or resuming them reads; the key itself is gone.
            values.pop("scale_learning_rate", None)
            unknown = sorted(set(values) - {field.name for field in dataclasses.fields(cls)})
            if unknown:
                raise ValueError(f"unknown keys {', '.join(unknown)}")
            return cls.from_options(values)
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ConfigError(
                f"{path} is unreadable ({error}): restore it, or start the run again with --overwrite."
            ) from None

    def check(self):
        """Refuses options that contradict each other."""
        if self.aggressive and self.lr_schedule != names.LEARNING_RATE_CONSTANT:
            raise ConfigError(
                f"--aggressive with --lr-schedule {self.lr_schedule}: aggressive training steps the encoder a varying "
                "number of times per iteration, so a step-indexed schedule would run ahead on the encoder; "
                "use --lr-schedule constant."
            )
        if self.beta_warmup_steps is not None and self.beta_schedule not in (names.BETA_LINEAR, names.BETA_COSINE):
            raise ConfigError(
                f"--beta-warmup-steps sets a warm-up, but --beta-schedule is {self.beta_schedule}: "
                "pass --beta-schedule linear or cosine."
            )
        if self.clip_norm is not None and self.clip_value is not None:
            raise ConfigError("--clip-norm and --clip-value both clip the gradients: pass one of them.")
        if self.distribute == "none" and self.devices is not None:
            raise ConfigError("--devices goes with --distribute data-parallel.")
        document_word_range(self.document_words)
        try:
            plotting.check_projection(self.projection)
        except ImportError as error:
            raise ConfigError(str(error)) from None
        self._check_optimizer()
        self._check_plateau()
        if self.model == names.VAE_GAN and (
            self.aggressive or self.condition or self.collapse_remedy == names.REMEDY_AGGRESSIVE
        ):
            raise ConfigError(
                "--model vae-gan trains its encoder on its own loss and takes no condition: "
                "drop --aggressive, --collapse-remedy aggressive and --condition, or use --model vae."
            )

    def _check_optimizer(self):
        adaptive = self.optimizer in names.ADAPTIVE_OPTIMIZERS
        for name in ("beta_1", "beta_2", "epsilon") if not adaptive else ("momentum", "nesterov"):
            if getattr(self, name) not in (None, False):
                flag = "--" + name.replace("_", "-")
                wanted = "sgd" if adaptive else " or ".join(names.ADAPTIVE_OPTIMIZERS)
                raise ConfigError(
                    f"{flag} does not apply to --optimizer {self.optimizer}: drop it, or pass --optimizer {wanted}."
                )
        if self.nesterov and not self.momentum:
            raise ConfigError("--nesterov is a form of momentum: pass --momentum (e.g. 0.9) with it.")
        if self.reference_batch_size is None and self.lr_scaling is not None:
            raise ConfigError(
                f"--lr-scaling {self.lr_scaling} scales the learning rate from a reference batch size: "
                "pass --reference-batch-size (the batch size --learning-rate was tuned at)."
            )

    def _check_plateau(self):
        chosen_on_validation = {
            "--lr-decay-patience": self.lr_decay_patience is not None,
            "--early-stopping": self.early_stopping is not None,
            "--keep-best": self.keep_best,
        }
        used = [flag for flag, given in chosen_on_validation.items() if given]
        if used and not self.validation_fraction:
            raise ConfigError(
                f"--validation-fraction 0 leaves no validation loss for {' and '.join(used)} to choose on (the test "
                f"set would pick the model it then scores): pass --validation-fraction 0.1, or drop "
                f"{'them' if len(used) > 1 else 'it'}."
            )
        if self.lr_decay_patience is None:
            for name in ("lr_decay_factor", "max_lr_decays"):
                if getattr(self, name) is not None:
                    flag = "--" + name.replace("_", "-")
                    raise ConfigError(
                        f"{flag} shapes the decay on a plateau: pass --lr-decay-patience (epochs without a better "
                        f"validation loss before each decay, e.g. 2) with it, or drop {flag}."
                    )
            return
        if self.lr_decay_factor is not None and not 0 < self.lr_decay_factor < 1:
            raise ConfigError(f"--lr-decay-factor {self.lr_decay_factor} must be in (0, 1): 0.5 halves the rate.")
        if self.lr_schedule != names.LEARNING_RATE_CONSTANT or self.reference_batch_size is not None:
            cause = (
                f"--lr-schedule {self.lr_schedule}"
                if self.lr_schedule != names.LEARNING_RATE_CONSTANT
                else "--reference-batch-size (a warm-up)"
            )
            raise ConfigError(
                f"--lr-decay-patience decays the learning rate on a plateau, but {cause} sets it at every step: "
                "pass --lr-schedule constant without --reference-batch-size, or drop --lr-decay-patience."
            )

    def resumed(self, options, given, run_dir):
        """This (saved) config continued with `options`, of which `given` were set by a flag or a config file.

        Only the RESUMABLE options may differ from the run's; a longer run is
        refused when its schedules were sized for the number of epochs it had.
        """
        saved = self.to_dict()

        def same(name):
            value = options[name]
            if name == "dataset" and os.path.exists(value):
                return os.path.abspath(value) == saved.get(name)
            return (list(value) if isinstance(value, tuple) else value) == saved.get(name)

        changed = [name for name in sorted(set(given) - RESUMABLE) if not same(name)]
        if changed:
            flags = ", ".join("--" + name.replace("_", "-") for name in changed)
            raise ConfigError(
                f"--resume continues {run_dir} with the options it was started with: drop {flags}, or start a new run."
            )
        updates = {
            name: options[name]
            for name in ("epochs", "backend", "distribute", "devices")
            if name in given and options[name] is not None
        }
        epochs = updates.get("epochs", self.epochs)
        if epochs != self.epochs and (
            self.lr_schedule != names.LEARNING_RATE_CONSTANT or self.beta_schedule == names.BETA_CYCLICAL
        ):
            raise ConfigError(
                f"--epochs {epochs}: the learning-rate and β schedules of {run_dir} were sized for "
                f"{self.epochs} epochs; resume without --epochs, or start a new run."
            )
        return dataclasses.replace(self, **updates)


# ------------------------------------------------------------------ config files
def file_defaults(path, commands, name):
    """The values the config file at `path` gives command `name`, for click's `default_map`.

    `commands` maps every command name to its click command: each section must
    name one, and each key one of its options (long name, dashes or underscores).
    `lr-find` also reads `[train]` (but not its `output`): the range test is for
    the model `[train]` describes.
    """
    try:
        with open(path, "rb") as file:
            sections = json.load(file) if path.endswith(".json") else tomllib.load(file)
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot read {path}: {' '.join(str(error).split())}") from None
    if not isinstance(sections, dict):
        raise ConfigError(f"{path} must hold sections, one per command, e.g. [train]")
    for section, values in sections.items():
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: '{section}' must sit in a command's section, e.g. [train]")
        if section not in commands:
            raise ConfigError(f"{path}: unknown section [{section}]{_did_you_mean(section, commands)}")
        known = option_keys(commands[section])
        for key in values:
            if key.replace("-", "_") not in known and key not in RECORDED:
                options = sorted({option.replace("_", "-") for option in known})
                raise ConfigError(
                    f"{path}: unknown key '{key}' in [{section}]{_did_you_mean(key.replace('_', '-'), options)}"
                )
    known = option_keys(commands[name])
    defaults = {}
    if name == "lr-find":
        train = {
            known[k.replace("-", "_")]: v for k, v in sections.get(SECTION, {}).items() if k.replace("-", "_") in known
        }
        defaults.update({k: v for k, v in train.items() if k != "output"})
    defaults.update({known[k.replace("-", "_")]: v for k, v in sections.get(name, {}).items() if k not in RECORDED})
    return defaults


def option_keys(command):
    """Config-file keys of a click command (its long option names, underscored) → parameter names."""
    keys = {}
    for param in command.params:
        if param.name in ("config", "help") or not isinstance(param, click.Option):
            continue
        keys[param.name] = param.name
        for option in param.opts:
            if option.startswith("--"):
                keys[option[2:].replace("-", "_")] = param.name
    return keys


def _did_you_mean(word, choices):
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else f" (valid: {', '.join(sorted(choices))})"
