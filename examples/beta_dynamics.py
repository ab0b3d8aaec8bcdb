"""The dynamic balance between decoder quality and encoder variance, β = 0 against β = 1.

Reproduces the experiment of "Understanding the Dynamic Balance in Variational
Autoencoders" on MNIST: the same VAE trained without (β = 0) and with (β = 1)
the KL term, tracking the encoder's σ² of every latent dimension as training
goes. With β = 1 σ² stays small while the decoder is weak and grows as it
improves (an automatic curriculum), and the latent space approaches N(0, I);
with β = 0 nothing holds the posterior near the prior: KL climbs towards ~100
nats, σ² collapses and the latent space spreads irregularly.

    TFDS_DATA_DIR=... KERAS_BACKEND=jax python examples/beta_dynamics.py

A few minutes on a CPU. Writes runs/beta_dynamics/: per-β diagnostics (latent
dynamics CSV/JSON/PNG, samples, latent scatter) and beta_dynamics.png, the two
runs side by side.
"""

import argparse
import os

import keras
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import keras_vae  # noqa: E402
from keras_vae import callbacks, plotting  # noqa: E402
from keras_vae.datasets import image_dataset, labelled_arrays  # noqa: E402


def train(beta, args, probe, labels, output_dir):
    keras.utils.set_random_seed(args.seed)
    train_data, shape = image_dataset("mnist", f"train[:{args.examples}]", batch_size=128, shuffle=True, seed=args.seed)
    vae = keras_vae.VAE.from_input_shape(shape, latent_dim=args.latent_dim, seed=args.seed)
    vae.compile(beta=beta)
    dynamics = callbacks.LatentDynamics(probe, output_dir, every_n_steps=args.every_n_steps)
    vae.fit(
        train_data,
        epochs=args.epochs,
        shuffle=False,
        verbose=0,
        callbacks=[
            dynamics,
            callbacks.LatentSpacePlot(probe, labels, output_dir, every=args.epochs),
            callbacks.ImageGrids(probe, output_dir, every=args.epochs),
            callbacks.EpochLogger(print_fn=lambda line: print(f"β={beta:g} {line}")),
        ],
    )
    z_mean = np.asarray(keras.ops.convert_to_numpy(vae.embed(probe)))
    samples = np.asarray(keras.ops.convert_to_numpy(vae.sample(64)))
    return dynamics.records, z_mean, samples


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--examples", type=int, default=20000, help="MNIST training images used")
    parser.add_argument("--latent-dim", type=int, default=8)
    parser.add_argument("--every-n-steps", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=os.path.join("runs", "beta_dynamics"))
    args = parser.parse_args()

    probe, labels = labelled_arrays("mnist", "test[:2000]")
    runs = {beta: train(beta, args, probe, labels, os.path.join(args.output, f"beta_{beta:g}")) for beta in (0.0, 1.0)}

    figure, axes = plt.subplots(2, 4, figsize=(20, 9))
    for row, (beta, (records, z_mean, samples)) in enumerate(runs.items()):
        steps = [r["step"] for r in records]
        axes[row, 0].plot(steps, [r["variance_per_dim"] for r in records], linewidth=1)
        axes[row, 0].set(
            yscale="log", xlabel="iteration", ylabel="mean σ² per dimension", title=f"β = {beta:g}: encoder σ²"
        )
        axes[row, 1].plot(steps, [r["kl"] for r in records], color="black")
        axes[row, 1].set(
            xlabel="iteration", ylabel="KL (nats)", title=f"β = {beta:g}: KL, final {records[-1]['kl']:.1f} nats"
        )
        axes[row, 2].imshow(plotting.image_grid(samples, 8), cmap="gray")
        axes[row, 2].set_title(f"β = {beta:g}: samples from N(0, I)")
        axes[row, 2].axis("off")
        points = plotting.project_2d(z_mean)
        axes[row, 3].scatter(points[:, 0], points[:, 1], c=labels, cmap="tab10", s=3)
        axes[row, 3].set(title=f"β = {beta:g}: posterior means (PCA)")
        print(
            f"β = {beta:g}: KL {records[-1]['kl']:.1f} nats, mean σ² {np.mean(records[-1]['variance_per_dim']):.3g}, "
            f"active units {records[-1]['active_units']}/{args.latent_dim}, I(x; z) {records[-1]['mutual_info']:.2f} nats"
        )
    path = plotting.save_figure(figure, os.path.join(args.output, "beta_dynamics.png"))
    print(f"figure: {path}")


if __name__ == "__main__":
    main()
