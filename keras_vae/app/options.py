"""The options the `keras-vae` commands share, defined once and grouped.

An option that a `TrainConfig` field backs takes its default from there. Groups
(`DATA_OPTIONS`, `MODEL_OPTIONS`, ...) are decorators applied to each command in
`keras_vae.app.cli`.
"""

import click

from keras_vae import names
from keras_vae.app import config

DEFAULTS = config.TrainConfig()
COUNT, POSITIVE, NON_NEGATIVE = click.IntRange(min=1), click.FloatRange(min=0, min_open=True), click.FloatRange(min=0)
UNIT_INTERVAL = click.FloatRange(0, 1, max_open=True)


def read_config_file(ctx, param, path):
    """Fills `ctx.default_map` from the command's section of a TOML or JSON file."""
    if path is not None:
        try:
            defaults = config.file_defaults(path, ctx.find_root().command.commands, ctx.command.name)
        except config.ConfigError as error:
            raise click.BadParameter(str(error), ctx, param) from None
        ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return path


def _removed_scale_learning_rate(ctx, param, value):
    if value:
        raise click.BadParameter(config.SCALE_LEARNING_RATE_REMOVED + ".", ctx, param)


def group(*decorators):
    def apply(function):
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return apply


def option(name, **kwargs):
    """An option whose default is `TrainConfig`'s."""
    field = name.split("/")[0][2:].replace("-", "_")
    return click.option(name, default=getattr(DEFAULTS, field), show_default=True, **kwargs)


RUN_DIR = click.argument("run_dir", type=click.Path(file_okay=False))
SEED = click.option("--seed", type=int, default=0, show_default=True)
CONFIG_OPTION = click.option(
    "--config",
    type=click.Path(dir_okay=False),
    is_eager=True,
    expose_value=False,
    callback=read_config_file,
    help="TOML or JSON file with a section per command ([train], [evaluate], ...); flags override it.",
)
COMMON_OPTIONS = group(
    CONFIG_OPTION,
    click.option(
        "--backend", type=click.Choice(names.BACKENDS), help="Keras backend [default: $KERAS_BACKEND, else tensorflow]."
    ),
    click.option("--quiet", "-q", is_flag=True, help="No progress bar."),
    click.option("--verbose", "-v", is_flag=True, help="Per-epoch diagnostics lines and tracebacks of errors."),
)
DATA_OPTIONS = group(
    option(
        "--dataset",
        help="A TFDS image dataset (mnist, fashion_mnist, binarized_mnist, ...), a .npy/.npz/.csv/.h5ad file, "
        "a .txt/.txt.gz file of sentences (one per line; an LSTM VAE), a folder of images, or synthetic-rnaseq.",
    ),
    click.option(
        "--condition",
        multiple=True,
        help="Train a conditional VAE on this covariate (repeatable): an .npz array NAME_train/NAME_test, "
        "a table column, or batch/cell_type of synthetic-rnaseq.",
    ),
    option("--test-split", help="TFDS split for the final test numbers."),
    option(
        "--validation-fraction",
        type=click.FloatRange(0, 1, max_open=True),
        help="Part of the training data held out for validation (and the aggressive-training switch).",
    ),
    option(
        "--binarize",
        type=click.Choice(["none", *names.BINARIZATIONS]),
        help="Binarize pixels: resampled every epoch (dynamic) or drawn once (fixed).",
    ),
    option(
        "--document-words",
        metavar="MIN-MAX",
        help="Text: join consecutive sentences into documents of MIN to MAX words (e.g. 60-100), "
        "each split on its own.",
    ),
    option("--batch-size", type=COUNT),
    option("--seed", type=int),
    option(
        "--download/--no-download",
        help="Download and prepare a TFDS dataset that is not prepared in $TFDS_DATA_DIR; "
        "--no-download says so at once (offline machines).",
    ),
)
MODEL_OPTIONS = group(
    option(
        "--model",
        type=click.Choice(names.MODELS),
        help="vae, or vae-gan (Larsen et al. 2016: a discriminator's features measure the reconstruction; "
        "conv networks by default on images).",
    ),
    option(
        "--architecture",
        type=click.Choice(names.ARCHITECTURES),
        help="Networks; pixelcnn and lstm decoders are autoregressive (lstm is the default for text).",
    ),
    option("--latent-dim", type=COUNT),
    option(
        "--likelihood",
        type=click.Choice(names.LIKELIHOODS),
        help="p(x|z): Bernoulli or Gaussian; Poisson, negative binomial or zero-inflated NB for counts; "
        "categorical over the words (the default for text).",
    ),
    option(
        "--dtype-policy",
        type=click.Choice(names.DTYPE_POLICIES),
        help="Keras dtype policy of the networks: mixed_bfloat16 computes them in bfloat16 with float32 weights; "
        "the likelihood and the KL stay in float32.",
    ),
)
OPTIMIZER_OPTIONS = group(
    option(
        "--optimizer",
        type=click.Choice(tuple(names.OPTIMIZERS)),
        help="adam, adamw (decoupled weight decay), radam (Liu et al. 2020's rectified Adam) or sgd.",
    ),
    click.option("--beta-1", type=UNIT_INTERVAL, help="First-moment decay of adam/adamw/radam [default: 0.9]."),
    click.option("--beta-2", type=UNIT_INTERVAL, help="Second-moment decay of adam/adamw/radam [default: 0.999]."),
    click.option("--epsilon", type=POSITIVE, help="ε added to sqrt(v) by adam/adamw/radam [default: 1e-7]."),
    click.option("--momentum", type=UNIT_INTERVAL, help="Momentum of sgd [default: 0, none]."),
    option("--nesterov/--no-nesterov", help="Nesterov momentum for sgd (with --momentum)."),
    click.option("--weight-decay", type=NON_NEGATIVE, help="Decoupled weight decay [default: the optimizer's]."),
    click.option("--clip-norm", type=POSITIVE, help="Clip each part's gradients to this global L2 norm."),
    click.option("--clip-value", type=POSITIVE, help="Clip each gradient element to ±this."),
)

