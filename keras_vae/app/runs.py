"""Run directories of `keras-vae train`: building a run from its resolved config,
training it with checkpoints, resuming it, and reading it back.

A run directory holds:

    config.json          the resolved options, as a `[train]` section (usable as --config)
    model.keras          the final model (written once the last epoch is done)
    vocabulary.json      the words of a text run's token ids
    history.csv          per-epoch logs, rewritten atomically each epoch
    checkpoints/         epoch-NNNN/{model.keras,state.json}, the newest two
    diagnostics/         latent dynamics (CSV, JSON, PNG), latent-space plots, image grids
    training_curves.png  loss, reconstruction, KL, β, active units, I(x; z)
    diagnosis.txt        the diagnosis report
    summary.json         final test numbers, timings, versions

Every file is written atomically, so a run killed at any moment resumes from its
newest checkpoint and loses at most the epoch in progress.
"""

import json
import math
import os
import shutil
import time
import zipfile

import keras

from keras_vae import callbacks, names, networks, plotting, schedules
from keras_vae.evaluation import diagnostics
from keras_vae.files import atomic_path, write_json
from keras_vae.version import __version__
from keras_vae.ops import latent

CONFIG = "config.json"
MODEL = "model.keras"
HISTORY = "history.csv"
CHECKPOINTS = "checkpoints"
DIAGNOSTICS = "diagnostics"
CURVES = "training_curves.png"
DIAGNOSIS = "diagnosis.txt"
SUMMARY = "summary.json"
EVALUATION = "evaluation.json"
LATENT_RECORDS = "latent_dynamics.json"
VOCABULARY = "vocabulary.json"

PROBE_SIZE = 2000


class RunError(ValueError):
    """A run directory that cannot be used; the message says why and what to do."""


def is_image(shape):
    """Whether examples of this shape can be drawn: (height, width, 1, 3 or 4 channels)."""
    return len(shape) == 3 and shape[-1] in (1, 3, 4)


# ----------------------------------------------------------------- building
def steps_per_epoch(config, num_train):
    return max(1, math.ceil(num_train / config["batch_size"]))


