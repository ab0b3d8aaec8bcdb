"""Time of the importance-weighted NLL (Burda et al. 2016) per backend, per 1,000 examples.

`keras-vae evaluate` scores a model with K = 5,000 importance samples per
example; on the 10,000 MNIST test images that is 50 million decoder passes of the
default MLP. Each backend runs in its own process on the same examples and
weights (an untrained model: the cost does not depend on the weights), and the
table shows seconds per 1,000 examples and the projected time for 10,000:

    TFDS_DATA_DIR=... python benchmarks/iw_nll.py [--examples 256] [--samples 5000]
"""

import argparse
import json
import os
import subprocess
import sys
import time

BACKENDS = ("tensorflow", "jax", "torch")


def run_worker(examples, samples):
    import keras

    import keras_vae
    from keras_vae.datasets import image_dataset
    from keras_vae.evaluation.metrics import importance_weighted_nll

    test, shape = image_dataset("mnist", f"test[:{examples}]", batch_size=examples)
    x = next(iter(test.as_numpy_iterator()))
    keras.utils.set_random_seed(0)
    vae = keras_vae.VAE.from_input_shape(shape, latent_dim=32, seed=0)
    importance_weighted_nll(vae, x[:128], 64, seed=0)  # compiles the functions on their shapes
    start = time.perf_counter()
    nll = importance_weighted_nll(vae, x, samples, seed=0)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "nll": float(keras.ops.convert_to_numpy(nll).mean())}))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=256, help="test images scored (a multiple of 128)")
    parser.add_argument("--samples", type=int, default=5000, help="importance samples K per example")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return run_worker(args.examples, args.samples)
    print(f"IW-NLL, K = {args.samples}, default MLP, {args.examples} MNIST test images per backend")
    print(f"{'backend':<12}{'s per 1,000':>12}{'10,000 images, s':>18}{'NLL (untrained)':>17}")
    for backend in BACKENDS:
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
        command = [
            sys.executable,
            __file__,
            "--worker",
            "--examples",
            str(args.examples),
            "--samples",
            str(args.samples),
        ]
        output = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
        result = json.loads(output.strip().splitlines()[-1])
        per_thousand = result["seconds"] * 1000 / args.examples
        print(f"{backend:<12}{per_thousand:>12.1f}{10 * per_thousand:>18.0f}{result['nll']:>17.2f}")


if __name__ == "__main__":
    main()
