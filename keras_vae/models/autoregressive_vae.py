"""A VAE with an autoregressive decoder: a PixelCNN over pixels, an LSTM over words."""

import math

import keras
import numpy as np
from keras import ops

from keras_vae import likelihoods, names
from keras_vae.models.vae import VAE, _default_networks
from keras_vae.networks.lstm import LSTMDecoderSteps
from keras_vae.ops.decoding import beam_search, decode_step_by_step, end_at_first
from keras_vae.trainers import kept_inference

# How `AutoregressiveVAE.generate` picks each position: the most probable, a draw, or beam search.
GREEDY, SAMPLE, BEAM = "greedy", "sample", "beam"
GENERATION_METHODS = (GREEDY, SAMPLE, BEAM)


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

    Generating goes one position after the other (`generate`): greedy (the
    most probable value given the ones before: `decode`, `reconstruct`), drawn
    (`sample`), or, for words, beam search. The LSTM decoder carries its state
    from one position to the next (`networks.LSTMDecoderSteps`); any other
    decoder is run again on the whole example at each position.

    The LSTM networks take sentences of any length, so a batch may be cut to
    its longest sentence; `data_shape` keeps the longest one the model was
    built for, the length of what it generates.

    Args:
        encoder, decoder, likelihood, latent_dim, seed: as for `VAE`; the
            decoder takes `[z, x]`.
        data_shape: the shape of one example, e.g. `(max_length,)`; read from
            the decoder's `x` input when that has a fixed shape (PixelCNN).

    Example:
    ```python
    vae = keras_vae.AutoregressiveVAE.from_input_shape((28, 28, 1), latent_dim=32)
    vae.compile(aggressive=True)
    vae.fit(x_train, epochs=10, batch_size=64, validation_data=(x_valid,))
    images = vae.sample(8)  # 784 decoder passes

    text_vae = keras_vae.AutoregressiveVAE.from_input_shape(
        (60,), architecture="lstm", likelihood=keras_vae.likelihoods.Categorical(10_000)
    )
    ids = text_vae.generate(z, method="beam", beam_width=5)  # 60 LSTM steps per beam
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
        return cls(
            encoder, decoder, likelihood=likelihood, latent_dim=latent_dim, seed=seed, data_shape=input_shape, **kwargs
        )

    def __init__(
        self, encoder, decoder, likelihood=names.BERNOULLI, latent_dim=None, seed=None, data_shape=None, **kwargs
    ):
        super().__init__(encoder, decoder, likelihood=likelihood, latent_dim=latent_dim, seed=seed, **kwargs)
        self._data_shape = None if data_shape is None else tuple(int(size) for size in data_shape)

    def _decoder_inputs(self, z, condition, x):
        if x is None:
            raise ValueError(
                "An autoregressive decoder reads the data as well as z: use generate(z) to decode from z alone."
            )
        return [ops.convert_to_tensor(z), ops.cast(x, self.compute_dtype)]

    @property
    def data_shape(self):
        """The shape of one example `x`: `data_shape` as given, else what the decoder's `x` input takes."""
        if self._data_shape is not None:
            return self._data_shape
        inputs = getattr(self.decoder, "inputs", None)
        shape = tuple(inputs[1].shape[1:]) if inputs and len(inputs) > 1 else None
        if shape is None or None in shape:
            raise ValueError(
                "The decoder takes examples of any length, so the model does not know how long to generate: "
                "pass AutoregressiveVAE(..., data_shape=(max_length,)), or generate(z, length=...)."
            )
        return shape

    def generate(
        self,
        z,
        *,
        method=SAMPLE,
        beam_width=5,
        length=None,
        seed=None,
        temperature=1.0,
        normalize_length=False,
        cached=None,
        verbose=False,
        greedy=None,
    ):
        """`x` from p(x|z), one position after the other.

        The LSTM decoder (`networks.lstm_decoder`) runs one LSTM step per
        position, carrying its state, in one compiled loop (`cached`); any
        other decoder is run on the whole example once per position. Token
        sequences end at their first `<eos>`: the positions after it are padding.

        Args:
            z: latent codes `(n, latent_dim)`.
            method: `"greedy"` (the most probable value at each position, given
                the ones chosen before), `"sample"` (drawn) or `"beam"` (beam
                search over token sequences, the LSTM decoder's only: the most
                probable sequence found). Defaults to `"sample"`.
            beam_width: int, the sequences beam search keeps. Defaults to `5`.
            length: int or None, the positions of a token sequence; defaults
                to `data_shape`.
            seed: int or None, for the draws.
            temperature: float > 0, the logits are divided by it before
                drawing (below 1: closer to greedy). Defaults to `1.0`.
            normalize_length: bool, beam search picks the sequence with the
                highest log-probability per token rather than in all. Defaults to `False`.
            cached: bool or None, carry the LSTM state (True) or re-run the
                decoder at each position (False); None: whenever the decoder
                is an `lstm_decoder`.
            verbose: bool, show a progress bar over the positions (the decoder
                run again at each one).
            greedy: bool or None, the former spelling of `method`: True is
                `"greedy"`, False `"sample"`.

        Returns:
            A NumPy array `(n, *data_shape)` (or `(n, length)`): binary pixels, or token ids.
        """
        if greedy is not None:
            method = GREEDY if greedy else SAMPLE
        if method not in GENERATION_METHODS:
            raise ValueError(f"`method` must be one of {', '.join(map(repr, GENERATION_METHODS))}; got {method!r}.")
        if not temperature > 0:
            raise ValueError(f"`temperature` must be > 0; got {temperature}.")
        if temperature != 1 and not isinstance(self.likelihood, (likelihoods.Bernoulli, likelihoods.Categorical)):
            raise ValueError(
                f"`temperature` divides logits: the {type(self.likelihood).__name__} likelihood's decoder outputs none."
            )
        if int(beam_width) != beam_width or beam_width < 1:
            raise ValueError(f"`beam_width` must be a positive integer; got {beam_width!r}.")
        shape = self._generation_shape(length)
        steps = LSTMDecoderSteps.of(self.decoder) if cached is not False else None
        if steps is None and (cached or method == BEAM):
            raise ValueError(
                f"{'Beam search' if method == BEAM else 'Cached generation'} runs the decoder one step at a time, "
                "which only networks.lstm_decoder offers: use method='greedy' or 'sample' (cached=None)."
            )
        z = np.asarray(ops.convert_to_numpy(z), self.compute_dtype)
        uniform = np.random.default_rng(seed).random((len(z), *shape), dtype="float32") if method == SAMPLE else None
        if steps is not None:
            return self._generate_stepwise(
                steps, z, method, shape[0], uniform, temperature, beam_width, normalize_length
            )
        return self._generate_by_reruns(z, shape, uniform, temperature, verbose)

    def _generation_shape(self, length):
        if length is None:
            return self.data_shape
        if int(length) != length or length < 1:
            raise ValueError(f"`length` must be a positive integer; got {length!r}.")
        shape = self._data_shape or tuple(self.decoder.inputs[1].shape[1:])
        if len(shape) != 1:
            raise ValueError(f"`length` sets the length of a sequence; this model generates examples of shape {shape}.")
        return (int(length),)

    def _generate_by_reruns(self, z, shape, uniform, temperature, verbose):
        """The decoder run on the whole example once per position: any decoder that keeps the contract."""
        flat_positions = np.arange(math.prod(shape), dtype="int32").reshape(shape)

        def make():
            def step(z, x, position, *noise):
                decoded = self.decoder([z, x])
                if temperature != 1:
                    decoded = decoded / temperature
                drawn = self.likelihood.draw(decoded, *noise)
                return ops.where(ops.expand_dims(ops.equal(flat_positions, position), 0), drawn, x)

            return step

        step = kept_inference(self, ("reruns", shape, float(temperature)), make)
        x = np.zeros((len(z), *shape), "float32")
        noise = () if uniform is None else (uniform,)
        progress = keras.utils.Progbar(flat_positions.size, unit_name="position") if verbose else None
        for position in range(flat_positions.size):
            x = np.asarray(ops.convert_to_numpy(step(z, x, np.asarray(position, "int32"), *noise)))
            if progress is not None:
                progress.update(position + 1)
        if self._generates_tokens(shape):
            x = np.asarray(ops.convert_to_numpy(end_at_first(x, names.EOS, self.likelihood.padding_id)))
        return x

    def _generates_tokens(self, shape):
        return isinstance(self.likelihood, likelihoods.Categorical) and len(shape) == 1

    def _generate_stepwise(self, steps, z, method, length, uniform, temperature, beam_width, normalize_length):
        """The LSTM decoder one step per position, its state carried, all positions in one compiled loop."""
        padding_id = self.likelihood.padding_id

        def make():
            if method == BEAM:

                def run(z):
                    return beam_search(
                        steps,
                        steps.initial_state(z),
                        steps.first_tokens(z),
                        length,
                        beam_width,
                        names.EOS,
                        padding_id,
                        normalize_length=normalize_length,
                    )[0]

                return run

            def run(z, *noise):
                def choose(logits, position):
                    if temperature != 1:
                        logits = logits / temperature
                    drawn = ops.take(noise[0], position, axis=1) if noise else None
                    return self.likelihood.draw(logits, drawn)

                return decode_step_by_step(
                    steps, steps.initial_state(z), steps.first_tokens(z), length, choose, names.EOS, padding_id
                )

            return run

        key = ("steps", method, length, float(temperature), int(beam_width), bool(normalize_length))
        tokens = kept_inference(self, key, make)(z, *(() if uniform is None else (uniform,)))
        return np.asarray(ops.convert_to_numpy(tokens)).astype("float32")  # ids, exact in float32 up to 2**24

    def decode(self, z):
        """The greedy `generate(z)`: at each position, the most probable value given those before."""
        return self.generate(z, method=GREEDY)

    def reconstruct(self, x):
        """The greedy decoding of the posterior mean of `x`: an array shaped like x (a batch of token ids cut
        to its longest sentence gives sequences of that length)."""
        length = x.shape[1] if len(x.shape) == 2 and self._generates_tokens(tuple(x.shape[1:])) else None
        return self.generate(self.embed(x), method=GREEDY, length=length)

    def sample(self, n, seed=None):
        """`n` draws of x: z ~ N(0, I), then x ~ p(x|z) one position at a time."""
        if seed is None:
            seed = int(ops.convert_to_numpy(keras.random.randint((), 0, 2**31 - 1, seed=self.seed_generator)))
        z = np.random.default_rng(seed).standard_normal((n, self.latent_dim)).astype("float32")
        return self.generate(z, seed=seed + 1)

    def get_config(self):
        return {**super().get_config(), "data_shape": None if self._data_shape is None else list(self._data_shape)}
