"""The `keras-vae` command line: train, evaluate, sample, diagnose, export, lr-find.

Options come from flags, else from a config file (`--config`, TOML or JSON, one
section per command: `[train]`, `[evaluate]`, ...; `lr-find` also reads
`[train]`), else from the defaults. Heavy imports happen inside the commands,
after `--backend` has set `KERAS_BACKEND`: Keras reads it once, at import.

Bad input (unknown dataset, unusable data, impossible options, an existing or
corrupt run directory) ends with one line on stderr and exit code 2, before
anything is written; other failures with one line and exit code 1. `--verbose`
adds the traceback.
"""

import contextlib
import difflib
import functools
import json
import os
import sys
import time
import tomllib
import traceback

import click
from click.core import ParameterSource

from keras_vae import names
from keras_vae.names import BACKENDS, BETA_SCHEDULES, COUNT_LIKELIHOODS, LEARNING_RATE_SCHEDULES, LIKELIHOODS
from keras_vae.version import __version__
from keras_vae.ops import latent

# TensorFlow's C++ INFO lines (CUDA probing, XLA) would bury the progress bar.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")



class BadInput(click.ClickException):
    """Input the command cannot use: one line, exit code 2."""

    exit_code = 2


class _Group(click.Group):
    """Prints every error as one line (click's usage errors included)."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            value = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except (click.exceptions.Abort, KeyboardInterrupt):
            click.echo("Aborted.", err=True)
            sys.exit(1)
        except click.exceptions.NoArgsIsHelpError as error:
            click.echo(error.format_message())
            sys.exit(0)
        except click.ClickException as error:
            message = " ".join(error.format_message().split())
            if isinstance(error, click.UsageError) and error.ctx is not None:
                message += f" (see '{error.ctx.command_path} --help')"
            click.echo(f"Error: {message}", err=True)
            sys.exit(error.exit_code)
        if not standalone_mode:
            return value
        sys.exit(value if isinstance(value, int) else 0)


def _bad_input_types():
    # Looked up lazily: importing these modules imports Keras.
    found = []
    for module, name in (("keras_vae.datasets", "DataError"), ("keras_vae.app.runs", "RunError")):
        if module in sys.modules:
            found.append(getattr(sys.modules[module], name))
    return tuple(found)


def _one_line_errors(command):
    """Turns exceptions into one-line click errors; `--verbose` prints the traceback first."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except click.ClickException:
            raise
        except Exception as error:
            if kwargs.get("verbose"):
                traceback.print_exc()
            text = str(error).strip().splitlines()
            message = text[0] if text else type(error).__name__
            if len(message) > 300:  # e.g. Keras quoting a whole model config
                message = message[:300] + "…"
            if isinstance(error, _bad_input_types()):
                raise BadInput(message) from None
            hint = "" if kwargs.get("verbose") else " (run with --verbose for the traceback)"
            raise click.ClickException(f"{type(error).__name__}: {message}{hint}") from None

    return run


# --------------------------------------------------------------- config file
def _read_config_file(ctx, param, path):
    """Fills `ctx.default_map` from the command's section of a TOML or JSON file."""
    if path is None:
        return None
    try:
        with open(path, "rb") as file:
            sections = json.load(file) if path.endswith(".json") else tomllib.load(file)
    except (OSError, ValueError) as error:
        raise click.BadParameter(f"cannot read {path}: {' '.join(str(error).split())}", ctx, param) from None
    if not isinstance(sections, dict):
        raise click.BadParameter(f"{path} must hold sections, one per command, e.g. [train]", ctx, param)
    commands = main.commands
    for section, values in sections.items():
        if not isinstance(values, dict):
            raise click.BadParameter(f"{path}: '{section}' must sit in a command's section, e.g. [train]", ctx, param)
        if section not in commands:
            raise click.BadParameter(f"{path}: unknown section [{section}]{_did_you_mean(section, commands)}", ctx, param)
        known = _config_keys(commands[section])
        for key in values:
            if key.replace("-", "_") not in known:
                options = sorted({name.replace("_", "-") for name in known})
                raise click.BadParameter(
                    f"{path}: unknown key '{key}' in [{section}]{_did_you_mean(key.replace('_', '-'), options)}", ctx, param
                )
    name = ctx.command.name
    known = _config_keys(ctx.command)
    defaults = {}
    if name == "lr-find":  # the range test is for the model [train] describes (not its output)
        train = {known[k.replace("-", "_")]: v for k, v in sections.get("train", {}).items() if k.replace("-", "_") in known}
        defaults.update({k: v for k, v in train.items() if k != "output"})
    defaults.update({known[k.replace("-", "_")]: v for k, v in sections.get(name, {}).items()})
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return path


def _config_keys(command):
    """Config-file keys of a command (its long option names, underscored) → parameter names."""
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


