"""Use an exported VAE with TensorFlow alone: no keras-vae, no Keras backend to match.

    keras-vae train --output runs/mnist
    keras-vae export runs/mnist exports/mnist
    python examples/load_export.py exports/mnist --output export_demo.png

Encodes eight MNIST test digits (read with TFDS; offline, set TFDS_DATA_DIR to
a prepared data dir), reconstructs them, decodes eight samples from the prior,
and draws the three rows. The export was written by `keras_vae.export`; this
script imports neither `keras_vae` nor `keras`.
"""

import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("export_dir")
    parser.add_argument("--output", default="export_demo.png")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    vae = tf.saved_model.load(args.export_dir)
    with open(os.path.join(args.export_dir, "assets", "keras_vae.json")) as file:
        metadata = json.load(file)
    print(
        f"export of a {metadata['likelihood']} VAE exported from the {metadata['backend']} backend: "
        f"input {metadata['input_shape']}, latent {metadata['latent_dim']}, signatures {sorted(vae.signatures)}"
    )

    digits = tfds.load("mnist", split="test[:8]", batch_size=8).get_single_element()["image"]
    x = tf.cast(digits, tf.float32) / 255.0

    posterior = vae.encode(x)  # {"z_mean": (8, latent), "z_log_var": (8, latent)}
    sigma = tf.exp(0.5 * posterior["z_log_var"])
    print("posterior mean of digit 0 (first 6 dims):", np.round(posterior["z_mean"][0, :6].numpy(), 2))
    print("posterior σ of digit 0 (first 6 dims):   ", np.round(sigma[0, :6].numpy(), 2))

    reconstructions = vae.reconstruct(x)["mean"]
    epsilon = tf.random.stateless_normal((8, metadata["latent_dim"]), seed=(args.seed, 0))
    samples = vae.sample(epsilon)["mean"]  # new ε, new samples: the export draws no noise itself

    rows = {"digits": x, "reconstructions": reconstructions, "samples": samples}
    figure, axes = plt.subplots(3, 8, figsize=(8, 3.4))
    for row, (title, images) in enumerate(rows.items()):
        axes[row, 0].set_title(title, loc="left", fontsize=9)
        for column in range(8):
            axes[row, column].imshow(images[column, ..., 0], cmap="gray", vmin=0, vmax=1)
            axes[row, column].axis("off")
    figure.tight_layout()
    figure.savefig(args.output, dpi=100)
    print(f"written {args.output}")


if __name__ == "__main__":
    main()
