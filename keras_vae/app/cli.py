"""The `keras-vae` command line: train, evaluate, sample, diagnose, export, lr-find.

Each command parses its options, turns them into a `TrainConfig`
(`keras_vae.app.config`), calls the library (`keras_vae.app.runs`,
`keras_vae.evaluation`, ...) and prints. Options come from flags, else from a
config file (`--config`, TOML or JSON, one section per command: `[train]`,
`[evaluate]`, ...; `lr-find` also reads `[train]`), else from the defaults. The
console script (`keras_vae_cli`) sets `KERAS_BACKEND` from `--backend` before
Keras is imported; here the backend is only checked.

Bad input (unknown dataset, unusable data, impossible options, an existing or
corrupt run directory) ends with one line on stderr and exit code 2, before
anything is written; other failures with one line and exit code 1. `--verbose`
adds the traceback.
"""

import contextlib
import functools
import os
import sys
import time
import traceback
import warnings

import click
import keras
from click.core import ParameterSource

from keras_vae import datasets, hub, plotting
from keras_vae.app import analysis, build, config, runs, samples, tracking
from keras_vae.app.options import (
    COMMON_OPTIONS,
    COUNT,
    DATA_OPTIONS,
    DISTRIBUTE_OPTIONS,
    MODEL_OPTIONS,
    OBJECTIVE_OPTIONS,
    OPTIMIZER_OPTIONS,
    PLATEAU_OPTIONS,
    POSITIVE,
    RUN_DIR,
    RUN_DIRECTORY_OPTIONS,
    SCHEDULE_OPTIONS,
    SEED,
    TRACKING_OPTIONS,
)
from keras_vae.evaluation import predictive, report
from keras_vae.files import write_json
from keras_vae.names import PROJECTIONS
from keras_vae.version import __version__
from keras_vae_cli import preflight

# Exceptions that mean the input cannot be used (exit code 2).
BAD_INPUT = (datasets.DataError, config.ConfigError, runs.RunError, preflight.PreflightError)


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
            if isinstance(error, BAD_INPUT):  # our own messages, whole: they end with what to do
                raise BadInput(message) from None
            if len(message) > 300:  # e.g. Keras quoting a whole model config
                message = message[:300] + "…"
            hint = "" if kwargs.get("verbose") else " (run with --verbose for the traceback)"
            raise click.ClickException(f"{type(error).__name__}: {message}{hint}") from None

    return run


def _given(ctx):
    """The options set by a flag or a config file (not left at their defaults)."""
    return {
        name
        for name in ctx.params
        if ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.DEFAULT_MAP)
    }


def _select_backend(backend):
    """The console script applied --backend before Keras was imported; here it can only be checked."""
    if backend is not None and keras.backend.backend() != backend:
        raise BadInput(
            f"Keras was already imported with the {keras.backend.backend()} backend; "
            f"--backend {backend} must be applied before that (run keras-vae in a new process)."
        )


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="keras-vae")
def main():
    """Train variational autoencoders that do not silently collapse."""


