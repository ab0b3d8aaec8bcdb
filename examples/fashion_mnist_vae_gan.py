"""Train a VAE-GAN (Larsen et al. 2016) on Fashion-MNIST with `model.fit`, on any Keras backend.

    KERAS_BACKEND=jax python examples/fashion_mnist_vae_gan.py --epochs 5 --balance

Offline, point TFDS at a prepared data dir first (TFDS_DATA_DIR=...). The
encoder and decoder are the VAE's default conv networks; a conv discriminator
measures reconstructions in its feature space, and each of the three networks
has its own optimizer (held in `model.optimizer`, saved with the model).
Writes a grid of samples and the saved model; `benchmarks/vae_gan_fashion_mnist.py`
compares it with a VAE.
"""

import argparse
import time

import keras

import keras_vae
from keras_vae.datasets import image_dataset


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--latent-dim", type=int, default=32)
    parser.add_argument("--gamma", type=float, default=1.0, help="Feature reconstruction against the GAN term.")
    parser.add_argument("--balance", action="store_true", help="pythae's equilibrium/margin balancing.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="fashion_mnist_vae_gan")
    args = parser.parse_args()

    keras.utils.set_random_seed(args.seed)
    train, input_shape = image_dataset("fashion_mnist", "train", batch_size=64, shuffle=True, seed=args.seed)
    model = keras_vae.VAEGAN.from_input_shape(input_shape, latent_dim=args.latent_dim, seed=args.seed)
    model.compile(
        optimizer=keras.optimizers.Adam(3e-4, beta_1=0.5),  # decoder; the encoder and discriminator get copies
        beta=keras_vae.schedules.LinearWarmup(2000),
        gamma=args.gamma,
        balance=args.balance,
    )
    start = time.perf_counter()
    model.fit(train, epochs=args.epochs, shuffle=False, verbose=2)
    print(f"{keras.backend.backend()}: {args.epochs} epochs in {time.perf_counter() - start:.0f} s")

    keras_vae.plotting.plot_images(model.sample(64, seed=args.seed), f"{args.output}_samples.png")
    model.save(f"{args.output}.keras")  # every optimizer's state too: keras.saving.load_model resumes it
    print(f"wrote {args.output}_samples.png and {args.output}.keras")


if __name__ == "__main__":
    main()
