"""Training throughput of keras-vae against bare Keras and a plain PyTorch loop, and of `keras-vae train`.

The same MLP VAE (784-512-256 → 32 → 256-512-784, Bernoulli, Adam, batch 128)
is trained by each contender, one process per Keras backend (it is fixed per
process), in one run; the samples/second are printed side by side with ratios:

    python benchmarks/throughput.py                 # 60,000 samples per epoch, 3 rounds
    python benchmarks/throughput.py --samples 12800 --rounds 5 --command-epochs 0

Contenders: a bare `keras.Model` (one optimizer, Keras's default train step,
only `compute_loss` overridden) and keras-vae's `VAE` (two optimizers, its own
train steps), on each backend, both with the backend's default compilation;
on PyTorch also both with `jit_compile=True` (`torch.compile`, timed after its
warm-up), and a plain PyTorch loop. Within a process the contenders take turns
epoch by epoch, and the median of the rounds is reported.

Then the main command: `keras-vae train mnist` with its defaults (in-process, on
the default backend) against bare `model.fit` of the same model on the same
pipelines (training and validation) for the same epochs, in interleaved rounds:
seconds per epoch from the command's `train_seconds` (its whole fit: every
diagnostic, figure and checkpoint), and its wall time from data to summary.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

BATCH = 128
LATENT = 32
BACKENDS = ("tensorflow", "jax", "torch")


def synthetic_images(samples, seed=0):
    return (np.random.default_rng(seed).random((samples, 784)) < 0.13).astype("float32")


def median_epoch_seconds(epoch_functions, rounds):
    """Median seconds per epoch of each contender, timed in interleaved rounds.

    Each contender first runs one warm-up (compilation) epoch; then every round
    times one epoch of each in turn, so a slow spell of a shared machine hits
    them all alike, and the median discards the outliers.
    """
    for train_one_epoch in epoch_functions.values():
        train_one_epoch()
    seconds = {name: [] for name in epoch_functions}
    for _ in range(rounds):
        for name, train_one_epoch in epoch_functions.items():
            start = time.perf_counter()
            train_one_epoch()
            seconds[name].append(time.perf_counter() - start)
    return {name: float(np.median(values)) for name, values in seconds.items()}


def plain_torch(x):
    import torch
    from torch import nn

    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 2 * LATENT))
    decoder = nn.Sequential(nn.Linear(LATENT, 256), nn.ReLU(), nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 784))
    optimizer = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=1e-3)
    data = torch.from_numpy(x)

    def epoch():
        for batch in data[torch.randperm(len(data))].split(BATCH):
            mean, log_var = encoder(batch).chunk(2, dim=-1)
            z = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)
            logits = decoder(z)
            reconstruction = nn.functional.binary_cross_entropy_with_logits(logits, batch, reduction="none").sum(-1)
            kl = 0.5 * (mean.pow(2) + log_var.exp() - log_var - 1).sum(-1)
            loss = (reconstruction + kl).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    return epoch


def bare_keras_model(jit_compile="auto"):
    """A plain `keras.Model` VAE: Keras's default train step, one Adam."""
    import keras
    from keras import ops

    from keras_vae.networks import mlp_decoder, mlp_encoder

    class BareVAE(keras.Model):
        def __init__(self):
            super().__init__()
            self.encoder = mlp_encoder((784,), LATENT)
            self.decoder = mlp_decoder((784,), LATENT)
            self.seed = keras.random.SeedGenerator(0)

        def call(self, x):
            mean, log_var = self.encoder(x)
            z = mean + ops.exp(0.5 * log_var) * keras.random.normal(ops.shape(mean), seed=self.seed)
            return self.decoder(z), mean, log_var

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            logits, mean, log_var = y_pred
            reconstruction = ops.sum(ops.softplus(logits) - x * logits, axis=-1)
            kl = 0.5 * ops.sum(ops.square(mean) + ops.exp(log_var) - log_var - 1, axis=-1)
            return ops.mean(reconstruction + kl)

    model = BareVAE()
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=jit_compile)
    return model


def bare_keras(x, jit_compile="auto"):
    model = bare_keras_model(jit_compile)
    return lambda: model.fit(x, batch_size=BATCH, epochs=1, verbose=0)


def keras_vae_model(x, jit_compile="auto"):
    import keras_vae

    model = keras_vae.VAE.from_input_shape((784,), latent_dim=LATENT, seed=0)
    model.compile(jit_compile=jit_compile)
    return lambda: model.fit(x, batch_size=BATCH, epochs=1, verbose=0)


def run_worker(backend, samples, rounds):
    """Times the contenders of one Keras backend (and plain PyTorch beside torch)."""
    x = synthetic_images(samples)
    contenders = {"bare-keras": bare_keras(x), "keras-vae": keras_vae_model(x)}
    if backend == "torch":
        contenders["bare-keras-compiled"] = bare_keras(x, jit_compile=True)
        contenders["keras-vae-compiled"] = keras_vae_model(x, jit_compile=True)
        contenders["plain-torch"] = plain_torch(x)
    seconds = median_epoch_seconds(contenders, rounds)
    print(json.dumps({name: samples / value for name, value in seconds.items()}))