def _select_backend(backend):
    if backend is None:
        return
    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != backend:
            raise BadInput(
                f"Keras was already imported with the {keras.backend.backend()} backend; "
                f"--backend {backend} must be applied before that (run keras-vae in a new process)."
            )
    os.environ["KERAS_BACKEND"] = backend


def _options(*decorators):
    def apply(function):
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return apply


CONFIG_OPTION = click.option(
    "--config",
    type=click.Path(dir_okay=False),
    is_eager=True,
    expose_value=False,
    callback=_read_config_file,
    help="TOML or JSON file with a section per command ([train], [evaluate], ...); flags override it.",
)
COMMON_OPTIONS = _options(
    CONFIG_OPTION,
    click.option("--backend", type=click.Choice(BACKENDS), default=None, help="Keras backend [default: $KERAS_BACKEND, else tensorflow]."),
    click.option("--quiet", "-q", is_flag=True, help="No progress bar."),
    click.option("--verbose", "-v", is_flag=True, help="Per-epoch diagnostics lines and tracebacks of errors."),
)
DATA_OPTIONS = _options(
    click.option(
        "--dataset",
        default="mnist",
        show_default=True,
        help="A TFDS image dataset (mnist, fashion_mnist, binarized_mnist, ...), a .npy/.npz/.csv/.h5ad file, "
        "a .txt/.txt.gz file of sentences (one per line; an LSTM VAE), a folder of images, or synthetic-rnaseq.",
    ),
    click.option(
        "--condition",
        multiple=True,
        help="Train a conditional VAE on this covariate (repeatable): an .npz array NAME_train/NAME_test, "
        "a table column, or batch/cell_type of synthetic-rnaseq.",
    ),
    click.option("--test-split", default="test", show_default=True, help="TFDS split for the final test numbers."),
    click.option(
        "--validation-fraction",
        type=click.FloatRange(0, 1, max_open=True),
        default=0.1,
        show_default=True,
        help="Part of the training data held out for validation (and the aggressive-training switch).",
    ),
    click.option(
        "--binarize",
        type=click.Choice(["none", "dynamic", "fixed"]),
        default="none",
        show_default=True,
        help="Binarize pixels: resampled every epoch (dynamic) or drawn once (fixed).",
    ),
    click.option("--batch-size", type=click.IntRange(min=1), default=128, show_default=True),
    click.option("--seed", type=int, default=0, show_default=True),
)
MODEL_OPTIONS = _options(
    click.option(
        "--architecture",
        type=click.Choice(names.ARCHITECTURES),
        default="mlp",
        show_default=True,
        help="Networks; pixelcnn and lstm decoders are autoregressive (lstm is the default for text).",
    ),
    click.option("--latent-dim", type=click.IntRange(min=1), default=32, show_default=True),
    click.option(
        "--likelihood",
        type=click.Choice(LIKELIHOODS),
        default="bernoulli",
        show_default=True,
        help="p(x|z): Bernoulli or Gaussian; Poisson, negative binomial or zero-inflated NB for counts; "
        "categorical over the words (the default for text).",
    ),
)
OPTIMIZER_OPTIONS = _options(
    click.option("--optimizer", type=click.Choice(tuple(names.OPTIMIZERS)), default="adam", show_default=True),
    click.option("--weight-decay", type=click.FloatRange(min=0), default=None, help="Decoupled weight decay [default: the optimizer's]."),
    click.option("--clip-norm", type=click.FloatRange(min=0, min_open=True), default=None, help="Clip each part's gradients to this global L2 norm."),
    click.option("--clip-value", type=click.FloatRange(min=0, min_open=True), default=None, help="Clip each gradient element to ±this."),
)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="keras-vae")
def main():
    """Train variational autoencoders that do not silently collapse."""


# --------------------------------------------------------------------- train
# Options a resumed run may change; the others are the run's own.
RESUMABLE = {"epochs", "backend", "quiet", "verbose", "resume", "distribute", "devices"}
NOT_SAVED = {"resume", "overwrite", "quiet", "verbose"}


