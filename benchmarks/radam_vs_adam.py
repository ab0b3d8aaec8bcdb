"""RAdam against Adam on a VAE: test negative ELBO after the same epochs, side by side.

The default MLP VAE (784-512-256 → 32 → 256-512-784, Bernoulli likelihood,
dynamically binarized MNIST) trains once with Adam and once with RAdam (Liu et
al. 2020; `keras_vae.optimizers.RAdam`), same seed, learning rate and epochs;
the script prints each test −ELBO (nats) and their difference:

    python benchmarks/radam_vs_adam.py --epochs 5
"""

import argparse
import json
import os
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--dataset", default="mnist")
    args = parser.parse_args()

    import keras

    import keras_vae
    from keras_vae.optimizers import RAdam

    datasets = keras_vae.datasets.load(args.dataset, batch_size=args.batch_size, binarize="dynamic", download=False)
    results = {}
    for name, make in (("adam", keras.optimizers.Adam), ("radam", RAdam)):
        keras.utils.set_random_seed(0)
        vae = keras_vae.VAE.from_input_shape(datasets.input_shape, latent_dim=32, seed=0)
        vae.compile(optimizer=make(args.learning_rate))
        vae.initialize_decoder_bias(datasets.train)
        start = time.perf_counter()
        vae.fit(datasets.train, epochs=args.epochs, validation_data=datasets.validation, verbose=0)
        seconds = time.perf_counter() - start
        test = vae.evaluate(datasets.test, verbose=0, return_dict=True)
        results[name] = {"test_negative_elbo": test["loss"], "kl": test["kl_loss"], "train_seconds": seconds}
        print(name, json.dumps(results[name]), flush=True)
    difference = results["radam"]["test_negative_elbo"] - results["adam"]["test_negative_elbo"]
    print(
        f"{os.environ.get('KERAS_BACKEND', 'tensorflow')}, {args.epochs} epochs: test -ELBO Adam "
        f"{results['adam']['test_negative_elbo']:.2f}, RAdam {results['radam']['test_negative_elbo']:.2f} nats "
        f"(RAdam - Adam = {difference:+.2f})"
    )


if __name__ == "__main__":
    main()
