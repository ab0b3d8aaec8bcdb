"""Run directories of `keras-vae train`: starting, replacing, resuming, checkpointing and finishing a
run from its `TrainConfig`, and reading it back for the other commands.

A run directory holds:

    config.json          the resolved options, as a `[train]` section (usable as --config)
    model.keras          the final model (written once the last epoch is done); with --keep-best, the
                         model of the epoch with the lowest validation loss (summary.json: best_epoch)
    vocabulary.json      the words of a text run's token ids
    history.csv          per-epoch logs, rewritten atomically each epoch
    checkpoints/         epoch-NNNN/{model.keras,state.json}, the newest two; with --keep-best,
                         best/{model.keras,best.json}; with --lr-decay-patience, lr_decay_best.npz
    diagnostics/         latent dynamics (CSV, JSON, PNG), latent-space plots, image grids (the figures
                         every --figure-every epochs and after the last)
    training_curves.png  loss, reconstruction, KL, β, active units, I(x; z)
    diagnosis.txt        the diagnosis report
    assessment.json      the latent code's assessment on the test probe (verdict, per-dimension evidence)
    diagnosis.png        the assessment as one figure (written by `keras-vae diagnose`)
    summary.json         final test numbers, timings, versions

Every file is written atomically, so a run killed at any moment resumes from its
newest checkpoint and loses at most the epoch in progress.
"""

import dataclasses
import json
import os
import shutil
import time
import warnings
import zipfile

import keras

from keras_vae import callbacks, distribute, hub, names, plotting
from keras_vae.app import build
from keras_vae.app.config import TrainConfig
from keras_vae.evaluation import assessment, diagnostics, report
from keras_vae.files import atomic_path, write_json
from keras_vae.version import __version__
from keras_vae_cli import preflight

CONFIG, MODEL = preflight.CONFIG, preflight.MODEL
HISTORY = "history.csv"
CHECKPOINTS = preflight.CHECKPOINTS
DIAGNOSTICS = "diagnostics"
CURVES = "training_curves.png"
DIAGNOSIS = "diagnosis.txt"
SUMMARY = "summary.json"
EVALUATION = "evaluation.json"
ASSESSMENT = "assessment.json"
DIAGNOSIS_FIGURE = "diagnosis.png"
COLLAPSE_RECORDS = callbacks.collapse.RECORDS_FILE
LATENT_RECORDS = "latent_dynamics.json"
VOCABULARY = "vocabulary.json"
BEST = "best"  # in CHECKPOINTS: the best epoch's model (--keep-best)
LR_DECAY_BEST = "lr_decay_best.npz"  # in CHECKPOINTS: DecayOnPlateau's best weights (--lr-decay-patience)
LR_DECAY_STATE = "lr_decay"  # key of DecayOnPlateau's counters in a checkpoint's state.json

PROBE_SIZE = 2000


class RunError(ValueError):
    """A run that cannot be started, resumed or read as asked: the message says why and what to do."""


class TrainingStopped(RuntimeError):
    """The loss stopped being finite; the message names the last good checkpoint."""


def is_image(shape):
    """Whether examples of this shape can be drawn: (height, width, 1, 3 or 4 channels)."""
    return len(shape) == 3 and shape[-1] in (1, 3, 4)


# ------------------------------------------------------------------ reading
def read_config(run_dir):
    """The `TrainConfig` a run was started with (the run's `config.json`)."""
    preflight.check_run_directory(run_dir)
    return TrainConfig.from_json(os.path.join(run_dir, CONFIG))


def latest_checkpoint(run_dir):
    """`(path, state)` of the newest complete checkpoint, or None if there is none."""
    paths = callbacks.checkpoint_paths(os.path.join(run_dir, CHECKPOINTS))
    if not paths:
        return None
    path = paths[-1]
    try:
        with open(os.path.join(path, "state.json")) as file:
            state = json.load(file)
        missing = {"epoch", "history", "latent_records"} - set(state)
        if missing:
            raise ValueError(f"state.json lacks {', '.join(sorted(missing))}")
        return path, state
    except (OSError, ValueError, TypeError) as error:
        raise _corrupt(path, error) from None