# --------------------------------------------------------------------- train
@main.command()
@DATA_OPTIONS
@MODEL_OPTIONS
@OBJECTIVE_OPTIONS
@OPTIMIZER_OPTIONS
@SCHEDULE_OPTIONS
@PLATEAU_OPTIONS
@DISTRIBUTE_OPTIONS
@RUN_DIRECTORY_OPTIONS
@TRACKING_OPTIONS
@COMMON_OPTIONS
@_one_line_errors
def train(**options):
    """Train a VAE; writes a run directory with the model, logs, plots and a diagnosis."""
    given = _given(click.get_current_context())
    tracking.check(options["mlflow"])
    verbosity = 0 if options["quiet"] else 2 if options["verbose"] else 1
    if options["resume"]:
        run_dir = options["resume"]
        train_config = runs.resumed_config(run_dir, options, given)
    else:
        train_config = runs.new_config(config.TrainConfig.from_options(options), overwrite=options["overwrite"])
        run_dir = train_config.output
    train_config.check()
    _select_backend(options["backend"])
    engine = build.distribution(train_config)
    with engine.scope() if engine is not None else contextlib.nullcontext():
        run = runs.start(
            train_config,
            run_dir,
            resume=bool(options["resume"]),
            overwrite=options["overwrite"],
            given=given,
            engine=engine,
        )
        used, data = run.config, run.datasets
        click.echo(
            f"keras-vae {__version__} on {used.backend}: {data.name} {data.input_shape}, "
            f"{used.architecture} {used.model.upper()}, latent {used.latent_dim}, {used.epochs} epochs"
            + (f", data-parallel on {run.replicas} devices" if engine is not None else "")
            + (f", resuming after epoch {run.initial_epoch}" if run.initial_epoch else "")
            + f"; {used.optimizer}, learning rate {used.resolved_learning_rate:.3g}"
            + (
                f" ({used.lr_scaling or 'linear'} scaling of {used.learning_rate:.3g} from batch size "
                f"{used.reference_batch_size} to {used.batch_size}, with warm-up)"
                if used.reference_batch_size
                else ""
            )
        )
        with tracking.tracked(used, run_dir, options["tensorboard"], options["mlflow"]) as tracker:
            try:
                seconds = runs.train(run, verbose=verbosity, log=click.echo, **tracker.train_arguments)
            except runs.TrainingStopped as error:
                raise click.ClickException(str(error)) from None
            summary, diagnosis = runs.finish(run, seconds)
            tracker.finish(summary)
    test = summary["test"]
    click.echo(
        f"test: negative ELBO {test['negative_elbo']:.2f} nats (reconstruction {test['reconstruction_loss']:.2f} + "
        f"KL {test['kl_loss']:.2f})"
    )
    click.echo(report.Assessment.from_dict(test["assessment"]).summary_line())
    if diagnosis is None:
        click.echo("diagnosis: needs at least two epochs (keras-vae diagnose RUN_DIR once there are)")
    else:
        problems = diagnosis.problems()
        click.echo(
            f"diagnosis: {diagnosis.verdict}"
            + (f"; the curves show: {'; '.join(problems)}" if problems else "")
            + " (diagnosis.txt; keras-vae diagnose RUN_DIR for the figure)"
        )
        if verbosity >= 2:
            click.echo(str(diagnosis))
    click.echo(f"trained to epoch {summary['epochs']}; this session trained for {summary['train_seconds']:.0f} s")
    if summary.get("best_epoch") is not None:
        click.echo(
            f"model.keras is the best epoch, {summary['best_epoch']} (val_loss {summary['best_val_loss']:.4f}; "
            "--keep-best); the test numbers above are its own"
        )
    click.echo(
        f"run directory: {run_dir} (model.keras, config.json, history.csv, training_curves.png, "
        "diagnosis.txt, assessment.json, summary.json, diagnostics/, checkpoints/)"
    )
    click.echo(f"next: keras-vae evaluate {run_dir}; keras-vae sample {run_dir}")


# ------------------------------------------------------------------ evaluate
@main.command()
@RUN_DIR
@click.option("--split", help="TFDS split to evaluate [default: the run's test split].")
@click.option(
    "--num-samples",
    "-k",
    type=COUNT,
    default=5000,
    show_default=True,
    help="Importance samples per example for the NLL.",
)
@click.option("--max-examples", type=COUNT, help="Evaluate only the first this many examples.")
@SEED
@click.option("--output", type=click.Path(dir_okay=False), help="JSON file [default: RUN_DIR/evaluation.json].")
@COMMON_OPTIONS
@_one_line_errors
def evaluate(run_dir, split, num_samples, max_examples, seed, output, backend, quiet, verbose):
    """Test-split negative ELBO, importance-weighted NLL, I(x; z) and active units of a run."""
    train_config = runs.read_config(run_dir)
    _select_backend(backend)
    vae, which = runs.load_model(run_dir)  # before the data: a damaged model is reported at once
    data = build.load_data(train_config, split)
    result = report.evaluate(
        vae,
        data.test,
        batch_size=train_config.batch_size,
        num_samples=num_samples,
        max_examples=max_examples,
        text=data.vocabulary is not None,
        seed=seed,
        verbose=not quiet,
    )
    split = split or train_config.test_split
    path = output or os.path.join(run_dir, runs.EVALUATION)
    write_json(path, {"run": run_dir, "model": which, "split": split, **result.to_dict()})
    rows = [
        ("negative ELBO", f"{result.negative_elbo:.2f} nats"),
        ("  reconstruction", f"{result.reconstruction_loss:.2f} nats"),
        ("  KL", f"{result.kl_loss:.2f} nats"),
        (f"IW-NLL (k={num_samples})", f"{result.importance_weighted_nll:.2f} nats"),
        ("I(x; z)", f"{result.mutual_info:.2f} nats"),
        ("  95% interval", "{:.2f} to {:.2f}".format(*result.mutual_info_interval)),
        ("active units", f"{result.active_units} / {result.latent_dim}"),
        ("decoder uses z by", f"{result.decoder_gap:.2f} nats"),
        ("inference gap", f"{result.inference_gap:.2f} nats"),
        ("latent code", result.verdict),
    ]
    if result.perplexity is not None:
        rows.insert(4, ("perplexity", f"{result.perplexity:.1f}"))
    click.echo(f"{run_dir} ({which}) on {train_config.dataset} {split}, {result.examples} examples:")
    for name, value in rows:
        click.echo(f"  {name:<22}{value:>14}")
    click.echo(f"written {path} ({result.seconds:.0f} s)")