# The objective: β and its schedule, free bits, aggressive encoder training.
OBJECTIVE_OPTIONS = group(
    option("--beta", type=NON_NEGATIVE, help="KL weight β (the end value of a schedule)."),
    option("--beta-schedule", type=click.Choice(names.BETA_SCHEDULES), help="How β reaches --beta."),
    click.option(
        "--beta-warmup-steps",
        type=COUNT,
        help="Iterations of a linear/cosine β warm-up [default: a third of training].",
    ),
    option("--beta-cycles", type=COUNT, help="Cycles of the cyclical β schedule."),
    option("--beta-ratio", type=click.FloatRange(0, 1, min_open=True), help="Part of each cycle spent rising."),
    option("--free-bits", type=NON_NEGATIVE, help="Nats per latent dimension not penalized."),
    option("--aggressive/--no-aggressive", help="He et al. (2019)'s aggressive encoder training."),
    option("--max-inner-steps", type=COUNT, help="Most encoder updates per iteration (aggressive)."),
    option("--inner-check-every", type=COUNT, help="Encoder updates between convergence checks (aggressive)."),
    option("--mi-patience", type=COUNT, help="Epochs without higher I(x; z) before aggressive mode ends."),
    option("--min-mi-gain", type=NON_NEGATIVE, help="Nats by which I(x; z) must beat its best to count as higher."),
    option(
        "--collapse-remedy",
        type=click.Choice(["none", *names.COLLAPSE_REMEDIES]),
        help="When the code collapses in the first epochs: switch on aggressive training, or raise free bits "
        "(CollapseMonitor's remedy_within and free_bits).",
    ),
)
# The learning rate and the training budget.
SCHEDULE_OPTIONS = group(
    option("--learning-rate", type=POSITIVE, help="Learning rate (the peak of a schedule)."),
    option("--lr-schedule", type=click.Choice(names.LEARNING_RATE_SCHEDULES)),
    option("--epochs", type=COUNT),
)
# He et al. (2019)'s recipe: decay with the best weights reloaded, early stopping, the best model kept.
PLATEAU_OPTIONS = group(
    click.option(
        "--lr-decay-patience",
        type=COUNT,
        help="Epochs without a lower validation loss before the best weights are reloaded and the learning "
        "rate is multiplied by --lr-decay-factor (He et al. 2019) [default: off].",
    ),
    click.option(
        "--lr-decay-factor",
        type=click.FloatRange(0, 1, min_open=True, max_open=True),
        help="The learning rate's multiplier at each decay (with --lr-decay-patience) [default: 0.5].",
    ),
    click.option(
        "--max-lr-decays",
        type=COUNT,
        help="Decays after which training stops (with --lr-decay-patience) [default: 5].",
    ),
    click.option(
        "--early-stopping",
        type=COUNT,
        metavar="PATIENCE",
        help="Stop after this many epochs without a lower validation loss [default: off].",
    ),
    option(
        "--keep-best/--no-keep-best",
        help="model.keras is the epoch with the lowest validation loss (summary.json says which), not the last.",
    ),
)
# Data parallelism, and the learning rate for the batch size.
DISTRIBUTE_OPTIONS = group(
    option(
        "--distribute",
        type=click.Choice(["none", "data-parallel"]),
        help="data-parallel: split each --batch-size batch over the devices (keras.distribution on JAX, tf.distribute on TensorFlow).",
    ),
    click.option(
        "--devices",
        type=COUNT,
        help="Devices per process for --distribute [default: all accelerators]; without any, the CPU is split into this many.",
    ),
    click.option(
        "--reference-batch-size",
        type=COUNT,
        help="The batch size --learning-rate was tuned at: scale it to --batch-size by --lr-scaling, "
        "with a linear warm-up over the first 5% of training.",
    ),
    click.option(
        "--lr-scaling",
        type=click.Choice(names.LR_SCALINGS),
        help="With --reference-batch-size: the rate times the batch-size ratio (linear), or its square root (sqrt) "
        "[default: linear].",
    ),
    click.option(
        "--scale-learning-rate",
        is_flag=True,
        hidden=True,
        expose_value=False,
        callback=_removed_scale_learning_rate,
    ),
)
# Where the run goes, or which run to continue.
RUN_DIRECTORY_OPTIONS = group(
    click.option("--output", type=click.Path(file_okay=False), help="Run directory [default: runs/DATASET]."),
    click.option("--overwrite", is_flag=True, help="Replace an existing run directory."),
    option(
        "--projection",
        type=click.Choice(names.PROJECTIONS),
        help='How latent-space figures draw more than 2 dimensions: pca, or umap (pip install "keras-vae[umap]").',
    ),
    option(
        "--figure-every",
        type=COUNT,
        help="Epochs between redrawn figures (latent space, samples, latent dynamics); the last epoch's are drawn too.",
    ),
    click.option(
        "--resume",
        type=click.Path(file_okay=False),
        help="Continue the run in this directory from its newest checkpoint.",
    ),
)
# Experiment tracking, as well as the run directory's own files.
TRACKING_OPTIONS = group(
    click.option(
        "--tensorboard",
        is_flag=False,
        flag_value="",
        default=None,
        metavar="[DIR]",
        help="TensorBoard logs: Keras's scalars, the latent dynamics and the figures [DIR default: RUN_DIR/tensorboard].",
    ),
    click.option(
        "--mlflow",
        is_flag=False,
        flag_value="",
        default=None,
        metavar="[URI]",
        help="Log to MLflow: config, per-epoch metrics, figures and model (pip install 'keras-vae[mlflow]') "
        "[URI default: the file store ./mlruns].",
    ),
)
