"""A VAE with an autoregressive decoder: a PixelCNN over pixels, an LSTM over words."""

import math

import keras
import numpy as np
from keras import ops

from keras_vae import likelihoods, names
from keras_vae.models.vae import VAE, _default_networks
from keras_vae.trainers import compile_inference


@keras.saving.register_keras_serializable(package="keras_vae")
class AutoregressiveVAE(VAE):
    """A VAE whose decoder also reads the data: p(x|z) = Π_i p(x_i | x_<i, z).

    Such a decoder can model the data without the latent code, which is where
    posterior collapse is real (Bowman et al., 2016; He et al., 2019), and
    where β annealing, free bits and aggressive training have something to fix.
    Training scores `x` in one teacher-forced pass, so `fit`, `compile`'s
    options, the callbacks and `importance_weighted_nll` are the plain VAE's.

    The decoder contract: it takes `[z, x]` and returns the likelihood's
    parameters for every position of `x`, those of position i computed from
    `z` and from the positions before i only (row-major order for images).
    `networks.pixelcnn_decoder` (masked convolutions) and
    `networks.lstm_decoder` (the input shifted right by one) keep it.

    Generating takes one decoder pass per position (`generate`): `decode` and
    `reconstruct` return the most probable value at each step given the ones
    before (greedy), `sample` draws each.

    Args:
        encoder, decoder, likelihood, latent_dim, seed: as for `VAE`; the
            decoder takes `[z, x]`.

    Example:
    ```python
    vae = keras_vae.AutoregressiveVAE.from_input_shape((28, 28, 1), latent_dim=32)
    vae.compile(aggressive=True)
    vae.fit(x_train, epochs=10, batch_size=64, validation_data=(x_valid,))
    images = vae.sample(8)  # 784 decoder passes
    ```

    References:
        van den Oord et al. (2016), Conditional Image Generation with PixelCNN Decoders.
        Bowman et al. (2016), Generating Sentences from a Continuous Space.
        He et al. (2019), Lagging Inference Networks and Posterior Collapse in VAEs.
    """

    @classmethod
    def from_input_shape(
        cls, input_shape, latent_dim=32, architecture=names.PIXELCNN, likelihood=names.BERNOULLI, seed=None, **kwargs
    ):
        """An autoregressive VAE with the default networks.

        Args:
            input_shape: shape of one example: `(height, width, 1)` binary
                images for `"pixelcnn"`, `(length,)` token ids for `"lstm"`.
            latent_dim: int. Defaults to `32`.
            architecture: `"pixelcnn"` (Bernoulli pixels) or `"lstm"` (a
                `likelihoods.Categorical` over the vocabulary). Defaults to `"pixelcnn"`.
            likelihood, seed, **kwargs: as for `VAE`.
        """
        if architecture not in names.AUTOREGRESSIVE_ARCHITECTURES:
            raise ValueError(
                f"AutoregressiveVAE builds the {' or '.join(names.AUTOREGRESSIVE_ARCHITECTURES)} architecture, not "
                f"{architecture!r}: use keras_vae.VAE for the others."
            )
        likelihood = likelihoods.get(likelihood)
        encoder, decoder = _default_networks(input_shape, latent_dim, architecture, likelihood)
        return cls(encoder, decoder, likelihood=likelihood, latent_dim=latent_dim, seed=seed, **kwargs)

    def _decoder_inputs(self, z, condition, x):
        if x is None:
            raise ValueError(
                "An autoregressive decoder reads the data as well as z: use generate(z) to decode from z alone."
            )
        return [ops.convert_to_tensor(z), ops.cast(x, self.compute_dtype)]

    @property
    def data_shape(self):
        """The shape of one example `x` (what the decoder's second input takes)."""
        return tuple(self.decoder.inputs[1].shape[1:])

    def generate(self, z, greedy=False, seed=None, verbose=False):
        """`x` from p(x|z), one position after the other.

        Args:
            z: latent codes `(n, latent_dim)`.
            greedy: bool, take the most probable value at each position
                (given the ones chosen before) instead of drawing it.
            seed: int or None, for the draws.
            verbose: bool, show a progress bar over the positions.

        Returns:
            A NumPy array `(n, *data_shape)`: binary pixels, or token ids.
        """
        z = np.asarray(ops.convert_to_numpy(z), "float32")
        shape = self.data_shape
        flat_positions = np.arange(math.prod(shape), dtype="int32").reshape(shape)
        uniform = None if greedy else np.random.default_rng(seed).random((len(z), *shape), dtype="float32")

        def step(z, x, position, *noise):
            decoded = self.decoder([z, x])
            drawn = self.likelihood.draw(decoded, *noise)
            return ops.where(ops.expand_dims(ops.equal(flat_positions, position), 0), drawn, x)

        step = compile_inference(self, step)
        x = np.zeros((len(z), *shape), "float32")
        progress = keras.utils.Progbar(flat_positions.size, unit_name="position") if verbose else None
        for position in range(flat_positions.size):
            x = np.asarray(
                ops.convert_to_numpy(step(z, x, np.asarray(position, "int32"), *(() if greedy else (uniform,))))
            )
            if progress is not None:
                progress.update(position + 1)
        return x

    def decode(self, z):
        """The greedy `generate(z)`: at each position, the most probable value given those before."""
        return self.generate(z, greedy=True)

    def sample(self, n, seed=None):
        """`n` draws of x: z ~ N(0, I), then x ~ p(x|z) one position at a time."""
        if seed is None:
            seed = int(ops.convert_to_numpy(keras.random.randint((), 0, 2**31 - 1, seed=self.seed_generator)))
        z = np.random.default_rng(seed).standard_normal((n, self.latent_dim)).astype("float32")
        return self.generate(z, seed=seed + 1)