def beta_schedule(config, total_steps):
    """The β schedule the options name; warm-ups default to a third of training."""
    name, beta = config["beta_schedule"], config["beta"]
    warmup = config.get("beta_warmup_steps") or max(1, total_steps // 3)
    if name == "constant":
        return schedules.Constant(beta)
    if name == "linear":
        return schedules.LinearWarmup(warmup, end=beta)
    if name == "cosine":
        return schedules.CosineWarmup(warmup, end=beta)
    return schedules.Cyclical(total_steps, n_cycles=config["beta_cycles"], ratio=config["beta_ratio"], end=beta)


def optimizer(config, total_steps, steps_in_epoch):
    """Adam or AdamW with the options' learning-rate schedule, weight decay and clipping.

    Clipping applies to each of the encoder's and decoder's optimizers (they are
    copies), i.e. to each part's gradients separately.
    """
    learning_rate = schedules.learning_rate_schedule(
        config["lr_schedule"], config["learning_rate"], total_steps, steps_per_epoch=steps_in_epoch
    )
    options = {}
    if config.get("weight_decay") is not None:
        options["weight_decay"] = config["weight_decay"]
    if config.get("clip_norm") is not None:
        options["global_clipnorm"] = config["clip_norm"]
    if config.get("clip_value") is not None:
        options["clipvalue"] = config["clip_value"]
    return getattr(keras.optimizers, names.OPTIMIZERS[config["optimizer"]])(learning_rate=learning_rate, **options)


def new_vae(config, input_shape, conditions=None, vocabulary=None):
    """The uncompiled `VAE` the model options describe: a `ConditionalVAE` given `conditions`,
    an `AutoregressiveVAE` for the pixelcnn and lstm architectures (the latter over `vocabulary`)."""
    from keras_vae import likelihoods, networks
    from keras_vae.models import AutoregressiveVAE, ConditionalVAE, VAE

    likelihood = config["likelihood"]
    if likelihood == "categorical":
        likelihood = likelihoods.Categorical(len(vocabulary))
    options = dict(latent_dim=config["latent_dim"], architecture=config["architecture"], likelihood=likelihood, seed=config["seed"])
    if conditions:
        if config["architecture"] in names.AUTOREGRESSIVE_ARCHITECTURES:
            raise ValueError(f"The {config['architecture']} decoder takes no condition: drop the conditions, or use --architecture mlp.")
        return ConditionalVAE.from_input_shape(input_shape, conditions, **options)
    if config["architecture"] in names.AUTOREGRESSIVE_ARCHITECTURES:
        return AutoregressiveVAE.from_input_shape(input_shape, **options)
    return VAE.from_input_shape(input_shape, **options)


def build_vae(config, input_shape, num_train, conditions=None, vocabulary=None):
    """A compiled `new_vae` as the resolved options describe it."""
    in_epoch = steps_per_epoch(config, num_train)
    total = in_epoch * config["epochs"]
    vae = new_vae(config, input_shape, conditions, vocabulary)
    vae.compile(
        optimizer=optimizer(config, total, in_epoch),
        beta=beta_schedule(config, total),
        free_bits=config["free_bits"],
        aggressive=config["aggressive"],
        max_inner_steps=config["max_inner_steps"],
        inner_check_every=config["inner_check_every"],
        mi_patience=config["mi_patience"],
    )
    return vae


# ------------------------------------------------------------------ reading
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
        raise RunError(f"{run_dir} has no model yet (no {MODEL}, no checkpoint): let its first epoch finish, or resume it.")
    return load_model_file(os.path.join(checkpoint[0], MODEL)), f"checkpoint after epoch {checkpoint[1]['epoch']} (the run has not finished)"


def load_model_file(path):
    """A saved VAE; a file that will not load is reported as a corrupt checkpoint."""
    import keras_vae.models  # noqa: F401  (registers the classes the file names)

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


# ----------------------------------------------------------------- training
def train(vae, config, run_dir, datasets, initial_epoch=0, history=None, latent_records=None, verbose=1, log=print):
    """Fits `vae` for the rest of its epochs with checkpoints, diagnostics and plots.

    Raises `callbacks.NonFiniteLossError` when the loss stops being finite;
    the newest checkpoint is then the last good epoch.
    """
    diagnostics_dir = os.path.join(run_dir, DIAGNOSTICS)
    probe_x, probe_labels = datasets.probe(PROBE_SIZE)
    latent = callbacks.LatentDynamics(probe_x, diagnostics_dir, batch_size=config["batch_size"])
    latent.records = list(latent_records or [])
    watchers = [callbacks.StopOnNonFiniteLoss(), latent, callbacks.CollapseMonitor(probe_x, batch_size=config["batch_size"])]
    autoregressive = config["architecture"] in names.AUTOREGRESSIVE_ARCHITECTURES
    if is_image(datasets.input_shape):
        # An autoregressive decoder takes one pass per pixel to decode: no decoded grids every epoch.
        watchers.append(callbacks.LatentSpacePlot(probe_x, probe_labels, diagnostics_dir, grid_size=0 if autoregressive else 15))
        if not autoregressive:
            watchers.append(callbacks.ImageGrids(probe_x, diagnostics_dir))
    if datasets.vocabulary is not None:
        datasets.vocabulary.save(os.path.join(run_dir, VOCABULARY))
    if verbose >= 2:
        watchers.append(callbacks.EpochLogger(print_fn=log))
    watchers.append(
        callbacks.RunCheckpoint(
            os.path.join(run_dir, CHECKPOINTS),
            history=history,
            extra_state=lambda: {"latent_records": latent.records},
            history_csv=os.path.join(run_dir, HISTORY),
        )
    )
    # A resumed run reshuffles differently from the epochs it already did.
    keras.utils.set_random_seed(config["seed"] + initial_epoch)
    start = time.perf_counter()
    vae.fit(
        datasets.train,
        epochs=config["epochs"],
        initial_epoch=initial_epoch,
        validation_data=datasets.validation if datasets.validation is not None else datasets.test,
        shuffle=False,  # the pipeline reshuffles every epoch
        verbose=1 if verbose else 0,
        callbacks=watchers,
    )
    return time.perf_counter() - start, watchers[-1].history, latent.records


def finish(vae, config, run_dir, datasets, seconds, history, latent_records):
    """Saves the final model and writes the test numbers, plots, diagnosis and summary."""
    with atomic_path(os.path.join(run_dir, MODEL)) as temporary:
        vae.save(temporary)
    test = vae.evaluate(datasets.test, verbose=0, return_dict=True)
    probe_x, _ = datasets.probe(PROBE_SIZE)
    latent = latent.latent_statistics(vae, probe_x, config["batch_size"], seed=config["seed"])
    plotting.plot_training_curves(history, os.path.join(run_dir, CURVES), latent_records=latent_records)
    diagnosis = None
    if len(history.get(names.LOSS, [])) >= 2:
        diagnosis = diagnostics.diagnose(history, config["latent_dim"], latent_curves=latent_records)
        with atomic_path(os.path.join(run_dir, DIAGNOSIS)) as temporary, open(temporary, "w") as file:
            file.write(str(diagnosis) + "\n")
    summary = {
        "test": {
            "negative_elbo": float(test[names.RECONSTRUCTION_LOSS] + test[names.KL_LOSS]),
            "reconstruction_loss": float(test[names.RECONSTRUCTION_LOSS]),
            "kl_loss": float(test[names.KL_LOSS]),
            "active_units": int(latent["active_units"]),
            "mutual_info": float(latent["mutual_info"]),
        },
        "epochs": len(history.get(names.LOSS, [])),
        "train_seconds": seconds,
        "healthy": None if diagnosis is None else diagnosis.healthy,
        "backend": keras.backend.backend(),
        "keras_version": keras.__version__,
        "keras_vae_version": __version__,
        "input_shape": list(datasets.input_shape),
    }
    write_json(os.path.join(run_dir, SUMMARY), summary)
    return summary, diagnosis


def start_directory(run_dir, config, overwrite):
    """Creates the run directory (replacing an old one if asked) with its config."""
    if overwrite and os.path.exists(run_dir):
        shutil.rmtree(run_dir)
    os.makedirs(run_dir)
    write_config(run_dir, config)


def write_config(run_dir, config):
    write_json(os.path.join(run_dir, CONFIG), {"train": config})