def load_model(run_dir):
    """The run's final model, else its newest checkpoint: `(vae, description)`."""
    final = os.path.join(run_dir, MODEL)
    if os.path.isfile(final):
        return load_model_file(final), "final model"
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is None:
        raise RunError(
            f"{run_dir} has no model yet (no {MODEL}, no checkpoint): let its first epoch finish, or resume it."
        )
    return load_model_file(
        os.path.join(checkpoint[0], MODEL)
    ), f"checkpoint after epoch {checkpoint[1]['epoch']} (the run has not finished)"


def load_model_file(path):
    """A saved VAE; a file that will not load is reported as a corrupt checkpoint."""
    checkpoint = os.path.dirname(path)
    fallback = (
        f"delete {checkpoint} to fall back on the checkpoint before it"
        if os.path.basename(checkpoint).startswith("epoch-")
        else f"delete {path} to fall back on the run's newest checkpoint"
    )
    preflight.check_model_file(path, f"{fallback}, or start the run again with --overwrite")
    try:
        return keras.saving.load_model(path)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as error:
        raise _corrupt(path, error) from None


def _corrupt(path, error):
    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    return RunError(
        f"checkpoint {path} is corrupt ({reason}): delete it to fall back on the one "
        "before, or start the run again with --overwrite."
    )


# ---------------------------------------------------------------- lifecycle
def new_config(config, overwrite=False):
    """The config of a new run: its directory (default `runs/DATASET`) free, or an old run to replace."""
    output = config.output or os.path.join("runs", run_name(config.dataset))
    # An absolute path: evaluate and sample may run from elsewhere.
    dataset = os.path.abspath(config.dataset) if os.path.exists(config.dataset) else config.dataset
    preflight.check_new_run_directory(output, overwrite, dataset)
    return dataclasses.replace(config, output=output, dataset=dataset)


def resumed_config(run_dir, options, given):
    """The config of the run in `run_dir`, continued with the `given` options (`TrainConfig.resumed`)."""
    preflight.check_resumable(run_dir, options.get("overwrite"))
    return read_config(run_dir).resumed(options, given, run_dir)


def run_name(dataset):
    name = os.path.basename(os.path.normpath(dataset))
    return os.path.splitext(name)[0].split(":")[0] if os.path.exists(dataset) else name.split(":")[0]


@dataclasses.dataclass
class Run:
    """A run ready to train: its directory, config, data and model, and where it left off."""

    directory: str
    config: TrainConfig
    datasets: object
    vae: object
    replicas: int = 1
    initial_epoch: int = 0
    history: dict | None = None
    latent_records: list | None = None
    lr_decay: dict | None = None


def start(config, run_dir, *, resume=False, overwrite=False, given=(), engine=None):
    """Loads and checks the data, builds the model (or restores the newest checkpoint), then writes `config.json`.

    Nothing is written before every check has passed.
    """
    config = dataclasses.replace(config, backend=keras.backend.backend())
    datasets = build.load_data(config)
    if not resume:
        config = build.resolve_text_defaults(config, datasets, given)
        config = build.resolve_model_defaults(config, datasets, given)
    build.check_data(config, datasets)
    config = dataclasses.replace(config, resolved_learning_rate=build.resolved_learning_rate(config))
    replicas = 1 if engine is None else distribute.num_replicas(engine)
    if replicas > 1 and config.backend == "jax":
        build.check_even_batches(datasets, config.batch_size, replicas)
    run = Run(run_dir, config, datasets, None, replicas)
    checkpoint = latest_checkpoint(run_dir) if resume else None
    if checkpoint is not None:
        run.vae = load_model_file(os.path.join(checkpoint[0], MODEL))
        state = checkpoint[1]
        run.initial_epoch, run.history, run.latent_records = state["epoch"], state["history"], state["latent_records"]
        run.lr_decay = state.get(LR_DECAY_STATE)
        if run.initial_epoch >= config.epochs and os.path.isfile(os.path.join(run_dir, SUMMARY)):
            raise RunError(
                f"{run_dir} already trained {run.initial_epoch} epochs: pass a larger --epochs to train it longer."
            )
    else:
        try:
            run.vae = build.build_vae(
                config, datasets.input_shape, datasets.num_train, datasets.conditions, datasets.vocabulary
            )
            run.vae.initialize_decoder_bias(datasets.train)
        except ValueError as error:
            raise RunError(" ".join(str(error).split()) or type(error).__name__) from None
    if not resume:
        if overwrite and os.path.exists(run_dir):
            shutil.rmtree(run_dir)
        os.makedirs(run_dir)
    write_config(run_dir, config)
    return run


