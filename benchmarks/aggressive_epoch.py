"""Wall time of an aggressive-training epoch relative to a basic one, on MNIST.

He et al. (2019) report that aggressive training took 2.2× to 3.7× the time of
a basic run over a whole run (aggressive mode ends after a few epochs). This
measures the cost of one epoch while it is on, from the same initial weights,
with the defaults (max_inner_steps=100, inner_check_every=10):

    TFDS_DATA_DIR=... python benchmarks/aggressive_epoch.py [--examples 12800]

Each backend runs in its own process; the table shows seconds per epoch, the
ratio, the mean number of inner encoder steps per iteration, and what one inner
step costs relative to a joint step: `(aggressive / basic - 1) / inner steps`
(an aggressive iteration is the inner steps plus one decoder step, which costs
about a joint one; the epoch's I(x; z) estimate is charged to the inner steps
too). The last column times the compiled steps alone, `train_part_on_batch`
on the same batches: an encoder step against a joint step.
"""

import argparse
import json
import os
import subprocess
import sys
import time

BACKENDS = ("tensorflow", "jax", "torch")


def run_worker(examples):
    import keras

    import keras_vae
    from keras_vae.datasets import image_dataset

    train, shape = image_dataset("mnist", f"train[:{examples}]", batch_size=128, shuffle=True, seed=0)
    validation, _ = image_dataset("mnist", "test[:2048]", batch_size=128)
    result = {}
    for aggressive in (False, True):
        keras.utils.set_random_seed(0)
        vae = keras_vae.VAE.from_input_shape(shape, latent_dim=32, seed=0)
        vae.compile(aggressive=aggressive)
        vae.fit(train.take(2), epochs=1, verbose=0, shuffle=False)  # compiles the steps
        start = time.perf_counter()
        history = vae.fit(train, epochs=1, verbose=0, shuffle=False, validation_data=validation)
        seconds = time.perf_counter() - start
        key = "aggressive" if aggressive else "basic"
        result[key] = seconds
        if aggressive:
            result["encoder_steps"] = history.history["encoder_steps"][0]
            result["step_ratio"] = _step_ratio(vae, train)
    print(json.dumps(result))


def _step_ratio(vae, train, steps=100, rounds=3):
    """Median seconds of an encoder step over those of a joint step (`train_part_on_batch`, interleaved)."""
    import keras
    import numpy as np

    batches = list(train.take(10).as_numpy_iterator())
    seconds = {"encoder": [], "joint": []}
    for part in seconds:
        vae.train_part_on_batch(batches[0], part)  # compiles the step
    for _ in range(rounds):
        for part, times in seconds.items():
            start = time.perf_counter()
            for step in range(steps):
                loss = vae.train_part_on_batch(batches[step % len(batches)], part)
            keras.tree.map_structure(keras.ops.convert_to_numpy, loss)  # waits for the last step
            times.append(time.perf_counter() - start)
    return float(np.median(seconds["encoder"]) / np.median(seconds["joint"]))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=12800, help="training examples in the timed epoch")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return run_worker(args.examples)
    print(
        f"{'backend':<12}{'basic s':>9}{'aggressive s':>14}{'ratio':>8}{'inner steps/iter':>18}"
        f"{'inner/joint step':>18}{'compiled steps':>16}"
    )
    for backend in BACKENDS:
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
        command = [sys.executable, __file__, "--worker", "--examples", str(args.examples)]
        output = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
        result = json.loads(output.strip().splitlines()[-1])
        ratio = result["aggressive"] / result["basic"]
        print(
            f"{backend:<12}{result['basic']:>9.1f}{result['aggressive']:>14.1f}"
            f"{ratio:>7.1f}x{result['encoder_steps']:>18.1f}"
            f"{(ratio - 1) / result['encoder_steps']:>18.2f}{result['step_ratio']:>16.2f}"
        )


if __name__ == "__main__":
    main()