def run_command_worker(epochs, rounds, output):
    """Seconds of `keras-vae train mnist` (defaults but --epochs) and of bare `fit` on its pipelines."""
    import collections

    import keras
    from click.testing import CliRunner

    from keras_vae.app import build, cli, config, runs

    # Seconds in each callback's on_epoch_end, and in the run's final files (runs.finish), over all rounds.
    spent = collections.defaultdict(float)
    on_epoch_end = keras.callbacks.CallbackList.on_epoch_end

    def timed_on_epoch_end(callback_list, epoch, logs=None):
        if callback_list._async_train:  # as Keras's own: the batch hooks still running on a thread first
            callback_list._flush_futures()
        for callback in callback_list.callbacks:
            start = time.perf_counter()
            callback.on_epoch_end(epoch, logs)
            spent[type(callback).__name__] += time.perf_counter() - start

    finish = runs.finish

    def timed_finish(*args, **kwargs):
        start = time.perf_counter()
        result = finish(*args, **kwargs)
        spent["final files (runs.finish)"] += time.perf_counter() - start
        return result

    runs.finish = timed_finish
    train_config = config.TrainConfig(epochs=epochs)
    datasets = build.load_data(train_config)

    def bare_fit():
        vae = build.build_vae(train_config, datasets.input_shape, datasets.num_train)
        vae.initialize_decoder_bias(datasets.train)
        start = time.perf_counter()
        vae.fit(datasets.train, epochs=epochs, validation_data=datasets.validation, shuffle=False, verbose=0)
        return time.perf_counter() - start

    def command():
        run_dir = os.path.join(output, "run")
        keras.callbacks.CallbackList.on_epoch_end = timed_on_epoch_end
        start = time.perf_counter()
        result = CliRunner().invoke(
            cli.main, ["train", "--epochs", str(epochs), "--output", run_dir, "--overwrite", "--quiet"]
        )
        wall = time.perf_counter() - start
        keras.callbacks.CallbackList.on_epoch_end = on_epoch_end
        if result.exit_code:
            raise RuntimeError(result.output) from result.exception
        with open(os.path.join(run_dir, "summary.json")) as file:
            return json.load(file)["train_seconds"], wall, sorted(_files(run_dir))

    bare, trained, walls = [], [], []
    for _ in range(rounds):
        bare.append(bare_fit())
        seconds, wall, files = command()
        trained.append(seconds)
        walls.append(wall)
    print(
        json.dumps(
            {
                "bare": float(np.median(bare)),
                "train": float(np.median(trained)),
                "wall": float(np.median(walls)),
                "files": files,
                # Per epoch (the final files: per run), averaged over the rounds.
                "parts": {
                    name: value / (rounds if name.startswith("final") else rounds * epochs)
                    for name, value in spent.items()
                },
            }
        )
    )


def _files(run_dir):
    for root, _, names in os.walk(run_dir):
        for name in names:
            yield os.path.relpath(os.path.join(root, name), run_dir)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=60000, help="training examples per epoch")
    parser.add_argument("--rounds", type=int, default=3, help="timed epochs per contender (median reported)")
    parser.add_argument("--command-epochs", type=int, default=10, help="epochs of the train command; 0: skip it")
    parser.add_argument("--command-rounds", type=int, default=2, help="interleaved runs of the command and bare fit")
    parser.add_argument("--worker", choices=BACKENDS, help=argparse.SUPPRESS)
    parser.add_argument("--command-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return run_worker(args.worker, args.samples, args.rounds)
    if args.command_worker:
        return run_command_worker(args.command_epochs, args.command_rounds, args.command_worker)

    rates = {}
    for backend in BACKENDS:
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND=backend)
        command = [
            sys.executable,
            __file__,
            "--worker",
            backend,
            "--samples",
            str(args.samples),
            "--rounds",
            str(args.rounds),
        ]
        output = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
        rates[backend] = json.loads(output.strip().splitlines()[-1])
        print(f"measured {backend}", file=sys.stderr)

    torch_rate = rates["torch"].pop("plain-torch")
    print(f"{'contender':<22}{'backend':<12}{'samples/s':>11}{'vs plain torch':>16}{'vs bare keras':>15}")
    print(f"{'plain-torch':<22}{'torch':<12}{torch_rate:>11.0f}{1:>15.2f}x")
    for backend, contenders in rates.items():
        for name, rate in contenders.items():
            bare = contenders["bare-keras-compiled" if name.endswith("compiled") else "bare-keras"]
            versus_bare = "" if name.startswith("bare-keras") else f"{rate / bare:.2f}x"
            print(f"{name:<22}{backend:<12}{rate:>11.0f}{rate / torch_rate:>15.2f}x{versus_bare:>15}")
    if args.command_epochs:
        with tempfile.TemporaryDirectory() as output:
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
            command = [
                sys.executable,
                __file__,
                "--command-worker",
                output,
                "--command-epochs",
                str(args.command_epochs),
                "--command-rounds",
                str(args.command_rounds),
            ]
            result = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
        times = json.loads(result.strip().splitlines()[-1])
        epochs = args.command_epochs
        print(
            f"\nkeras-vae train mnist --epochs {epochs} ({env.get('KERAS_BACKEND', 'tensorflow')}), "
            f"median of {args.command_rounds} interleaved rounds:"
        )
        print(f"{'':<34}{'s/epoch':>9}{'vs bare fit':>13}")
        print(f"{'bare model.fit':<34}{times['bare'] / epochs:>9.2f}{1:>12.2f}x")
        print(
            f"{'keras-vae train (its fit)':<34}{times['train'] / epochs:>9.2f}{times['train'] / times['bare']:>12.2f}x"
        )
        print(
            f"{'keras-vae train (wall, all files)':<34}{times['wall'] / epochs:>9.2f}{times['wall'] / times['bare']:>12.2f}x"
        )
        print("\nwhere the command's time goes, seconds per epoch (the final files: once per run):")
        for name, seconds in sorted(times["parts"].items(), key=lambda item: -item[1]):
            print(f"  {name:<32}{seconds:>7.3f}")
        print(f"\nrun directory: {', '.join(times['files'])}")


if __name__ == "__main__":
    main()
