"""From a `TrainConfig` to what `train` and `lr-find` run on: the data, checked against the
options, and the model (networks, likelihood, β schedule, optimizer).

The checks refuse, with a `ConfigError` that says what to pass instead, options
that cannot model the data or run on the devices, before anything is written.
"""

import dataclasses
import math
import os

import keras

from keras_vae import datasets as data
from keras_vae import distribute, likelihoods, lr_finder, names, optimizers, plotting, schedules
from keras_vae.app.config import ConfigError, document_word_range
from keras_vae.datasets.text import is_text_file
from keras_vae.files import write_json
from keras_vae.models import VAE, VAEGAN, AutoregressiveVAE, ConditionalVAE


# ---------------------------------------------------------- the data, checked
def load_data(config, split=None):
    """The run's data (`keras_vae.datasets.load`), with the test set of another TFDS `split` if given."""
    if split and os.path.exists(config.dataset):
        raise ConfigError(
            f"--split picks a TFDS split, but {config.dataset} is a file or folder with a fixed test set: drop --split."
        )
    document_words = document_word_range(config.document_words)
    if document_words is not None and not (os.path.isfile(config.dataset) and is_text_file(config.dataset)):
        raise ConfigError(
            f"--document-words joins the sentences of a .txt/.txt.gz file, but {config.dataset} is not one: "
            "drop --document-words, or pass a text file of sentences."
        )
    return data.load(
        config.dataset,
        batch_size=config.batch_size,
        validation_fraction=config.validation_fraction,
        test_split=split or config.test_split,
        binarize=None if config.binarize == "none" else config.binarize,
        seed=config.seed,
        conditions=config.condition,
        download=config.download,
        document_words=document_words,
    )


def resolve_text_defaults(config, datasets, given):
    """Text takes the LSTM networks and the categorical likelihood unless other options were `given` (then refused)."""
    is_text = datasets.vocabulary is not None
    for name, for_text in (("architecture", names.LSTM), ("likelihood", names.CATEGORICAL)):
        if is_text and name not in given:
            config = dataclasses.replace(config, **{name: for_text})
        elif is_text != (getattr(config, name) == for_text):
            flag = "--" + name
            fix = (
                f"drop {flag} (or pass {flag} {for_text})"
                if is_text
                else f"drop {flag} {for_text}, or train on a .txt file of sentences"
            )
            what = "sentences" if is_text else "not sentences"
            raise ConfigError(f"{config.dataset} holds {what}, but {flag} is {getattr(config, name)}: {fix}.")
    return config


def resolve_model_defaults(config, datasets, given):
    """A VAE-GAN takes conv networks on images unless --architecture was `given`."""
    shape = datasets.input_shape
    if config.model == names.VAE_GAN and "architecture" not in given and len(shape) == 3:
        if shape[0] % 4 == 0 and shape[1] % 4 == 0:
            return dataclasses.replace(config, architecture=names.CONV)
    return config


def check_data(config, datasets):
    """Refuses a likelihood or architecture that cannot model the data."""
    if datasets.vocabulary is not None:
        return
    low, high = datasets.value_range
    if config.likelihood == names.BERNOULLI and (low < 0 or high > 1):
        other = "nb (counts)" if datasets.is_counts else "gaussian"
        raise ConfigError(
            f"{config.dataset} has values in [{low:.4g}, {high:.4g}], but a Bernoulli likelihood needs [0, 1]: "
            f"scale the data into [0, 1], or pass --likelihood {other}."
        )
    if config.likelihood in names.COUNT_LIKELIHOODS and not datasets.is_counts:
        raise ConfigError(
            f"--likelihood {config.likelihood} models counts, but {config.dataset} has values that are not "
            "non-negative integers (or were rescaled, e.g. uint8 images): pass --likelihood gaussian or bernoulli."
        )
    shape = datasets.input_shape
    if config.architecture == names.CONV and (len(shape) != 3 or shape[0] % 4 or shape[1] % 4):
        raise ConfigError(
            f"the conv architecture needs images (height, width, channels) with height and width divisible by 4; "
            f"{config.dataset} has examples of shape {shape}: pad or resize them, or pass --architecture mlp."
        )


def distribution(config):
    """The data-parallel engine the config asks for, or None."""
    if config.distribute == "none":
        return None
    try:
        if config.devices is not None:
            distribute.split_cpu(config.devices)  # no effect where there are accelerators
        return distribute.data_parallel(config.devices)
    except distribute.DistributeError as error:
        raise ConfigError(str(error)) from None


def check_even_batches(datasets, batch_size, replicas):
    """JAX shards every batch over the devices, so a last, smaller batch must split evenly too."""
    for role, count in (
        ("training", datasets.num_train),
        ("validation", datasets.num_validation),
        ("test", datasets.num_test),
    ):
        last = count % batch_size
        if last % replicas:
            raise ConfigError(
                f"data-parallel JAX splits every batch evenly over {replicas} devices, but the {role} set's "
                f"{count} examples end in a batch of {last} with --batch-size {batch_size}: choose another "
                "--batch-size (or --validation-fraction), or train with --backend tensorflow."
            )


# ---------------------------------------------------------------- the model
def steps_per_epoch(config, num_train):
    return max(1, math.ceil(num_train / config.batch_size))