def write_config(run_dir, config):
    config.to_json(os.path.join(run_dir, CONFIG))


def train(run, verbose=1, log=print, tensorboard_dir=None, tracking=()):
    """Fits the run's model for the rest of its epochs with checkpoints, diagnostics and plots.

    With `tensorboard_dir`, Keras's TensorBoard callback logs there too (`train/`,
    `validation/`), and the latent dynamics and figures go to its `diagnostics/`.
    `tracking` callbacks (e.g. an `MLflowLogger`) see the logs after the diagnostics.

    Returns the seconds it trained, and updates `run.history` and `run.latent_records`.
    Raises `TrainingStopped` when the loss stops being finite: the newest
    checkpoint is then the last good epoch.
    """
    config, run_dir, datasets = run.config, run.directory, run.datasets
    if run.initial_epoch >= config.epochs:  # killed after its last epoch, before the final files
        return 0.0
    diagnostics_dir = os.path.join(run_dir, DIAGNOSTICS)
    probe_x, probe_labels = datasets.probe(PROBE_SIZE)
    board = tensorboard_dir and os.path.join(tensorboard_dir, DIAGNOSTICS)
    latent = callbacks.LatentDynamics(
        probe_x, diagnostics_dir, batch_size=config.batch_size, tensorboard_dir=board, figure_every=config.figure_every
    )
    latent.records = list(run.latent_records or [])
    monitor = callbacks.CollapseMonitor(
        probe_x,
        batch_size=config.batch_size,
        remedy=None if config.collapse_remedy == "none" else config.collapse_remedy,
        train_data=datasets.train,
        output_dir=diagnostics_dir,
        seed=config.seed,
    )
    watchers = [
        callbacks.StopOnNonFiniteLoss(),
        latent,
        monitor,
    ]
    autoregressive = config.architecture in names.AUTOREGRESSIVE_ARCHITECTURES
    if is_image(datasets.input_shape):
        # An autoregressive decoder takes one pass per pixel to decode: no decoded grids every epoch.
        watchers.append(
            callbacks.LatentSpacePlot(
                probe_x,
                probe_labels,
                diagnostics_dir,
                every=config.figure_every,
                grid_size=0 if autoregressive else 15,
                tensorboard_dir=board,
                projection=config.projection,
            )
        )
        if not autoregressive:
            watchers.append(
                callbacks.ImageGrids(probe_x, diagnostics_dir, every=config.figure_every, tensorboard_dir=board)
            )
    if datasets.vocabulary is not None:
        datasets.vocabulary.save(os.path.join(run_dir, VOCABULARY))
    # After the diagnostics (which measure the epoch's weights, before a decay reloads the best), before the
    # loggers (which record the learning rate and the decays).
    recipe, recipe_state = _training_recipe(run, log, verbose)
    watchers.extend(recipe)
    if verbose >= 2:
        watchers.append(callbacks.EpochLogger(print_fn=log))
    if tensorboard_dir:
        watchers.append(keras.callbacks.TensorBoard(tensorboard_dir))
    watchers.extend(tracking)
    checkpoint = callbacks.RunCheckpoint(
        os.path.join(run_dir, CHECKPOINTS),
        history=run.history,
        extra_state=lambda: {"latent_records": latent.records, **recipe_state()},
        history_csv=os.path.join(run_dir, HISTORY),
    )
    # A resumed run reshuffles differently from the epochs it already did.
    keras.utils.set_random_seed(config.seed + run.initial_epoch)
    start_time = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _collapse_warnings_to(log, warnings.showwarning)
            run.vae.fit(
                datasets.train,
                epochs=config.epochs,
                initial_epoch=run.initial_epoch,
                validation_data=datasets.validation if datasets.validation is not None else datasets.test,
                shuffle=False,  # the pipeline reshuffles every epoch
                verbose=1 if verbose else 0,
                callbacks=[*watchers, checkpoint],
            )
    except callbacks.NonFiniteLossError as error:
        last = latest_checkpoint(run_dir)
        kept = (
            f"the newest checkpoint, {last[0]}, is the last good epoch"
            if last
            else "no epoch finished, so there is no checkpoint"
        )
        raise TrainingStopped(
            f"training stopped: {error}; {kept}. Lower --learning-rate or add --clip-norm 1.0, and start again with --overwrite."
        ) from None
    run.history, run.latent_records = checkpoint.history, latent.records
    return time.perf_counter() - start_time