@main.command()
@DATA_OPTIONS
@MODEL_OPTIONS
@click.option("--beta", type=click.FloatRange(min=0), default=1.0, show_default=True, help="KL weight β (the end value of a schedule).")
@click.option("--beta-schedule", type=click.Choice(BETA_SCHEDULES), default="constant", show_default=True, help="How β reaches --beta.")
@click.option("--beta-warmup-steps", type=click.IntRange(min=1), default=None, help="Iterations of a linear/cosine β warm-up [default: a third of training].")
@click.option("--beta-cycles", type=click.IntRange(min=1), default=4, show_default=True, help="Cycles of the cyclical β schedule.")
@click.option("--beta-ratio", type=click.FloatRange(0, 1, min_open=True), default=0.5, show_default=True, help="Part of each cycle spent rising.")
@click.option("--free-bits", type=click.FloatRange(min=0), default=0.0, show_default=True, help="Nats per latent dimension not penalized.")
@click.option("--aggressive/--no-aggressive", default=False, show_default=True, help="He et al. (2019)'s aggressive encoder training.")
@click.option("--max-inner-steps", type=click.IntRange(min=1), default=100, show_default=True, help="Most encoder updates per iteration (aggressive).")
@click.option("--inner-check-every", type=click.IntRange(min=1), default=10, show_default=True, help="Encoder updates between convergence checks (aggressive).")
@click.option("--mi-patience", type=click.IntRange(min=1), default=1, show_default=True, help="Epochs without higher I(x; z) before aggressive mode ends.")
@OPTIMIZER_OPTIONS
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True, help="Learning rate (the peak of a schedule).")
@click.option("--lr-schedule", type=click.Choice(LEARNING_RATE_SCHEDULES), default="constant", show_default=True)
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True)
@click.option(
    "--distribute",
    type=click.Choice(["none", "data-parallel"]),
    default="none",
    show_default=True,
    help="data-parallel: split each --batch-size batch over the devices (keras.distribution on JAX, tf.distribute on TensorFlow).",
)
@click.option(
    "--devices",
    type=click.IntRange(min=1),
    default=None,
    help="Devices per process for --distribute [default: all accelerators]; without any, the CPU is split into this many.",
)
@click.option(
    "--scale-learning-rate",
    is_flag=True,
    help="Linear scaling rule: multiply --learning-rate by the number of devices (with --batch-size multiplied alike).",
)
@click.option("--output", type=click.Path(file_okay=False), default=None, help="Run directory [default: runs/DATASET].")
@click.option("--overwrite", is_flag=True, help="Replace an existing run directory.")
@click.option("--resume", type=click.Path(file_okay=False), default=None, help="Continue the run in this directory from its newest checkpoint.")
@COMMON_OPTIONS
@_one_line_errors
def train(**options):
    """Train a VAE; writes a run directory with the model, logs, plots and a diagnosis."""
    ctx = click.get_current_context()
    verbosity = 0 if options["quiet"] else 2 if options["verbose"] else 1
    if options["resume"]:
        config, run_dir = _resumed_config(ctx, options)
    else:
        config = {k: list(v) if isinstance(v, tuple) else v for k, v in options.items() if k not in NOT_SAVED}
        run_dir = config["output"] = options["output"] or os.path.join("runs", _run_name(options["dataset"]))
        if os.path.exists(config["dataset"]):  # evaluate and sample may run from elsewhere
            config["dataset"] = os.path.abspath(config["dataset"])
        if os.path.exists(run_dir):
            if not options["overwrite"]:
                raise BadInput(f"run directory {run_dir} exists: choose another --output, pass --overwrite, or --resume {run_dir}.")
            _check_replaceable(run_dir, config["dataset"])
    _check_combinations(config)
    _select_backend(config["backend"])
    engine = _distribution(config)
    with engine.scope() if engine is not None else contextlib.nullcontext():
        _train(options, config, run_dir, engine, verbosity)


def _distribution(config):
    """The data-parallel engine the options ask for, or None."""
    if config.get("distribute", "none") == "none":
        if config.get("devices") is not None or config.get("scale_learning_rate"):
            raise BadInput("--devices and --scale-learning-rate go with --distribute data-parallel.")
        return None
    from keras_vae import distribute

    try:
        if config["devices"] is not None:
            distribute.split_cpu(config["devices"])  # no effect where there are accelerators
        return distribute.data_parallel(config["devices"])
    except distribute.DistributeError as error:
        raise BadInput(str(error)) from None


def _check_even_batches(datasets, batch_size, replicas):
    """JAX shards every batch over the devices, so a last, smaller batch must split evenly too."""
    for role, count in (("training", datasets.num_train), ("validation", datasets.num_validation), ("test", datasets.num_test)):
        last = count % batch_size
        if last % replicas:
            raise BadInput(
                f"data-parallel JAX splits every batch evenly over {replicas} devices, but the {role} set's "
                f"{count} examples end in a batch of {last} with --batch-size {batch_size}: choose another "
                "--batch-size (or --validation-fraction), or train with --backend tensorflow."
            )


