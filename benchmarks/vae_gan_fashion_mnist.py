"""VAE against VAE-GAN (Larsen et al. 2016) on Fashion-MNIST, same encoder and decoder, side by side.

Both models use keras_vae's default conv encoder and decoder (latent 32,
Bernoulli likelihood on grey levels in [0, 1]); the VAE-GAN adds the default
conv discriminator and measures the reconstruction in its feature space. Each
trains the same epochs on the same subset of the training set. The script
then measures, on the test set and on samples from the prior:

- sharpness: the variance of the Laplacian of each image (higher is sharper;
  real test images give the scale), for samples and reconstructions;
- the pixel reconstruction error (mean squared error per pixel);
- a small CNN classifier, trained here on the whole real training set: its
  accuracy on reconstructions (the input's label is the answer), and the
  confidence (mean largest class probability) of its predictions on
  reconstructions and on prior samples;

and draws the sample grids side by side:

    python benchmarks/vae_gan_fashion_mnist.py --epochs 3 --train-examples 12000 \\
        --figure docs/figures/vae_gan_fashion_mnist.png --json vae_gan_fashion_mnist.json
"""

import argparse
import json
import os
import time

import numpy as np


def load_fashion_mnist(data_dir):
    import tensorflow_datasets as tfds

    arrays = {}
    for split in ("train", "test"):
        data = tfds.as_numpy(tfds.load("fashion_mnist", split=split, batch_size=-1, data_dir=data_dir, download=False))
        arrays[split] = (data["image"].astype("float32") / 255.0, data["label"])
    return arrays


def sharpness(images):
    """Mean over images of the variance of their Laplacian (a focus measure)."""
    from scipy import ndimage

    images = np.asarray(images)[..., 0]
    return float(np.mean([ndimage.laplace(image).var() for image in images]))


def classifier(x, y, epochs, seed):
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input(x.shape[1:]),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(64, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=epochs, batch_size=128, verbose=0)
    return model


def measure(name, model, judge, x_test, y_test, samples):
    reconstructions = np.concatenate([model.reconstruct(x_test[i : i + 500]) for i in range(0, len(x_test), 500)])
    on_reconstructions = judge.predict(reconstructions, verbose=0)
    on_samples = judge.predict(samples, verbose=0)
    return {
        "sample_sharpness": sharpness(samples),
        "reconstruction_sharpness": sharpness(reconstructions),
        "pixel_mse": float(np.mean((reconstructions - x_test) ** 2)),
        "classifier_accuracy_on_reconstructions": float(np.mean(on_reconstructions.argmax(-1) == y_test)),
        "classifier_confidence_on_reconstructions": float(on_reconstructions.max(-1).mean()),
        "classifier_confidence_on_samples": float(on_samples.max(-1).mean()),
        # Spread of the classes it sees in the samples (log 10 = 2.30 nats: all ten equally).
        "sample_class_entropy": float(
            -np.sum(
                (p := np.bincount(on_samples.argmax(-1), minlength=10) / len(on_samples)) * np.log(np.maximum(p, 1e-12))
            )
        ),
        "model": name,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-examples", type=int, default=12000)
    parser.add_argument("--test-examples", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--gamma", type=float, default=1.0)
    parser.add_argument("--balance", action="store_true")
    parser.add_argument("--classifier-epochs", type=int, default=2)
    parser.add_argument("--classifier-examples", type=int, default=60000)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=os.environ.get("TFDS_DATA_DIR", "/work/shared/data/tensorflow_datasets"))
    parser.add_argument("--figure", default="vae_gan_fashion_mnist.png")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    import keras

    import keras_vae

    data = load_fashion_mnist(args.data_dir)
    x_train, y_train = data["train"]
    x_test, y_test = (a[: args.test_examples] for a in data["test"])
    subset = x_train[: args.train_examples]
    start = time.perf_counter()
    judge = classifier(
        x_train[: args.classifier_examples], y_train[: args.classifier_examples], args.classifier_epochs, args.seed
    )
    real_accuracy = float(np.mean(judge.predict(x_test, verbose=0).argmax(-1) == y_test))
    print(f"classifier: {real_accuracy:.3f} accuracy on real test images ({time.perf_counter() - start:.0f} s)")

    results, grids = {}, {"real test images": x_test[:64]}
    for name in ("vae", "vae-gan"):
        keras.utils.set_random_seed(args.seed)
        if name == "vae":
            model = keras_vae.VAE.from_input_shape((28, 28, 1), latent_dim=32, architecture="conv", seed=args.seed)
            model.compile(optimizer=keras.optimizers.Adam(1e-3))
        else:
            model = keras_vae.VAEGAN.from_input_shape((28, 28, 1), latent_dim=32, architecture="conv", seed=args.seed)
            # GAN practice (Radford et al. 2016): a lower rate and β₁ = 0.5.
            model.compile(optimizer=keras.optimizers.Adam(3e-4, beta_1=0.5), gamma=args.gamma, balance=args.balance)
        model.initialize_decoder_bias(subset)
        start = time.perf_counter()
        model.fit(subset, epochs=args.epochs, batch_size=args.batch_size, verbose=0)
        seconds = time.perf_counter() - start
        samples = model.sample(args.samples, seed=args.seed)
        results[name] = {**measure(name, model, judge, x_test, y_test, samples), "train_seconds": seconds}
        grids[f"{name.upper()} samples"] = samples[:64]
        print(json.dumps(results[name]), flush=True)
    results["real"] = {"sample_sharpness": sharpness(x_test), "classifier_accuracy": real_accuracy}
    results["setting"] = vars(args) | {"backend": keras.backend.backend()}

    vae, gan = results["vae"], results["vae-gan"]
    print(
        f"\n{'':40s}{'VAE':>10s}{'VAE-GAN':>10s}{'ratio':>8s}   (real test images: sharpness {results['real']['sample_sharpness']:.4f})"
    )
    for key in (
        "sample_sharpness",
        "reconstruction_sharpness",
        "pixel_mse",
        "classifier_accuracy_on_reconstructions",
        "classifier_confidence_on_reconstructions",
        "classifier_confidence_on_samples",
        "sample_class_entropy",
        "train_seconds",
    ):
        print(f"{key:40s}{vae[key]:10.4f}{gan[key]:10.4f}{gan[key] / vae[key] if vae[key] else float('nan'):8.2f}")

    from keras_vae import plotting

    figure, axes = plotting.new_figure(1, len(grids), figsize=(4 * len(grids), 4.4))
    for axis, (title, images) in zip(axes, grids.items(), strict=True):
        axis.imshow(plotting.image_grid(images, 8), cmap="gray", vmin=0, vmax=1)
        axis.set_title(title)
        axis.axis("off")
    figure.suptitle(f"Fashion-MNIST, {args.epochs} epochs on {args.train_examples} images, same conv encoder/decoder")
    plotting.save_figure(figure, args.figure)
    if args.json:
        with open(args.json, "w") as file:
            json.dump(results, file, indent=2)


if __name__ == "__main__":
    main()
