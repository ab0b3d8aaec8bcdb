"""Mixed precision (`--dtype-policy mixed_bfloat16`) against float32, per backend, on MNIST.

The default MLP VAE is trained for the same epochs under each Keras dtype
policy, from the same initial weights, one process per backend; the table
shows training samples per second (the median epoch) and the test −ELBO at the
end, with their ratios. Under `mixed_bfloat16` the networks compute in
bfloat16 with float32 weights; the posterior's parameters, the likelihood and
the KL stay in float32 (`VAE.likelihood_dtype`).

    TFDS_DATA_DIR=... python benchmarks/mixed_precision.py [--epochs 10] [--examples 60000]
"""

import argparse
import json
import os
import subprocess
import sys
import time

BACKENDS = ("tensorflow", "jax", "torch")
POLICIES = ("float32", "mixed_bfloat16")


def run_worker(epochs, examples):
    import keras
    import numpy as np

    import keras_vae
    from keras_vae.datasets import image_dataset

    train, shape = image_dataset("mnist", f"train[:{examples}]", batch_size=128, shuffle=True, seed=0)
    test, _ = image_dataset("mnist", "test", batch_size=512)
    models = {}
    for policy in POLICIES:
        keras.config.set_dtype_policy(policy)
        keras.utils.set_random_seed(0)
        models[policy] = keras_vae.VAE.from_input_shape(shape, latent_dim=32, seed=0)
        models[policy].compile()
    keras.config.set_dtype_policy("float32")
    seconds = {policy: [] for policy in POLICIES}
    for _ in range(epochs):  # the policies take turns, epoch by epoch
        for policy, vae in models.items():
            start = time.perf_counter()
            vae.fit(train, epochs=1, verbose=0, shuffle=False)
            seconds[policy].append(time.perf_counter() - start)
    result = {}
    for policy, vae in models.items():
        elbo = vae.evaluate(test, verbose=0, return_dict=True)
        result[policy] = {
            "samples_per_second": examples / float(np.median(seconds[policy][1:] or seconds[policy])),
            "negative_elbo": float(elbo["reconstruction_loss"] + elbo["kl_loss"]),
        }
    print(json.dumps(result))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--examples", type=int, default=60000, help="training images per epoch")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return run_worker(args.epochs, args.examples)
    print(f"MNIST, default MLP VAE, {args.epochs} epochs of {args.examples} images, batch 128")
    print(f"{'backend':<12}{'policy':<16}{'samples/s':>10}{'speed':>8}{'test -ELBO':>12}{'difference':>12}")
    for backend in BACKENDS:
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
        command = [sys.executable, __file__, "--worker", "--epochs", str(args.epochs), "--examples", str(args.examples)]
        output = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
        result = json.loads(output.strip().splitlines()[-1])
        reference = result["float32"]
        for policy, row in result.items():
            speed = row["samples_per_second"] / reference["samples_per_second"]
            difference = row["negative_elbo"] - reference["negative_elbo"]
            print(
                f"{backend:<12}{policy:<16}{row['samples_per_second']:>10.0f}{speed:>7.2f}x"
                f"{row['negative_elbo']:>12.2f}{difference:>+12.2f}"
            )


if __name__ == "__main__":
    main()