def _training_recipe(run, log, verbose):
    """The callbacks of --lr-decay-patience, --early-stopping and --keep-best, all on the validation loss, and
    a function returning what of their state goes into each checkpoint: `(callbacks, state)`.

    A resumed run continues them: the decay's counters come from the checkpoint
    and its best weights from `checkpoints/lr_decay_best.npz`, early stopping
    replays the history, and the best model so far is `checkpoints/best/`.
    """
    config, checkpoints = run.config, os.path.join(run.directory, CHECKPOINTS)
    recipe, decay = [], None
    if config.lr_decay_patience is not None:
        given = {"factor": config.lr_decay_factor, "max_decays": config.max_lr_decays}  # None: the callback's default
        decay = callbacks.DecayOnPlateau(
            monitor=names.VAL_LOSS,
            patience=config.lr_decay_patience,
            **{name: value for name, value in given.items() if value is not None},
            best_weights_path=os.path.join(checkpoints, LR_DECAY_BEST),
            verbose=1 if verbose else 0,
            print_fn=log,
        )
        if run.lr_decay is not None:
            decay.set_state(run.lr_decay)
        recipe.append(decay)
    if config.early_stopping is not None:
        recipe.append(
            callbacks.ResumedEarlyStopping(
                history=run.history,
                monitor=names.VAL_LOSS,
                patience=config.early_stopping,
                verbose=1 if verbose else 0,
            )
        )
    if config.keep_best:
        recipe.append(
            callbacks.BestModelCheckpoint(
                os.path.join(checkpoints, BEST), monitor=names.VAL_LOSS, resume=run.initial_epoch > 0
            )
        )
    return recipe, lambda: {} if decay is None else {LR_DECAY_STATE: decay.get_state()}


def _collapse_warnings_to(log, show):
    """A `warnings.showwarning` that gives the collapse monitor's warning to `log` as one line, others to `show`."""

    def show_warning(message, category, *args, **kwargs):
        if issubclass(category, callbacks.PosteriorCollapseWarning):
            log(f"warning: {message}")
        else:
            show(message, category, *args, **kwargs)

    return show_warning