def beta_schedule(config, total_steps):
    """The β schedule the config names; warm-ups default to a third of training."""
    name, beta = config.beta_schedule, config.beta
    warmup = config.beta_warmup_steps or max(1, total_steps // 3)
    if name == names.BETA_CONSTANT:
        return schedules.Constant(beta)
    if name == names.BETA_LINEAR:
        return schedules.LinearWarmup(warmup, end=beta)
    if name == names.BETA_COSINE:
        return schedules.CosineWarmup(warmup, end=beta)
    return schedules.Cyclical(total_steps, n_cycles=config.beta_cycles, ratio=config.beta_ratio, end=beta)


def resolved_learning_rate(config):
    """--learning-rate scaled from --reference-batch-size to --batch-size (itself without a reference)."""
    if config.reference_batch_size is None:
        return config.learning_rate
    scale = optimizers.batch_size_scale(config.batch_size, config.reference_batch_size, config.lr_scaling or "linear")
    return config.learning_rate * scale


def optimizer(config, total_steps, steps_in_epoch):
    """The config's optimizer with its learning-rate schedule, moments or momentum, weight decay and clipping.

    With a reference batch size, the rate is `resolved_learning_rate` and warms
    up linearly over the first 5% of the steps. Clipping applies to each of the
    encoder's and decoder's optimizers (they are copies), i.e. to each part's
    gradients separately.
    """
    learning_rate = schedules.learning_rate_schedule(
        config.lr_schedule, resolved_learning_rate(config), total_steps, steps_per_epoch=steps_in_epoch
    )
    if config.reference_batch_size is not None:
        learning_rate = optimizers.WarmupLearningRate(learning_rate, max(1, round(0.05 * total_steps)))
    options = {
        name: getattr(config, name)
        for name in ("beta_1", "beta_2", "epsilon", "momentum")
        if getattr(config, name) is not None
    }
    if config.nesterov:
        options["nesterov"] = True
    if config.weight_decay is not None:
        options["weight_decay"] = config.weight_decay
    if config.clip_norm is not None:
        options["global_clipnorm"] = config.clip_norm
    if config.clip_value is not None:
        options["clipvalue"] = config.clip_value
    return optimizers.get(config.optimizer, learning_rate=learning_rate, **options)


def new_vae(config, input_shape, conditions=None, vocabulary=None):
    """The uncompiled `VAE` the config describes: a `ConditionalVAE` given `conditions`,
    an `AutoregressiveVAE` for the pixelcnn and lstm architectures (the latter over `vocabulary`),
    its layers made under the config's dtype policy (Keras's global one is left as it was)."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(config.dtype_policy)
    try:
        return _new_vae(config, input_shape, conditions, vocabulary)
    finally:
        keras.config.set_dtype_policy(previous)


def _new_vae(config, input_shape, conditions, vocabulary):
    likelihood = (
        likelihoods.Categorical(len(vocabulary)) if config.likelihood == names.CATEGORICAL else config.likelihood
    )
    options = dict(
        latent_dim=config.latent_dim, architecture=config.architecture, likelihood=likelihood, seed=config.seed
    )
    autoregressive = config.architecture in names.AUTOREGRESSIVE_ARCHITECTURES
    if config.model == names.VAE_GAN:
        if autoregressive or conditions:
            raise ValueError(
                f"--model vae-gan builds mlp or conv networks without conditions, not {config.architecture}: "
                "pass --architecture mlp or conv, or use --model vae."
            )
        return VAEGAN.from_input_shape(input_shape, **options)
    if conditions:
        if autoregressive:
            raise ValueError(
                f"The {config.architecture} decoder takes no condition: drop the conditions, or use --architecture mlp."
            )
        return ConditionalVAE.from_input_shape(input_shape, conditions, **options)
    return (AutoregressiveVAE if autoregressive else VAE).from_input_shape(input_shape, **options)


def build_vae(config, input_shape, num_train, conditions=None, vocabulary=None):
    """A compiled `new_vae` as the config describes it."""
    in_epoch = steps_per_epoch(config, num_train)
    total = in_epoch * config.epochs
    vae = new_vae(config, input_shape, conditions, vocabulary)
    if config.model == names.VAE_GAN:
        vae.compile(
            optimizer=optimizer(config, total, in_epoch), beta=beta_schedule(config, total), free_bits=config.free_bits
        )
        return vae
    vae.compile(
        optimizer=optimizer(config, total, in_epoch),
        beta=beta_schedule(config, total),
        free_bits=config.free_bits,
        aggressive=config.aggressive,
        max_inner_steps=config.max_inner_steps,
        inner_check_every=config.inner_check_every,
        mi_patience=config.mi_patience,
        min_mi_gain=config.min_mi_gain,
    )
    return vae


# ----------------------------------------------------------------- lr-find
def lr_range_test(config, given, min_lr, max_lr, steps, output, verbose=1):
    """The learning-rate range test of the model `config` describes; writes its plot and a .json beside it."""
    if min_lr >= max_lr:
        raise ConfigError(f"--min-lr {min_lr} must be below --max-lr {max_lr}.")
    config = dataclasses.replace(
        config,
        lr_schedule=names.LEARNING_RATE_CONSTANT,
        learning_rate=min_lr,
        reference_batch_size=None,
        lr_scaling=None,
    )
    config.check()
    datasets = load_data(config)
    config = resolve_text_defaults(config, datasets, given)
    check_data(config, datasets)
    vae = new_vae(config, datasets.input_shape, datasets.conditions, datasets.vocabulary)
    vae.compile(optimizer=optimizer(config, 1, 1))
    result = lr_finder.lr_range_test(
        vae, datasets.train, min_learning_rate=min_lr, max_learning_rate=max_lr, num_steps=steps, verbose=verbose
    )
    plotting.plot_lr_range_test(result, output)
    write_json(os.path.splitext(output)[0] + ".json", result.to_dict())
    return result
