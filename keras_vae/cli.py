"""The `keras-vae` command line.

Heavy imports happen inside the commands, after `--backend` has set
`KERAS_BACKEND`: Keras reads it once, when it is first imported.
"""

import json
import os
import shutil
import sys
import tempfile
import time

import click

from keras_vae.version import __version__

BACKENDS = ("tensorflow", "jax", "torch")


def _select_backend(backend):
    if backend is None:
        return
    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != backend:
            raise click.UsageError(
                f"Keras was already imported with the {keras.backend.backend()} backend; "
                f"--backend {backend} must be applied before that (run keras-vae in a new process)."
            )
    os.environ["KERAS_BACKEND"] = backend


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="keras-vae")
def main():
    """Train variational autoencoders that do not silently collapse."""


@main.command()
@click.option("--dataset", default="mnist", show_default=True, help="TFDS image dataset (mnist, fashion_mnist, binarized_mnist, ...).")
@click.option("--train-split", default="train", show_default=True, help="TFDS split to train on, e.g. 'train[:10%]'.")
@click.option("--test-split", default="test", show_default=True, help="TFDS split for validation and the final test ELBO.")
@click.option("--architecture", type=click.Choice(["mlp", "conv"]), default="mlp", show_default=True)
@click.option("--latent-dim", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--likelihood", type=click.Choice(["bernoulli", "gaussian"]), default="bernoulli", show_default=True)
@click.option("--beta", type=click.FloatRange(min=0), default=1.0, show_default=True, help="Final KL weight β.")
@click.option("--warmup-steps", type=click.IntRange(min=0), default=0, show_default=True, help="Linear β warm-up from 0 over this many iterations.")
@click.option("--free-bits", type=click.FloatRange(min=0), default=0.0, show_default=True, help="Nats per latent dimension not penalized.")
@click.option("--aggressive/--no-aggressive", default=False, show_default=True, help="He et al. (2019)'s aggressive encoder training.")
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True)
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=128, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--backend", type=click.Choice(BACKENDS), default=None, help="Keras backend (default: $KERAS_BACKEND, else tensorflow).")
@click.option("--output", type=click.Path(file_okay=False), default=None, help="Run directory [default: runs/DATASET].")
@click.option("--overwrite", is_flag=True, help="Replace an existing run directory.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def train(dataset, train_split, test_split, architecture, latent_dim, likelihood, beta, warmup_steps, free_bits, aggressive, learning_rate, epochs, batch_size, seed, backend, output, overwrite, quiet):
    """Train a VAE on a TFDS image dataset and save it in a run directory."""
    _select_backend(backend)
    output = output or os.path.join("runs", dataset)
    if os.path.exists(output) and not overwrite:
        raise click.UsageError(f"Run directory {output} exists: choose another --output or pass --overwrite.")

    import keras

    from keras_vae import data, schedules
    from keras_vae.models import VAE

    click.echo(f"keras-vae {__version__} on {keras.backend.backend()}: {dataset}, {architecture}, latent {latent_dim}")
    keras.utils.set_random_seed(seed)
    train_data, input_shape = data.image_dataset(dataset, train_split, batch_size, shuffle=True, seed=seed)
    test_data, _ = data.image_dataset(dataset, test_split, batch_size)
    vae = VAE.from_input_shape(input_shape, latent_dim=latent_dim, architecture=architecture, likelihood=likelihood, seed=seed)
    vae.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        beta=schedules.LinearWarmup(warmup_steps, end=beta) if warmup_steps else beta,
        free_bits=free_bits,
        aggressive=aggressive,
    )

    # Everything is written to a temporary directory beside the target, then
    # renamed: a killed run leaves no half-written run directory.
    parent = os.path.dirname(os.path.abspath(output))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".keras-vae-", dir=parent)
    try:
        start = time.perf_counter()
        vae.fit(
            train_data,
            epochs=epochs,
            validation_data=test_data,
            shuffle=False,  # the pipeline reshuffles every epoch
            verbose=0 if quiet else 1,
            callbacks=[keras.callbacks.CSVLogger(os.path.join(staging, "history.csv"))],
        )
        seconds = time.perf_counter() - start
        test = vae.evaluate(test_data, verbose=0, return_dict=True)
        vae.save(os.path.join(staging, "model.keras"))
        with open(os.path.join(staging, "config.json"), "w") as file:
            json.dump(click.get_current_context().params | {"backend": keras.backend.backend()}, file, indent=2)
        if os.path.exists(output):
            shutil.rmtree(output)
        os.replace(staging, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)

    click.echo(
        f"test negative ELBO {test['loss']:.2f} nats (reconstruction {test['reconstruction_loss']:.2f}, "
        f"KL {test['kl_loss']:.2f}) after {epochs} epochs in {seconds:.0f} s"
    )
    click.echo(f"run directory: {output} (model.keras, history.csv, config.json)")


if __name__ == "__main__":
    main()