def _train(options, config, run_dir, engine, verbosity):
    import keras

    from keras_vae import callbacks, datasets as data, distribute
    from keras_vae.app import runs

    config["backend"] = keras.backend.backend()
    datasets = _load_data(data, config)
    if not options["resume"]:
        _resolve_text_defaults(config, datasets)
    _check_data(config, datasets)
    replicas = 1 if engine is None else distribute.num_replicas(engine)
    if replicas > 1 and config["backend"] == "jax":
        _check_even_batches(datasets, config["batch_size"], replicas)
    initial_epoch, history, records = 0, None, None
    checkpoint = runs.latest_checkpoint(run_dir) if options["resume"] else None
    if checkpoint is not None:
        vae = runs.load_model_file(os.path.join(checkpoint[0], runs.MODEL))
        initial_epoch, history, records = checkpoint[1]["epoch"], checkpoint[1]["history"], checkpoint[1]["latent_records"]
        if initial_epoch >= config["epochs"] and os.path.isfile(os.path.join(run_dir, runs.SUMMARY)):
            raise BadInput(f"{run_dir} already trained {initial_epoch} epochs: pass a larger --epochs to train it longer.")
    else:
        try:
            scaled = dict(config, learning_rate=config["learning_rate"] * replicas) if config.get("scale_learning_rate") else config
            vae = runs.build_vae(scaled, datasets.input_shape, datasets.num_train, datasets.conditions, datasets.vocabulary)
            vae.initialize_decoder_bias(datasets.train)
        except ValueError as error:
            raise BadInput(" ".join(str(error).split()) or type(error).__name__) from None
    if options["resume"]:
        runs.write_config(run_dir, config)
    else:
        runs.start_directory(run_dir, config, overwrite=options["overwrite"])

    click.echo(
        f"keras-vae {__version__} on {config['backend']}: {datasets.name} {datasets.input_shape}, "
        f"{config['architecture']} VAE, latent {config['latent_dim']}, {config['epochs']} epochs"
        + (f", data-parallel on {replicas} devices" if engine is not None else "")
        + (f", resuming after epoch {initial_epoch}" if initial_epoch else "")
    )
    try:
        seconds = 0.0
        if initial_epoch < config["epochs"]:  # else: killed after its last epoch, before the final files
            seconds, history, records = runs.train(
                vae, config, run_dir, datasets, initial_epoch, history, records, verbose=verbosity, log=click.echo
            )
    except callbacks.NonFiniteLossError as error:
        last = runs.latest_checkpoint(run_dir)
        kept = f"the newest checkpoint, {last[0]}, is the last good epoch" if last else "no epoch finished, so there is no checkpoint"
        raise click.ClickException(
            f"training stopped: {error}; {kept}. Lower --learning-rate or add --clip-norm 1.0, and start again with --overwrite."
        ) from None
    summary, diagnosis = runs.finish(vae, config, run_dir, datasets, seconds, history, records)
    _print_summary(run_dir, config, summary, diagnosis, verbosity)


def _resumed_config(ctx, options):
    run_dir = options["resume"]
    if options["overwrite"]:
        raise BadInput("--resume continues a run and --overwrite replaces it: pass one of them.")
    config = _saved_config(run_dir)
    given = {
        name
        for name in options
        if ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.DEFAULT_MAP)
    }
    def same(name):
        if name == "dataset" and os.path.exists(options[name]):
            return os.path.abspath(options[name]) == config.get(name)
        value = options[name]
        return (list(value) if isinstance(value, tuple) else value) == config.get(name)

    changed = [name for name in sorted(given - RESUMABLE) if not same(name)]
    if changed:
        flags = ", ".join("--" + name.replace("_", "-") for name in changed)
        raise BadInput(f"--resume continues {run_dir} with the options it was started with: drop {flags}, or start a new run.")
    for name in ("epochs", "backend", "distribute", "devices"):
        if name in given and options[name] is not None:
            if name == "epochs" and options[name] != config["epochs"] and (
                config["lr_schedule"] != "constant" or config["beta_schedule"] == "cyclical"
            ):
                raise BadInput(
                    f"--epochs {options[name]}: the learning-rate and β schedules of {run_dir} were sized for "
                    f"{config['epochs']} epochs; resume without --epochs, or start a new run."
                )
            config[name] = options[name]
    return config, run_dir


def _check_replaceable(run_dir, dataset):
    """--overwrite replaces an earlier run (or an empty folder), nothing else."""
    here = os.path.abspath(run_dir)
    if os.listdir(here) and not os.path.isfile(os.path.join(here, "config.json")):
        raise BadInput(f"--overwrite replaces keras-vae runs only, and {run_dir} is not one (no config.json): choose another --output.")
    inside = [os.getcwd(), os.path.abspath(dataset)]
    if any(path == here or path.startswith(here + os.sep) for path in inside):
        raise BadInput(f"--overwrite would delete {run_dir}, which holds the working directory or the dataset: choose another --output.")


