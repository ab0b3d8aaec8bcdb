"""He et al. (2019)'s posterior mean space: the inference network lags in basic VAE training, not in aggressive training.

An LSTM VAE with a one-dimensional latent code is trained on sequences drawn
from a random recurrent generator that reads a scalar z ~ N(0, 1)
(`keras_vae.datasets.synthetic.latent_sequences`), twice from the same initial weights
and batches: basic training, and aggressive training (`compile(aggressive=True)`,
which stops once I(x; z) on held-out sequences stops rising). At chosen
iterations, for 400 fixed training sequences, it plots the model's posterior
mean μ_θ = E_{p(z|x)}[z] (x-axis, on a grid of z:
`keras_vae.evaluation.metrics.model_posterior_mean`) against the encoder's
μ_φ = E_{q(z|x)}[z] (y-axis), as in the paper's Figures 1 and 3. On the
diagonal the encoder agrees with the model; at the origin the code is unused.
Both runs use SGD at learning rate 0.5 (`--optimizer sgd`), near He et al.'s
text setting; with Adam the basic encoder keeps up and nothing lags.

    TF_CPP_MIN_LOG_LEVEL=3 python examples/posterior_mean_space.py --output-dir posterior_mean_space

About 4 minutes on 2 CPU cores with TensorFlow: 1 for basic training, 3 for
aggressive training, most of them in the inner encoder loop of its first 3
epochs. Writes posterior_mean_space.png in the output directory and prints,
per snapshot, the iteration, the mean |μ_θ| and |μ_φ|, their correlation and
the mean KL.
"""

import argparse
import os

import keras
import numpy as np

import keras_vae
from keras_vae import likelihoods, networks, plotting
from keras_vae.datasets import synthetic
from keras_vae.evaluation import metrics
from keras_vae.ops import latent

VOCABULARY_SIZE = 20
LENGTH = 10
TRAIN_EXAMPLES = 3000
VALIDATION_EXAMPLES = 500
PROBE_EXAMPLES = 400
BATCH_SIZE = 64
SNAPSHOT_ITERATIONS = (0, 10, 25, 50, 100, 300, 900)


class PosteriorMeanSnapshots(keras.callbacks.Callback):
    """Records (μ_θ, μ_φ) of `probe` and the mean KL when `model.train_iterations` reaches each of `iterations`."""

    def __init__(self, probe, iterations, name):
        super().__init__()
        self.probe = probe
        self.pending = sorted(iterations)
        self.name = name
        self.records = []

    def on_train_begin(self, logs=None):
        self._record_if_due()

    def on_train_batch_end(self, batch, logs=None):
        self._record_if_due()

    def _record_if_due(self):
        iteration = int(keras.ops.convert_to_numpy(self.model.train_iterations))
        if not self.pending or iteration < self.pending[0]:
            return
        self.pending = [i for i in self.pending if i > iteration]
        z_mean, z_log_var = self.model.encode(self.probe)
        record = {
            "iteration": iteration,
            "model_mean": metrics.model_posterior_mean(self.model, self.probe),
            "encoder_mean": np.asarray(keras.ops.convert_to_numpy(z_mean))[:, 0],
            "kl": float(keras.ops.convert_to_numpy(keras.ops.sum(latent.kl_per_dimension(z_mean, z_log_var)))),
        }
        self.records.append(record)
        model_mean, encoder_mean = record["model_mean"], record["encoder_mean"]
        correlation = (
            np.corrcoef(model_mean, encoder_mean)[0, 1] if model_mean.std() and encoder_mean.std() else float("nan")
        )
        print(
            f"{self.name:>10} iteration {iteration:4d}: mean |μ_θ| {np.abs(model_mean).mean():.3f}, "
            f"mean |μ_φ| {np.abs(encoder_mean).mean():.3f}, corr(μ_θ, μ_φ) {correlation:+.2f}, KL {record['kl']:.3f} nats"
        )


def build_vae(args):
    return keras_vae.AutoregressiveVAE(
        networks.lstm_encoder((LENGTH,), 1, VOCABULARY_SIZE, embedding_dim=32, units=64),
        networks.lstm_decoder((LENGTH, VOCABULARY_SIZE), 1, embedding_dim=32, units=64),
        likelihood=likelihoods.Categorical(VOCABULARY_SIZE),
        seed=args.seed,
    )


def optimizer(name):
    # He et al.'s text VAEs use SGD at learning rate 1.0, gradients clipped at
    # norm 5. Here 1.0 made the aggressive encoder's means jump as a whole
    # (clouds ±0.6 off the diagonal), and with Adam (1e-3) the basic encoder
    # kept up with the model: its points stayed near the diagonal.
    return keras.optimizers.SGD(0.5, clipnorm=5.0) if name == "sgd" else keras.optimizers.Adam()


def train(aggressive, initial_weights, x_train, x_valid, probe, args):
    keras.utils.set_random_seed(args.seed)  # the same batches in both runs
    vae = build_vae(args)
    vae.build((None, LENGTH))
    vae.set_weights(initial_weights)
    name = "aggressive" if aggressive else "basic"
    vae.compile(optimizer=optimizer(args.optimizer), aggressive=aggressive)
    snapshots = PosteriorMeanSnapshots(probe, SNAPSHOT_ITERATIONS, name)
    vae.fit(
        x_train,
        batch_size=BATCH_SIZE,
        epochs=args.epochs,
        validation_data=(x_valid,) if aggressive else None,
        callbacks=[snapshots],
        verbose=0,
    )
    return snapshots.records


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--epochs",
        type=int,
        default=20,
        help=f"passes over {TRAIN_EXAMPLES} sequences, {TRAIN_EXAMPLES // BATCH_SIZE + 1} iterations each",
    )
    parser.add_argument("--output-dir", default="posterior_mean_space")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd", help="for encoder and decoder alike")
    args = parser.parse_args()

    data = synthetic.latent_sequences(TRAIN_EXAMPLES + VALIDATION_EXAMPLES, LENGTH, VOCABULARY_SIZE, seed=args.seed)
    x_train, x_valid = data["x"][:TRAIN_EXAMPLES], data["x"][TRAIN_EXAMPLES:]
    probe = x_train[:PROBE_EXAMPLES]
    keras.utils.set_random_seed(args.seed)
    initial = build_vae(args)
    initial.build((None, LENGTH))
    initial_weights = initial.get_weights()

    runs = {
        name: train(name == "aggressive", initial_weights, x_train, x_valid, probe, args)
        for name in ("basic", "aggressive")
    }
    path = plotting.plot_posterior_mean_space(runs, os.path.join(args.output_dir, "posterior_mean_space.png"))
    print(f"figure: {path}")


if __name__ == "__main__":
    main()