def finish(run, seconds):
    """Saves the final model and writes the test numbers, plots, diagnosis and summary: `(summary, diagnosis)`."""
    config, run_dir, history = run.config, run.directory, run.history or {}
    best = callbacks.read_best_record(os.path.join(run_dir, CHECKPOINTS, BEST)) if config.keep_best else None
    if best is not None:  # the test numbers below are the best model's too
        best_model = os.path.join(run_dir, CHECKPOINTS, BEST, MODEL)
        run.vae = load_model_file(best_model)
        with atomic_path(os.path.join(run_dir, MODEL)) as temporary:
            shutil.copyfile(best_model, temporary)
    else:
        with atomic_path(os.path.join(run_dir, MODEL)) as temporary:
            run.vae.save(temporary)
    # No IW-NLL here (K decoder passes per example): `keras-vae evaluate` adds it.
    test = report.evaluate(
        run.vae,
        run.datasets.test,
        batch_size=config.batch_size,
        num_samples=None,
        latent_examples=PROBE_SIZE,
        seed=config.seed,
    )
    plotting.plot_training_curves(history, os.path.join(run_dir, CURVES), latent_records=run.latent_records)
    # The one assessment of the code: the summary prints it, diagnose reads it back.
    code = assessment.Assessment.from_dict(test.assessment)
    write_json(os.path.join(run_dir, ASSESSMENT), code.to_dict())
    diagnosis = None
    if len(history.get(names.LOSS, [])) >= 2:
        diagnosis = diagnostics.diagnose(history, config.latent_dim, latent_curves=run.latent_records, assessment=code)
        with atomic_path(os.path.join(run_dir, DIAGNOSIS)) as temporary, open(temporary, "w") as file:
            file.write(str(diagnosis) + "\n")
    summary = {
        "test": test.to_dict(),
        "epochs": len(history.get(names.LOSS, [])),
        "train_seconds": seconds,
        "healthy": None if diagnosis is None else diagnosis.healthy,
        "verdict": code.verdict,
        "collapse_monitor": _monitor_state(run_dir),
        "backend": keras.backend.backend(),
        "keras_version": keras.__version__,
        "keras_vae_version": __version__,
        "input_shape": list(run.datasets.input_shape),
    }
    if best is not None:
        summary.update(best_epoch=best["epoch"], best_val_loss=best["value"])
    write_json(os.path.join(run_dir, SUMMARY), summary)
    return summary, diagnosis


# ------------------------------------------------------ the other commands
def diagnose(run_dir, figure=True):
    """The diagnosis of a run, and the path of its figure (or None): `(diagnosis, figure_path)`.

    The latent code's verdict is the one the run's summary gave (`assessment.json`);
    a run that has not finished is assessed now, from its newest checkpoint, on the test probe.
    """
    config = read_config(run_dir)
    history_path = os.path.join(run_dir, HISTORY)
    if not os.path.isfile(history_path):
        raise RunError(f"{run_dir} has no {HISTORY} yet: let its first epoch finish.")
    records = _read_json(os.path.join(run_dir, DIAGNOSTICS, LATENT_RECORDS))
    saved = _read_json(os.path.join(run_dir, ASSESSMENT))
    if saved is not None:
        code = assessment.Assessment.from_dict(saved)
    else:
        vae, _ = load_model(run_dir)
        probe_x, _ = build.load_data(config).probe(PROBE_SIZE)
        code = assessment.assess(vae, probe_x, batch_size=config.batch_size, seed=config.seed)
    try:
        diagnosis = diagnostics.diagnose(
            diagnostics.read_history_csv(history_path), config.latent_dim, latent_curves=records, assessment=code
        )
    except ValueError as error:
        raise RunError(f"{run_dir}: {error}") from None
    path = None
    if figure:
        monitor = _monitor_state(run_dir) or {}
        path = plotting.plot_assessment(
            code, os.path.join(run_dir, DIAGNOSIS_FIGURE), latent_records=records, events=monitor.get("events")
        )
    return diagnosis, path


def _read_json(path):
    if not os.path.isfile(path):
        return None
    with open(path) as file:
        return json.load(file)


def _monitor_state(run_dir):
    """`CollapseMonitor`'s per-epoch verdicts and remedy events of a run, or None."""
    return _read_json(os.path.join(run_dir, DIAGNOSTICS, COLLAPSE_RECORDS))


def check_export(run_dir, out_dir, overwrite):
    """Refuses a run directory that is not one, and an export target that is not free (or an earlier export)."""
    read_config(run_dir)
    if os.path.exists(out_dir):
        if not overwrite:
            raise RunError(
                f"{out_dir} exists: choose another OUT_DIR, or pass --overwrite to replace an earlier export."
            )
        if not hub.is_export(out_dir):
            raise RunError(
                f"--overwrite replaces exports only, and {out_dir} is not one (no saved_model.pb) nor an ONNX export: "
                "choose another OUT_DIR."
            )