def _saved_config(run_dir):
    """The `[train]` section a run was started with (read without importing Keras)."""
    path = os.path.join(run_dir, "config.json")
    if not os.path.isfile(path):
        raise BadInput(f"{run_dir} is not a keras-vae run directory (no config.json): pass the --output of a keras-vae train run.")
    try:
        with open(path) as file:
            return dict(json.load(file)["train"])
    except (ValueError, KeyError, TypeError) as error:
        raise BadInput(f"{path} is unreadable ({error}): restore it, or start the run again with --overwrite.") from None


def _check_combinations(config):
    if config["aggressive"] and config["lr_schedule"] != "constant":
        raise BadInput(
            f"--aggressive with --lr-schedule {config['lr_schedule']}: aggressive training steps the encoder a varying "
            "number of times per iteration, so a step-indexed schedule would run ahead on the encoder; use --lr-schedule constant."
        )
    if config["beta_warmup_steps"] is not None and config["beta_schedule"] not in ("linear", "cosine"):
        raise BadInput(f"--beta-warmup-steps sets a warm-up, but --beta-schedule is {config['beta_schedule']}: pass --beta-schedule linear or cosine.")
    if config["clip_norm"] is not None and config["clip_value"] is not None:
        raise BadInput("--clip-norm and --clip-value both clip the gradients: pass one of them.")


def _load_data(data, config, split=None):
    return data.load(
        config["dataset"],
        batch_size=config["batch_size"],
        validation_fraction=config["validation_fraction"],
        test_split=split or config["test_split"],
        binarize=None if config["binarize"] == "none" else config["binarize"],
        seed=config["seed"],
        conditions=config.get("condition") or (),
    )


def _resolve_text_defaults(config, datasets):
    """Text takes the LSTM networks and the categorical likelihood unless other options were given (then refused)."""
    ctx = click.get_current_context()
    is_text = datasets.vocabulary is not None
    for name, for_text in (("architecture", "lstm"), ("likelihood", "categorical")):
        if is_text and ctx.get_parameter_source(name) in (ParameterSource.DEFAULT, None):
            config[name] = for_text
        elif is_text != (config[name] == for_text):
            flag = "--" + name
            fix = f"drop {flag} (or pass {flag} {for_text})" if is_text else f"drop {flag} {for_text}, or train on a .txt file of sentences"
            what = "sentences" if is_text else "not sentences"
            raise BadInput(f"{config['dataset']} holds {what}, but {flag} is {config[name]}: {fix}.")


def _check_data(config, datasets):
    if datasets.vocabulary is not None:
        return
    low, high = datasets.value_range
    if config["likelihood"] == "bernoulli" and (low < 0 or high > 1):
        other = "nb (counts)" if datasets.is_counts else "gaussian"
        raise BadInput(
            f"{config['dataset']} has values in [{low:.4g}, {high:.4g}], but a Bernoulli likelihood needs [0, 1]: "
            f"scale the data into [0, 1], or pass --likelihood {other}."
        )
    if config["likelihood"] in COUNT_LIKELIHOODS and not datasets.is_counts:
        raise BadInput(
            f"--likelihood {config['likelihood']} models counts, but {config['dataset']} has values that are not "
            "non-negative integers (or were rescaled, e.g. uint8 images): pass --likelihood gaussian or bernoulli."
        )
    shape = datasets.input_shape
    if config["architecture"] == "conv" and (len(shape) != 3 or shape[0] % 4 or shape[1] % 4):
        raise BadInput(
            f"the conv architecture needs images (height, width, channels) with height and width divisible by 4; "
            f"{config['dataset']} has examples of shape {shape}: pad or resize them, or pass --architecture mlp."
        )


def _run_name(dataset):
    name = os.path.basename(os.path.normpath(dataset))
    return os.path.splitext(name)[0].split(":")[0] if os.path.exists(dataset) else name.split(":")[0]


def _print_summary(run_dir, config, summary, diagnosis, verbosity):
    test = summary["test"]
    click.echo(
        f"test: negative ELBO {test['negative_elbo']:.2f} nats (reconstruction {test['reconstruction_loss']:.2f} + "
        f"KL {test['kl_loss']:.2f}); {test['active_units']}/{config['latent_dim']} active units; "
        f"I(x; z) {test['mutual_info']:.2f} nats"
    )
    if diagnosis is None:
        click.echo("diagnosis: needs at least two epochs (keras-vae diagnose RUN_DIR once there are)")
    else:
        failed = [check.name for check in diagnosis.checks if not check.passed]
        verdict = "healthy" if not failed else "needs attention: " + "; ".join(failed)
        click.echo(f"diagnosis: {verdict} (diagnosis.txt)")
        if verbosity >= 2:
            click.echo(str(diagnosis))
    click.echo(f"trained to epoch {summary['epochs']}; this session trained for {summary['train_seconds']:.0f} s")
    click.echo(
        f"run directory: {run_dir} (model.keras, config.json, history.csv, training_curves.png, "
        "diagnosis.txt, summary.json, diagnostics/, checkpoints/)"
    )
    click.echo(f"next: keras-vae evaluate {run_dir}; keras-vae sample {run_dir}")


