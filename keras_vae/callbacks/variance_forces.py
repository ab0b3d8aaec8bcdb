"""`LogVarianceForces`: the gradient on each dimension's log σ², split into its reconstruction and KL parts.

The reconstruction term pushes σ² down (noise in z hurts the decoder), the KL term
pushes it toward 1; which one wins, per dimension and epoch, is the dynamic balance
that a blog post on VAE training dynamics (Hu, 2025) describes.
"""

import os

import keras
import numpy as np

from keras_vae.files import atomic_path
from keras_vae.ops import latent
from keras_vae.trainers import compile_inference


class LogVarianceForces(keras.callbacks.Callback):
    """At each epoch end, the mean gradient of the loss on each latent dimension's log σ², in two parts.

    For probe examples x with z = μ + exp(½ log σ²) ε (ε drawn once, the same every epoch):

    - the reconstruction part, d E[−log p(x|z)] / d log σ²_j, by a central difference
      in log σ²_j (keras-vae's only backend-independent route to it; 2 decoder passes
      per dimension);
    - the KL part, β · d KL_j / d log σ²_j = β · ½ (σ²_j − 1), in closed form (0 for a
      dimension whose batch-mean KL is under the free-bits floor: no gradient there).

    A positive part pushes σ² down under gradient descent, a negative one up. It
    rewrites `log_variance_forces.csv` (epoch, dimension, reconstruction, kl, total)
    and `log_variance_forces.png` in `output_dir`, and keeps `records`.

    Args:
        data: probe inputs (arrays; the first `max_examples` are used).
        output_dir: str, where the files go.
        max_examples: int. Defaults to `256`.
        step: float, the central difference's step in log σ². Defaults to `0.01`.
        batch_size: int. Defaults to `128`.
        seed: int, for ε.
    """

    def __init__(self, data, output_dir, max_examples=256, step=0.01, batch_size=128, seed=0):
        super().__init__()
        self.data = keras.tree.map_structure(lambda array: np.asarray(array)[:max_examples], data)
        self.output_dir = os.fspath(output_dir)
        self.step = step
        self.batch_size = batch_size
        self.seed = seed
        self.records = []
        self._score = None

    def on_epoch_end(self, epoch, logs=None):
        reconstruction, kl = self.forces()
        self.records.append({"epoch": epoch + 1, "reconstruction": reconstruction.tolist(), "kl": kl.tolist()})
        self._write()

    def forces(self):
        """`(reconstruction, kl)`: the two parts of the gradient on each dimension's log σ², `(latent_dim,)` each."""
        z_mean, z_log_var = latent.encode_data(self.model, self.data, self.batch_size)
        z_mean, z_log_var = z_mean.astype("float64"), z_log_var.astype("float64")
        epsilon = np.random.default_rng(self.seed).standard_normal(z_mean.shape)
        dims = z_mean.shape[1]
        reconstruction = np.zeros(dims)
        for j in range(dims):
            shifted = []
            for sign in (1.0, -1.0):
                log_var = z_log_var.copy()
                log_var[:, j] += sign * self.step
                shifted.append(self._reconstruction_loss(z_mean + np.exp(0.5 * log_var) * epsilon))
            reconstruction[j] = (shifted[0] - shifted[1]) / (2 * self.step)
        beta = float(keras.ops.convert_to_numpy(self.model.beta_schedule(self.model.train_iterations)))
        kl_per_dim = 0.5 * (z_mean**2 + np.exp(z_log_var) - z_log_var - 1).mean(axis=0)
        kl = beta * 0.5 * (np.exp(z_log_var) - 1).mean(axis=0)
        kl[kl_per_dim < getattr(self.model, "free_bits", 0.0)] = 0.0
        return reconstruction, kl

    def _reconstruction_loss(self, z):
        """Mean −log p(x|z) over the probe examples."""
        from keras_vae.evaluation.metrics import _cast_data

        model = self.model
        if self._score is None:

            def score(inputs, codes):
                x, condition = model._split_inputs(_cast_data(model, inputs))
                decoded = model.decoded(keras.ops.cast(codes, model.likelihood_dtype), condition, x)
                return model.likelihood.log_prob(x, decoded, condition=condition)

            self._score = compile_inference(model, score)
        count = len(keras.tree.flatten(self.data)[0])
        total = 0.0
        for start in range(0, count, self.batch_size):
            rows = slice(start, start + self.batch_size)
            inputs = keras.tree.map_structure(lambda array, rows=rows: array[rows], self.data)
            codes = z[rows].astype("float32")
            total -= float(np.sum(keras.ops.convert_to_numpy(self._score(inputs, codes)), dtype="float64"))
        return total / count

    def _write(self):
        from keras_vae import plotting

        os.makedirs(self.output_dir, exist_ok=True)
        rows = [
            [r["epoch"], j, rec, kl, rec + kl]
            for r in self.records
            for j, (rec, kl) in enumerate(zip(r["reconstruction"], r["kl"], strict=True))
        ]
        with atomic_path(os.path.join(self.output_dir, "log_variance_forces.csv")) as temporary:
            np.savetxt(
                temporary,
                np.asarray(rows, float),
                delimiter=",",
                header="epoch,dimension,reconstruction,kl,total",
                comments="",
                fmt="%.6g",
            )
        plotting.plot_log_variance_forces(self.records, os.path.join(self.output_dir, "log_variance_forces.png"))
