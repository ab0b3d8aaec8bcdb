"""Training throughput of keras-vae against bare Keras and a plain PyTorch loop.

The same MLP VAE (784-512-256 → 32 → 256-512-784, Bernoulli, Adam, batch 128)
is trained by each contender, one process per Keras backend (it is fixed per
process), in one run; the samples/second are printed side by side with ratios:

    python benchmarks/throughput.py            # all contenders
    python benchmarks/throughput.py --rounds 9 --samples 25600

Contenders: a bare `keras.Model` (one optimizer, Keras's default train step,
only `compute_loss` overridden), keras-vae's `VAE` (two optimizers, its own
train steps) and the same in aggressive mode (He et al.'s inner encoder loop,
capped at 10 inner steps), on each backend; and, in the torch process, a plain
PyTorch loop. Within a process the contenders take turns epoch by epoch.
"""

import argparse
import json
import os
import subprocess
import sys
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


def bare_keras_model():
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
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model


def bare_keras(x):
    model = bare_keras_model()
    return lambda: model.fit(x, batch_size=BATCH, epochs=1, verbose=0)


def keras_vae_model(x, aggressive=False):
    import keras_vae

    model = keras_vae.VAE.from_input_shape((784,), latent_dim=LATENT, seed=0)
    model.compile(aggressive=aggressive, max_inner_steps=10, inner_check_every=5, mi_patience=10**6)
    # validation_data only feeds the once-per-epoch MI estimate of aggressive mode.
    validation_data = (x[:1024],) if aggressive else None
    return lambda: model.fit(x, batch_size=BATCH, epochs=1, verbose=0, validation_data=validation_data)


def run_worker(backend, samples, rounds):
    """Times the contenders of one Keras backend (and plain PyTorch beside torch)."""
    x = synthetic_images(samples)
    contenders = {"bare-keras": bare_keras(x), "keras-vae": keras_vae_model(x)}
    if backend == "torch":
        contenders["plain-torch"] = plain_torch(x)
    contenders["keras-vae-aggressive"] = keras_vae_model(x, aggressive=True)
    seconds = median_epoch_seconds(contenders, rounds)
    print(json.dumps({name: samples / value for name, value in seconds.items()}))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=12800, help="training examples per epoch")
    parser.add_argument("--rounds", type=int, default=5, help="timed epochs per contender (median reported)")
    parser.add_argument("--worker", choices=BACKENDS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return run_worker(args.worker, args.samples, args.rounds)

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
        bare = contenders["bare-keras"]
        for name, rate in contenders.items():
            versus_bare = "" if name == "bare-keras" else f"{rate / bare:.2f}x"
            print(f"{name:<22}{backend:<12}{rate:>11.0f}{rate / torch_rate:>15.2f}x{versus_bare:>15}")


if __name__ == "__main__":
    main()