# ------------------------------------------------------------------ evaluate
@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--split", default=None, help="TFDS split to evaluate [default: the run's test split].")
@click.option("--num-samples", "-k", type=click.IntRange(min=1), default=5000, show_default=True, help="Importance samples per example for the NLL.")
@click.option("--max-examples", type=click.IntRange(min=1), default=None, help="Evaluate only the first this many examples.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--output", type=click.Path(dir_okay=False), default=None, help="JSON file [default: RUN_DIR/evaluation.json].")
@COMMON_OPTIONS
@_one_line_errors
def evaluate(run_dir, split, num_samples, max_examples, seed, output, backend, quiet, verbose):
    """Test-split negative ELBO, importance-weighted NLL, I(x; z) and active units of a run."""
    config = _saved_config(run_dir)
    _select_backend(backend)

    import keras
    import numpy as np

    from keras_vae import datasets as data
    from keras_vae.evaluation import diagnostics
    from keras_vae.evaluation import metrics
    from keras_vae.app import runs
    from keras_vae.files import write_json

    if split and os.path.exists(config["dataset"]):
        raise BadInput(f"--split picks a TFDS split, but {config['dataset']} is a file or folder with a fixed test set: drop --split.")
    vae, which = runs.load_model(run_dir)
    datasets = _load_data(data, config, split)
    batches = list(data.numpy_batches(datasets.test, config["batch_size"]))
    x = keras.tree.map_structure(lambda *arrays: np.concatenate(arrays)[:max_examples], *batches)
    batch = config["batch_size"]
    start = time.perf_counter()
    elbo = vae.evaluate(x, batch_size=batch, verbose=0, return_dict=True)
    latent = latent.latent_statistics(vae, x, batch, seed=seed)
    nll = keras.ops.convert_to_numpy(metrics.importance_weighted_nll(vae, x, num_samples, seed=seed, verbose=not quiet))
    seconds = time.perf_counter() - start
    result = {
        "run": run_dir,
        "model": which,
        "split": split or config["test_split"],
        "examples": len(keras.tree.flatten(x)[0]),
        "negative_elbo": float(elbo["reconstruction_loss"] + elbo["kl_loss"]),
        "reconstruction_loss": float(elbo["reconstruction_loss"]),
        "kl_loss": float(elbo["kl_loss"]),
        "importance_weighted_nll": float(np.mean(nll)),
        "importance_samples": num_samples,
        "mutual_info": float(latent["mutual_info"]),
        "active_units": int(latent["active_units"]),
        "latent_dim": int(vae.latent_dim),
        "seconds": seconds,
    }
    if datasets.vocabulary is not None:
        from keras_vae.datasets import text

        result["perplexity"] = text.perplexity(nll, x)
    path = output or os.path.join(run_dir, runs.EVALUATION)
    write_json(path, result)
    rows = [
        ("negative ELBO", f"{result['negative_elbo']:.2f} nats"),
        ("  reconstruction", f"{result['reconstruction_loss']:.2f} nats"),
        ("  KL", f"{result['kl_loss']:.2f} nats"),
        (f"IW-NLL (k={num_samples})", f"{result['importance_weighted_nll']:.2f} nats"),
        ("I(x; z)", f"{result['mutual_info']:.2f} nats"),
        ("active units", f"{result['active_units']} / {result['latent_dim']}"),
    ]
    if "perplexity" in result:
        rows.insert(4, ("perplexity", f"{result['perplexity']:.1f}"))
    click.echo(f"{run_dir} ({which}) on {config['dataset']} {result['split']}, {result['examples']} examples:")
    for name, value in rows:
        click.echo(f"  {name:<22}{value:>14}")
    click.echo(f"written {path} ({seconds:.0f} s)")


# -------------------------------------------------------------------- sample
@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--num-samples", "-n", type=click.IntRange(min=1), default=64, show_default=True, help="Samples from the prior.")
@click.option(
    "--format", "file_format", type=click.Choice(["png", "npy", "txt"]), default=None, help="[default: png for images, txt for text]"
)
@click.option("--interpolate", nargs=2, type=click.IntRange(min=0), default=(0, 1), show_default=True, help="Indices of two test examples.")
@click.option("--steps", type=click.IntRange(min=2), default=10, show_default=True, help="Points on the interpolation line.")
@click.option("--output-dir", type=click.Path(file_okay=False), default=None, help="[default: RUN_DIR/samples]")
@click.option("--seed", type=int, default=0, show_default=True)
@COMMON_OPTIONS
@_one_line_errors
def sample(run_dir, num_samples, file_format, interpolate, steps, output_dir, seed, backend, quiet, verbose):
    """Samples from the prior, reconstructions, and a latent interpolation between two inputs."""
    config = _saved_config(run_dir)
    _select_backend(backend)

    import keras
    import numpy as np

    from keras_vae import datasets as data, plotting
    from keras_vae.app import runs
    from keras_vae.files import atomic_path

    vae, which = runs.load_model(run_dir)
    datasets = _load_data(data, config)
    is_text = datasets.vocabulary is not None
    file_format = file_format or ("txt" if is_text else "png")
    if file_format == "png" and not runs.is_image(datasets.input_shape):
        raise BadInput(f"examples of shape {datasets.input_shape} are not images: pass --format {'txt' if is_text else 'npy'}.")
    if file_format == "txt" and not is_text:
        raise BadInput(f"{config['dataset']} is not text: pass --format png or npy.")
    inputs, _ = datasets.probe(max(16, max(interpolate) + 1))
    first, second = interpolate
    # A conditional VAE's inputs are a dict of x and the conditions: its samples take the
    # conditions of the test examples in turn, and the interpolation those of the first.
    x = inputs["x"] if datasets.conditions else inputs
    if max(interpolate) >= len(x):
        raise BadInput(f"--interpolate {first} {second}: the test set has only {len(x)} examples.")
    to_numpy = keras.ops.convert_to_numpy
    examples = lambda index: keras.tree.map_structure(lambda array: array[index], inputs)  # noqa: E731
    weights = np.linspace(0.0, 1.0, steps, dtype="float32")[:, None]
    codes = to_numpy(vae.embed(examples([first, second])))
    points = (1 - weights) * codes[0] + weights * codes[1]
    if datasets.conditions:
        conditions = {name: np.resize(inputs[name], num_samples) for name in datasets.conditions}
        samples = to_numpy(vae.sample(num_samples, condition=conditions, seed=seed))
        line = to_numpy(vae.decode(points, {name: inputs[name][first] for name in datasets.conditions}))
    else:
        samples = to_numpy(vae.sample(num_samples, seed=seed))
        line = to_numpy(vae.decode(points))
    reconstructions = to_numpy(vae.reconstruct(examples(slice(0, 16))))
    outputs = {
        "samples": (samples, "samples from the prior"),
        "reconstructions": (np.concatenate([x[:8], reconstructions[:8], x[8:16], reconstructions[8:16]]), "inputs above reconstructions"),
        "interpolation": (np.concatenate([x[[first]], line, x[[second]]]), f"test example {first} → {second}"),
    }
    output_dir = output_dir or os.path.join(run_dir, "samples")
    for name, (images, title) in outputs.items():
        path = os.path.join(output_dir, f"{name}.{file_format}")
        if file_format == "txt":
            lines = datasets.vocabulary.decode(images)
            if name == "reconstructions":  # inputs above reconstructions, as pairs
                lines = [f"{a}\n  → {b}" for a, b in zip(datasets.vocabulary.decode(x[:16]), lines[8:16] + lines[24:32])]
            with atomic_path(path) as temporary, open(temporary, "w", encoding="utf-8") as file:
                file.write(f"# {title}\n" + "\n".join(lines) + "\n")
        elif file_format == "npy":
            with atomic_path(path) as temporary:
                np.save(temporary, images)
        else:
            columns = steps + 2 if name == "interpolation" else 8
            plotting.plot_images(images, path, title=title, columns=columns)
        click.echo(f"written {path}")


# ------------------------------------------------------------------ diagnose
@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@COMMON_OPTIONS
@_one_line_errors
def diagnose(run_dir, backend, quiet, verbose):
    """The diagnosis report of a run, from its history and latent dynamics."""
    config = _saved_config(run_dir)
    _select_backend(backend)

    from keras_vae.evaluation import diagnostics
    from keras_vae.app import runs

    history_path = os.path.join(run_dir, runs.HISTORY)
    if not os.path.isfile(history_path):
        raise BadInput(f"{run_dir} has no {runs.HISTORY} yet: let its first epoch finish.")
    history = diagnostics.read_history_csv(history_path)
    records_path = os.path.join(run_dir, runs.DIAGNOSTICS, runs.LATENT_RECORDS)
    records = None
    if os.path.isfile(records_path):
        with open(records_path) as file:
            records = json.load(file)
    try:
        report = diagnostics.diagnose(history, config["latent_dim"], latent_curves=records)
    except ValueError as error:
        raise BadInput(f"{run_dir}: {error}") from None
    click.echo(str(report))


# -------------------------------------------------------------------- export
@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--overwrite", is_flag=True, help="Replace an earlier export at OUT_DIR.")
@COMMON_OPTIONS
@_one_line_errors
def export(run_dir, out_dir, overwrite, backend, quiet, verbose):
    """A run's model as a SavedModel with named signatures, usable without keras-vae.

    The signatures are encode, embed, decode, reconstruct and sample (see the
    README). OUT_DIR appears only once the export has been reloaded and every
    signature matched the model.
    """
    config = _saved_config(run_dir)
    if os.path.exists(out_dir):
        if not overwrite:
            raise BadInput(f"{out_dir} exists: choose another OUT_DIR, or pass --overwrite to replace an earlier export.")
        if not os.path.isfile(os.path.join(out_dir, "saved_model.pb")):
            raise BadInput(f"--overwrite replaces exports only, and {out_dir} is not one (no saved_model.pb): choose another OUT_DIR.")
    _select_backend(backend)

    from keras_vae import hub, networks
    from keras_vae.app import runs

    if config.get("architecture") in names.AUTOREGRESSIVE_ARCHITECTURES:
        raise BadInput(
            f"{run_dir} has an autoregressive {config['architecture']} decoder, which decodes one position per call and has "
            f"no export yet: load {os.path.join(run_dir, runs.MODEL)} with keras.saving.load_model instead."
        )
    vae, which = runs.load_model(run_dir)
    start = time.perf_counter()
    differences = hub.export(vae, out_dir, verbose=verbose)
    worst = max(differences, key=differences.get)
    if not quiet:
        click.echo(f"exported {run_dir} ({which}) to {out_dir} ({hub.directory_size(out_dir) / 1e6:.1f} MB, {time.perf_counter() - start:.0f} s)")
        click.echo(f"signatures: {', '.join(hub.ENDPOINTS)} (load with tf.saved_model.load; no keras-vae needed)")
        click.echo(
            f"verified: every signature matches the model at batch sizes {' and '.join(map(str, hub.VERIFY_BATCH_SIZES))}; "
            f"largest difference {differences[worst]:.2g}" + (f" ({worst})" if differences[worst] else "")
        )


# ------------------------------------------------------------------- lr-find
@main.command("lr-find")
@DATA_OPTIONS
@MODEL_OPTIONS
@OPTIMIZER_OPTIONS
@click.option("--min-lr", type=click.FloatRange(min=0, min_open=True), default=1e-6, show_default=True)
@click.option("--max-lr", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True)
@click.option("--steps", type=click.IntRange(min=10), default=300, show_default=True, help="Steps of the exponential ramp.")
@click.option("--output", type=click.Path(dir_okay=False), default="lr_find.png", show_default=True, help="Plot (a .json with the curve is written beside it).")
@COMMON_OPTIONS
@_one_line_errors
def lr_find(**options):
    """The learning-rate range test: raise the learning rate exponentially and watch the loss."""
    if options["min_lr"] >= options["max_lr"]:
        raise BadInput(f"--min-lr {options['min_lr']} must be below --max-lr {options['max_lr']}.")
    if options["clip_norm"] is not None and options["clip_value"] is not None:
        raise BadInput("--clip-norm and --clip-value both clip the gradients: pass one of them.")
    _select_backend(options["backend"])

    from keras_vae import datasets as data, lr_finder, plotting
    from keras_vae.app import runs
    from keras_vae.files import write_json

    config = {**options, "lr_schedule": "constant", "learning_rate": options["min_lr"]}
    datasets = _load_data(data, config)
    _resolve_text_defaults(config, datasets)
    _check_data(config, datasets)
    vae = runs.new_vae(config, datasets.input_shape, datasets.conditions, datasets.vocabulary)
    vae.compile(optimizer=runs.optimizer(config, 1, 1))
    result = lr_finder.lr_range_test(
        vae,
        datasets.train,
        min_learning_rate=options["min_lr"],
        max_learning_rate=options["max_lr"],
        num_steps=options["steps"],
        verbose=0 if options["quiet"] else 1,
    )
    plotting.plot_lr_range_test(result, options["output"])
    write_json(os.path.splitext(options["output"])[0] + ".json", result.to_dict())
    if result.max_learning_rate != result.max_learning_rate:  # NaN: the loss never fell
        raise click.ClickException(
            f"the loss never fell between {options['min_lr']:g} and {options['max_lr']:g} in {len(result.losses)} steps "
            f"(plot {options['output']}): widen the range with --min-lr/--max-lr, or raise --steps."
        )
    click.echo(
        f"suggested learning rates: base {result.base_learning_rate:.2g}, max {result.max_learning_rate:.2g} "
        f"({len(result.losses)} steps; plot {options['output']})"
    )
    click.echo(
        f"e.g. keras-vae train --lr-schedule one-cycle --learning-rate {result.max_learning_rate:.2g}, "
        f"or --lr-schedule constant --learning-rate {result.max_learning_rate / 3:.2g}"
    )

