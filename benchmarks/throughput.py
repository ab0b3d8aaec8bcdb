"""Training throughput of keras-vae against bare Keras and a plain PyTorch loop.

The same MLP VAE (784-512-256 → 32 → 256-512-784, Bernoulli, Adam, batch 128)
is trained by each contender in its own process (the Keras backend is fixed per
process), one after the other in one run, and the samples/second are printed
side by side with their ratios:

    python benchmarks/throughput.py            # all contenders
    python benchmarks/throughput.py --epochs 9 --samples 25600

Contenders: a plain PyTorch loop; a bare `keras.Model` (one optimizer, Keras's
default train step, only `compute_loss` overridden) on each backend; keras-vae's
`VAE` (two optimizers, its own train steps) on each backend, and the same in
aggressive mode (He et al.'s inner encoder loop, capped at 10 inner steps).
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


def time_epochs(train_one_epoch, epochs):
    """Median seconds per epoch, after one warm-up (compilation) epoch.

    The median resists the hiccups of a shared 2-core machine better than a mean.
    """
    train_one_epoch()
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        train_one_epoch()
        seconds.append(time.perf_counter() - start)
    return float(np.median(seconds))


def plain_torch(x, epochs):
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

    return time_epochs(epoch, epochs)


def bare_keras_model():
    """A plain `keras.Model` VAE: Keras's default train step, one Adam."""
    import keras
    from keras import ops

    from keras_vae.architectures import mlp_decoder, mlp_encoder

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


def bare_keras(x, epochs):
    model = bare_keras_model()
    return time_epochs(lambda: model.fit(x, batch_size=BATCH, epochs=1, verbose=0), epochs)


def keras_vae_model(x, epochs, aggressive=False):
    import keras_vae

    model = keras_vae.VAE.from_input_shape((784,), latent_dim=LATENT, seed=0)
    model.compile(aggressive=aggressive, max_inner_steps=10, inner_check_every=5, mi_patience=10**6)
    # validation_data only feeds the once-per-epoch MI estimate of aggressive mode.
    return time_epochs(
        lambda: model.fit(x, batch_size=BATCH, epochs=1, verbose=0, validation_data=(x[:1024],) if aggressive else None),
        epochs,
    )


WORKERS = {
    "plain-torch": plain_torch,
    "bare-keras": bare_keras,
    "keras-vae": keras_vae_model,
    "keras-vae-aggressive": lambda x, epochs: keras_vae_model(x, epochs, aggressive=True),
}


def run_worker(name, samples, epochs):
    seconds = WORKERS[name](synthetic_images(samples), epochs)
    print(json.dumps({"samples_per_second": samples / seconds, "seconds_per_epoch": seconds}))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=12800, help="training examples per epoch")
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs (median reported), after one warm-up epoch")
    parser.add_argument("--worker", choices=WORKERS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return run_worker(args.worker, args.samples, args.epochs)

    contenders = [("plain-torch", None)] + [
        (name, backend) for backend in BACKENDS for name in ("bare-keras", "keras-vae", "keras-vae-aggressive")
    ]
    results = {}
    for name, backend in contenders:
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND=backend or "torch")
        command = [sys.executable, __file__, "--worker", name, "--samples", str(args.samples), "--epochs", str(args.epochs)]
        output = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
        results[name, backend] = json.loads(output.strip().splitlines()[-1])
        print(f"measured {name} {backend or ''}", file=sys.stderr)

    torch_rate = results["plain-torch", None]["samples_per_second"]
    print(f"{'contender':<22}{'backend':<12}{'samples/s':>11}{'s/epoch':>9}{'vs plain torch':>16}{'vs bare keras':>15}")
    for (name, backend), result in results.items():
        rate = result["samples_per_second"]
        bare = results.get(("bare-keras", backend), {}).get("samples_per_second")
        versus_bare = f"{rate / bare:.2f}x" if bare and name != "bare-keras" else ""
        print(
            f"{name:<22}{backend or 'torch':<12}{rate:>11.0f}{result['seconds_per_epoch']:>9.2f}"
            f"{rate / torch_rate:>15.2f}x{versus_bare:>15}"
        )


if __name__ == "__main__":
    main()
