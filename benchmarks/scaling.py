"""Data-parallel scaling: samples/second of keras-vae on 1 and 2 devices, side by side.

The default MLP VAE (784-512-256 → 32 → 256-512-784, Bernoulli, Adam) trains
on one device and on `keras_vae.distribute.data_parallel(2)` with the same
global batch, in one process per backend (a backend fixes its devices when it
starts); the epochs alternate, and the median epoch gives the rate:

    python benchmarks/scaling.py                          # tensorflow and jax
    python benchmarks/scaling.py --backends jax --batch 512 --rounds 5

Without accelerators the CPU is split into two devices that share its cores,
so a ratio near 1 (or below, for the all-reduce) is what to expect there; on
two GPUs it measures the engines' real scaling.
"""

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time

import numpy as np

BACKENDS = ("tensorflow", "jax")


def worker(batch, samples, rounds):
    from keras_vae import distribute

    distribute.split_cpu(2)  # no effect where there are accelerators
    import keras

    import keras_vae

    x = (np.random.default_rng(0).random((samples, 784)) < 0.13).astype("float32")
    engines = {"1 device": None, "2 devices": distribute.data_parallel(2)}
    epochs = {}
    for name, engine in engines.items():
        scope = engine.scope() if engine is not None else contextlib.nullcontext()
        with scope:
            keras.utils.set_random_seed(0)
            vae = keras_vae.VAE.from_input_shape((784,), latent_dim=32)
            vae.compile()

        def epoch(vae=vae, engine=engine):
            with engine.scope() if engine is not None else contextlib.nullcontext():
                vae.fit(x, batch_size=batch, epochs=1, verbose=0)

        epoch()  # compilation
        epochs[name] = epoch
    seconds = {name: [] for name in epochs}
    for _ in range(rounds):
        for name, epoch in epochs.items():
            start = time.perf_counter()
            epoch()
            seconds[name].append(time.perf_counter() - start)
    print(json.dumps({name: samples / float(np.median(values)) for name, values in seconds.items()}))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--batch", type=int, default=256, help="Global batch size (split over the devices).")
    parser.add_argument("--samples", type=int, default=12800)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--worker", choices=BACKENDS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.batch, args.samples, args.rounds)

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    print(f"{'backend':<12}{'1 device':>12}{'2 devices':>12}{'ratio':>8}   samples/s, global batch {args.batch}")
    for backend in args.backends:
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        command = [
            sys.executable,
            __file__,
            "--worker",
            backend,
            "--batch",
            str(args.batch),
            "--samples",
            str(args.samples),
            "--rounds",
            str(args.rounds),
        ]
        output = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
        rates = json.loads(output.strip().splitlines()[-1])
        one, two = rates["1 device"], rates["2 devices"]
        print(f"{backend:<12}{one:>12.0f}{two:>12.0f}{two / one:>7.2f}x")


if __name__ == "__main__":
    main()