# -------------------------------------------------------------------- sample
@main.command()
@RUN_DIR
@click.option("--num-samples", "-n", type=COUNT, default=64, show_default=True, help="Samples from the prior.")
@click.option(
    "--format", "file_format", type=click.Choice(["png", "npy", "txt"]), help="[default: png for images, txt for text]"
)
@click.option(
    "--interpolate",
    nargs=2,
    type=click.IntRange(min=0),
    default=(0, 1),
    show_default=True,
    help="Indices of two test examples.",
)
@click.option(
    "--steps", type=click.IntRange(min=2), default=10, show_default=True, help="Points on the interpolation line."
)
@click.option("--output-dir", type=click.Path(file_okay=False), help="[default: RUN_DIR/samples]")
@SEED
@COMMON_OPTIONS
@_one_line_errors
def sample(run_dir, num_samples, file_format, interpolate, steps, output_dir, seed, backend, quiet, verbose):
    """Samples from the prior, reconstructions, and a latent interpolation between two inputs."""
    train_config = runs.read_config(run_dir)
    _select_backend(backend)
    vae, _ = runs.load_model(run_dir)
    data = build.load_data(train_config)
    output_dir = output_dir or os.path.join(run_dir, "samples")
    for path in samples.write_samples(vae, data, output_dir, num_samples, interpolate, steps, file_format, seed):
        click.echo(f"written {path}")


# ------------------------------------------------------------------ diagnose
@main.command()
@RUN_DIR
@click.option(
    "--projection",
    type=click.Choice(PROJECTIONS),
    help='Also draw the test probe\'s latent means by label and condition: pca, or umap (pip install "keras-vae[umap]").',
)
@COMMON_OPTIONS
@_one_line_errors
def diagnose(run_dir, projection, backend, quiet, verbose):
    """The diagnosis of a run: the verdict on its latent code with per-dimension evidence, and a figure."""
    _select_backend(backend)
    if projection:
        try:
            plotting.check_projection(projection)
        except ImportError as error:
            raise BadInput(str(error)) from None
    diagnosis, figure = runs.diagnose(run_dir)
    click.echo(str(diagnosis))
    click.echo(f"figure: {figure}")
    if projection:
        click.echo(f"latent space: {', '.join(analysis.latent_figures(run_dir, projection))}")


# --------------------------------------------------------------------- check
@main.command()
@RUN_DIR
@click.option("--replicates", type=click.IntRange(min=2), default=10, show_default=True, help="Replicate data sets.")
@click.option("--max-examples", type=COUNT, help="Check only the first this many test examples.")
@SEED
@click.option("--output-dir", type=click.Path(file_okay=False), help="[default: RUN_DIR]")
@COMMON_OPTIONS
@_one_line_errors
def check(run_dir, replicates, max_examples, seed, output_dir, backend, quiet, verbose):
    """Posterior predictive check: per-feature mean, variance and zero fraction of replicates against the test data."""
    _select_backend(backend)
    result, path, figure = analysis.check_run(run_dir, replicates, max_examples, seed or 0, output_dir, not quiet)
    summary = result.summary()
    click.echo(f"{run_dir}: {result.replicates} replicates of {result.examples} test examples, per feature:")
    for statistic in predictive.STATISTICS:
        numbers = summary[statistic]
        click.echo(
            f"  {statistic.replace('_', ' '):<14} error {numbers['error']:.3f}  bias {numbers['bias']:+.3f}  "
            f"coverage {numbers['coverage']:.2f} (calibrated: {summary['expected_coverage']:.2f})"
        )
    click.echo(f"written {path}, {figure}")


# --------------------------------------------------------------------- embed
@main.command()
@RUN_DIR
@click.argument("input_path", type=click.Path(exists=True, dir_okay=False))
@click.option("--output", required=True, type=click.Path(dir_okay=False), help="An .h5ad or .npz file.")
@click.option(
    "--library-size", default="1e4", show_default=True, help="Counts per row of the normalized layer, or 'own'."
)
@click.option("--condition", "counterfactual", multiple=True, help="NAME=VALUE: also decode every row under it.")
@click.option("--batch-size", type=COUNT, default=1024, show_default=True, help="Rows per model call.")
@COMMON_OPTIONS
@_one_line_errors
def embed(run_dir, input_path, output, library_size, counterfactual, batch_size, backend, quiet, verbose):
    """Latent means and normalized (optionally counterfactual) expression of a count table, as .h5ad or .npz."""
    _select_backend(backend)
    rows, latent_dim = analysis.embed_run(run_dir, input_path, output, library_size, counterfactual, batch_size, quiet)
    click.echo(f"written {output}: {rows} rows, latent {latent_dim} (obsm['X_keras_vae'], layers, uns['keras_vae'])")


# -------------------------------------------------------------------- export
@main.command()
@RUN_DIR
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--overwrite", is_flag=True, help="Replace an earlier export at OUT_DIR.")
@click.option(
    "--format",
    "export_format",
    type=click.Choice(hub.FORMATS),
    default=hub.SAVEDMODEL,
    show_default=True,
    help="savedmodel: one TensorFlow SavedModel; onnx: one NAME.onnx per endpoint (pip install 'keras-vae[onnx]').",
)
@COMMON_OPTIONS
@_one_line_errors
def export(run_dir, out_dir, overwrite, export_format, backend, quiet, verbose):
    """A run's model as a SavedModel with named signatures (or ONNX files), usable without keras-vae.

    The endpoints are encode, embed, decode, reconstruct and sample (see
    docs/export.md; encode and embed only for autoregressive decoders). OUT_DIR
    appears only once the export has been reloaded and every endpoint matched the model.
    """
    runs.check_export(run_dir, out_dir, overwrite)
    if export_format == hub.ONNX:
        try:
            hub.onnx_format.check_installed()
        except hub.ExportError as error:
            raise BadInput(str(error)) from None
    _select_backend(backend)
    vae, which = runs.load_model(run_dir)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the endpoints not exported are printed below
        differences = hub.export(vae, out_dir, format=export_format, verbose=verbose)
    worst = max(differences, key=differences.get)
    if not quiet:
        metadata = hub.read_metadata(out_dir)
        size, seconds = hub.directory_size(out_dir) / 1e6, time.perf_counter() - start
        click.echo(f"exported {run_dir} ({which}) to {out_dir} ({size:.1f} MB, {seconds:.0f} s)")
        if export_format == hub.ONNX:
            click.echo(f"files: {', '.join(metadata['files'].values())} (run with onnxruntime; no keras-vae needed)")
        else:
            click.echo(
                f"signatures: {', '.join(metadata['endpoints'])} (load with tf.saved_model.load; no keras-vae needed)"
            )
        refused = metadata.get("refused_endpoints", {})
        if refused:
            click.echo(f"{', '.join(refused)}: {next(iter(refused.values()))}")
        batch_sizes = " and ".join(map(str, hub.VERIFY_BATCH_SIZES))
        click.echo(
            f"verified: every endpoint matches the model at batch sizes {batch_sizes}; "
            f"largest difference {differences[worst]:.2g}" + (f" ({worst})" if differences[worst] else "")
        )


# ------------------------------------------------------------------- lr-find
@main.command("lr-find")
@DATA_OPTIONS
@MODEL_OPTIONS
@OPTIMIZER_OPTIONS
@click.option("--min-lr", type=POSITIVE, default=1e-6, show_default=True)
@click.option("--max-lr", type=POSITIVE, default=1.0, show_default=True)
@click.option(
    "--steps", type=click.IntRange(min=10), default=300, show_default=True, help="Steps of the exponential ramp."
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False),
    default="lr_find.png",
    show_default=True,
    help="Plot (a .json with the curve is written beside it).",
)
@COMMON_OPTIONS
@_one_line_errors
def lr_find(**options):
    """The learning-rate range test: raise the learning rate exponentially and watch the loss."""
    min_lr, max_lr, plot = options["min_lr"], options["max_lr"], options["output"]
    _select_backend(options["backend"])
    train_config = config.TrainConfig.from_options({**options, "output": None})
    given = _given(click.get_current_context())
    result = build.lr_range_test(
        train_config, given, min_lr, max_lr, options["steps"], plot, verbose=0 if options["quiet"] else 1
    )
    if result.max_learning_rate != result.max_learning_rate:  # NaN: the loss never fell
        raise click.ClickException(
            f"the loss never fell between {min_lr:g} and {max_lr:g} in {len(result.losses)} steps "
            f"(plot {plot}): widen the range with --min-lr/--max-lr, or raise --steps."
        )
    click.echo(
        f"suggested learning rates: base {result.base_learning_rate:.2g}, max {result.max_learning_rate:.2g} "
        f"({len(result.losses)} steps; plot {plot})"
    )
    click.echo(
        f"e.g. keras-vae train --lr-schedule one-cycle --learning-rate {result.max_learning_rate:.2g}, "
        f"or --lr-schedule constant --learning-rate {result.max_learning_rate / 3:.2g}"
    )
