"""The variational autoencoder model."""

import functools

import keras
import numpy as np
from keras import ops

from keras_vae import likelihoods, names, networks, schedules
from keras_vae.datasets.batching import concatenate_batches, numpy_batches
from keras_vae.models.own_loss import ComputesOwnLoss
from keras_vae.ops.kl import free_bits_kl, gaussian_kl
from keras_vae.trainers import VAETrainer, kept_inference, scale_loss_for_replicas


def returns_numpy(method):
    """`method` with its tensors returned as NumPy arrays (tuples stay tuples)."""

    @functools.wraps(method)
    def run(*args, **kwargs):
        outputs = method(*args, **kwargs)
        return keras.tree.map_structure(lambda tensor: np.asarray(ops.convert_to_numpy(tensor)), outputs)

    return run


@keras.saving.register_keras_serializable(package="keras_vae")
class VAE(ComputesOwnLoss, VAETrainer, keras.Model):
    """A variational autoencoder trained by reparameterized gradients.

    The encoder maps `x` to `[z_mean, z_log_var]` (each `(batch, latent_dim)`),
    `z = z_mean + exp(z_log_var / 2) * ε` with `ε ~ N(0, I)`, and the decoder maps
    `z` to the likelihood's parameters, shaped like `x`. The loss is the batch
    mean of `-log p(x|z) + β · KL(q(z|x) || N(0, I))`, where β follows a schedule
    and the KL term may be clamped per dimension (free bits). See `compile` for
    the training options, including He et al. (2019)'s aggressive encoder
    updates; `keras_vae.networks` for the encoder/decoder contract;
    `keras_vae.trainers.BaseVAETrainer` for the training loop (`fit`,
    `train_part_on_batch`) and what it needs from a model.

    Every epoch logs `loss`, `reconstruction_loss`, `kl_loss` (the true KL, also
    with free bits) and `beta`, and their `val_` versions.

    Args:
        encoder: `keras.Model`, x → `[z_mean, z_log_var]`.
        decoder: `keras.Model`, z → likelihood parameters shaped like x.
        likelihood: `"bernoulli"`, `"gaussian"` or a layer from
            `keras_vae.likelihoods`. Defaults to `"bernoulli"`.
        latent_dim: int; read from the decoder's input when it has one.
        seed: int or None, seeds the draws of ε and of `sample`.

    Example:
    ```python
    vae = keras_vae.VAE.from_input_shape((28, 28, 1), latent_dim=32)
    vae.compile(beta=keras_vae.schedules.LinearWarmup(10_000), free_bits=0.1)
    vae.fit(x_train, epochs=10, batch_size=128, validation_data=(x_test,))
    samples = vae.sample(16)
    ```

    References:
        Kingma & Welling (2014), Auto-Encoding Variational Bayes.
        He et al. (2019), Lagging Inference Networks and Posterior Collapse in VAEs.
    """

    def __init__(self, encoder, decoder, likelihood=names.BERNOULLI, latent_dim=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.likelihood = likelihoods.get(likelihood)
        self.latent_dim = latent_dim or _infer_latent_dim(decoder)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.loss_terms_tracker = _MeanOfTerms((names.RECONSTRUCTION_LOSS, names.KL_LOSS, names.BETA))
        # Options of the objective, replaced by `compile` (the trainer holds its own and the training state).
        self.beta_schedule = schedules.Constant(1.0)
        self.free_bits = 0.0

    @classmethod
    def from_input_shape(
        cls, input_shape, latent_dim=32, architecture=names.MLP, likelihood=names.BERNOULLI, seed=None, **kwargs
    ):
        """A VAE with the default MLP (784-512-256 → z → 256-512-784 on MNIST) or conv networks.

        The networks follow the likelihood: a count likelihood's encoder sees
        `log(1 + x)`, and the decoder outputs its `parameters_per_feature`
        values per feature.

        Args:
            input_shape: shape of one example, e.g. `(28, 28, 1)`.
            latent_dim: int. Defaults to `32`.
            architecture: `"mlp"` or `"conv"`. Defaults to `"mlp"`.
            likelihood, seed, **kwargs: as for `VAE`.
        """
        if architecture in names.AUTOREGRESSIVE_ARCHITECTURES:
            raise ValueError(
                f"The {architecture} decoder is autoregressive: use keras_vae.AutoregressiveVAE.from_input_shape."
            )
        likelihood = likelihoods.get(likelihood)
        encoder, decoder = _default_networks(input_shape, latent_dim, architecture, likelihood)
        return cls(encoder, decoder, likelihood=likelihood, latent_dim=latent_dim, seed=seed, **kwargs)

    # ------------------------------------------------------------------ model
    def build(self, input_shape):
        # A symbolic call builds sub-models that have no build() of their own.
        x, condition = self._split_inputs(_symbolic(input_shape, self.compute_dtype))
        if not self.encoder.built:
            self.encoder(self._encoder_inputs(x, condition))
        if not self.decoder.built:
            z = keras.KerasTensor((None, self.latent_dim), dtype=self.compute_dtype)
            self.decoder(self._decoder_inputs(z, condition, x))
        if not self.likelihood.built:
            self.likelihood.build(input_shape["x"] if isinstance(input_shape, dict) else input_shape)
        self.built = True

    def call(self, x, training=False):
        """Encodes, samples z and decodes; returns the pieces of the ELBO as a dict."""
        x, condition = self._split_inputs(x)
        z_mean, z_log_var = self._posterior(x, condition, training)
        z = self.reparameterize(z_mean, z_log_var)
        decoded = self.decoded(z, condition, x, training=training)
        return {"z_mean": z_mean, "z_log_var": z_log_var, "z": z, "decoded": decoded}

    @property
    def likelihood_dtype(self):
        """The dtype of the posterior's parameters, the decoder's output, the likelihood and the KL.

        The policy's variable dtype: float32 under a mixed policy
        (`keras.config.set_dtype_policy("mixed_bfloat16")`), whose networks
        compute in bfloat16 while the objective stays in float32.
        """
        return self.dtype_policy.variable_dtype

    def decoded(self, z, condition=None, x=None, training=False):
        """The decoder's output for the codes `z` (the likelihood's parameters), as a `likelihood_dtype` tensor.

        `condition` is a conditional model's condition vector, `x` the data an
        autoregressive decoder reads (teacher forcing); a plain VAE uses neither.
        """
        outputs = self.decoder(self._decoder_inputs(z, condition, x), training=training)
        return ops.cast(outputs, self.likelihood_dtype)

    # What a subclass with more inputs than `x` (ConditionalVAE), or whose
    # decoder reads `x` (AutoregressiveVAE), overrides.
    def _split_inputs(self, inputs):
        """`(x, condition)`: the data the likelihood scores, and the condition vector (None here)."""
        return inputs, None

    def _encoder_inputs(self, x, condition):
        return x

    def _decoder_inputs(self, z, condition, x):
        """What the decoder is called on: `z` here; `x` is the data being scored (teacher forcing)."""
        return z

    def posterior(self, x, training=False):
        """The posterior q(z|x) as tensors `(z_mean, z_log_var)`, for compiled or exported functions.

        `encode` is the same as NumPy arrays.
        """
        return self._posterior(*self._split_inputs(x), training=training)

    def posterior_function(self):
        """`posterior` (without training) as one compiled function of a batch, made once and kept.

        What code that encodes again and again calls (each epoch's diagnostics):
        it reads the live weights, and compiles once per batch shape.
        """
        return kept_inference(self, "posterior", lambda: self.posterior)

    # The public inference methods return NumPy arrays, as `Model.predict` does:
    # the same type on every backend (a PyTorch tensor that requires grad
    # refuses `np.asarray`). Compiled code uses `posterior`, `decoder` and
    # `likelihood` on tensors instead.
    @returns_numpy
    def encode(self, x, training=False):
        """The posterior q(z|x): `(z_mean, z_log_var)`, two arrays `(batch, latent_dim)`."""
        return self.posterior(x, training=training)

    def _posterior(self, x, condition, training=False):
        outputs = self.encoder(self._encoder_inputs(x, condition), training=training)
        if not isinstance(outputs, (list, tuple)) or len(outputs) != 2:
            raise ValueError(
                "The encoder must return [z_mean, z_log_var], two tensors of shape "
                f"(batch, latent_dim); it returned {type(outputs).__name__}."
            )
        return ops.cast(outputs[0], self.likelihood_dtype), ops.cast(outputs[1], self.likelihood_dtype)

    def reparameterize(self, z_mean, z_log_var):
        """z = mean + σ·ε, differentiable in mean and log-variance."""
        epsilon = keras.random.normal(ops.shape(z_mean), dtype=z_mean.dtype, seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon

    @returns_numpy
    def embed(self, x):
        """The deterministic code of `x`: the posterior mean, an array `(batch, latent_dim)`."""
        return self.posterior(x)[0]

    @returns_numpy
    def decode(self, z):
        """The mean of p(x|z), e.g. pixel probabilities for a Bernoulli likelihood: an array shaped like x."""
        return self.likelihood.mean(self.decoded(z))

    @returns_numpy
    def reconstruct(self, x):
        """The decoded mean of the posterior mean of `x` (deterministic): an array shaped like x."""
        return self.decode(self.embed(x))

    @returns_numpy
    def sample(self, n, seed=None):
        """`n` draws of the likelihood's mean at z ~ N(0, I): an array `(n, *x.shape[1:])`."""
        seed = self.seed_generator if seed is None else seed
        z = keras.random.normal((n, self.latent_dim), seed=seed)
        return self.decode(z)

    def initialize_decoder_bias(self, x, max_examples=10_000):
        """Starts the decoder at the data's average: its output bias set from `x`.

        The bias of the decoder's last layer becomes the likelihood's
        `initial_decoded(x)`: pixel log-odds of the mean image (Bernoulli), the
        mean (Gaussian), log mean expression proportions (count likelihoods).
        Call it once, before training. A decoder that starts far from the data
        (e.g. equal proportions for genes whose abundance spans four orders of
        magnitude) makes the encoder grab several nats per dimension in the first
        iterations and give them back later (measured on synthetic counts: KL
        8 → 231 nats in 5 iterations); started at the average, it stayed under
        a few nats and then rose as the decoder learned.

        Args:
            x: training data (anything `fit` takes; a conditional model's dicts too).
            max_examples: int, the average reads at most this many examples.
        """
        arrays, count = [], 0
        for batch in numpy_batches(x, 512):
            arrays.append(np.asarray(batch["x"] if isinstance(batch, dict) else batch))
            count += len(arrays[-1])
            if count >= max_examples:
                break
        if not arrays:
            raise ValueError("`x` holds no examples.")
        target = np.asarray(self.likelihood.initial_decoded(concatenate_batches(arrays)[:max_examples]), "float32")
        layer = self.decoder.layers[-1] if isinstance(self.decoder, keras.Model) and self.decoder.layers else None
        if isinstance(layer, keras.layers.Reshape) and len(self.decoder.layers) > 1:
            layer = self.decoder.layers[-2]
        bias = getattr(layer, "bias", None)
        if bias is None or bias.shape[0] not in (target.size, target.shape[-1]):
            raise ValueError(
                "initialize_decoder_bias sets the bias of the decoder's last layer (a Dense or convolution, "
                f"optionally followed by a Reshape); this decoder ends in {type(layer).__name__}, "
                f"whose bias does not fit an output of shape {target.shape}: set its bias yourself."
            )
        if bias.shape[0] != target.size:  # one bias per channel of a convolution: average the rest
            target = target.reshape(-1, target.shape[-1]).mean(axis=0)
        bias.assign(target.reshape(bias.shape))

    # ------------------------------------------------------------------ loss
    def loss_terms(self, x, outputs):
        """The objective and its logged parts, from the outputs of `call`.

        Returns:
            A dict of scalars: `loss` (what is minimized), `reconstruction_loss`
            (mean -log p(x|z)), `kl_loss` (mean KL, without the free-bits clamp)
            and `beta` (the schedule's value at the current iteration).
        """
        x, condition = self._split_inputs(x)
        x = ops.cast(x, self.likelihood_dtype)
        reconstruction = -self.likelihood.log_prob(x, outputs["decoded"], condition=condition)
        kl_per_dim = gaussian_kl(outputs["z_mean"], outputs["z_log_var"])
        beta = self.beta_schedule(self.train_iterations)
        reconstruction_loss = ops.mean(reconstruction)
        return {
            names.LOSS: reconstruction_loss + beta * free_bits_kl(kl_per_dim, self.free_bits),
            names.RECONSTRUCTION_LOSS: reconstruction_loss,
            names.KL_LOSS: ops.mean(ops.sum(kl_per_dim, axis=-1)),
            names.BETA: beta,
        }

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Keras's loss hook: the VAE loss, with its parts tracked as metrics.

        A training call counts one iteration of the β schedule. As Keras's own
        losses are, it is scaled for the replicas of a `tf.distribute` strategy
        (Keras's evaluation multiplies it back).
        """
        if sample_weight is not None:
            raise ValueError("VAE does not weight examples: remove `sample_weight` (or `class_weight`) from fit().")
        return scale_loss_for_replicas(self._objective(x, y_pred, training))

    def _objective(self, x, outputs, training):
        """The batch's loss, unscaled; updates the loss-term metrics (and the iteration counter)."""
        terms = self.loss_terms(x, outputs)
        self.loss_terms_tracker.update_state(terms, sample_weight=_batch_size(x))
        if training:
            self.train_iterations.assign_add(1)
        return terms[names.LOSS]

    def _step_loss(self, x, part):
        """The loss a gradient step on `part` differentiates (the trainer's hook, shared by all backends).

        Encoder-only steps of the inner loop leave the metrics and the iteration
        counter alone, so epoch logs and β describe the model's iterations.
        It is the mean over this device's examples: a backend whose engine
        sums the devices' gradients scales it (`scale_loss_for_replicas`).
        """
        outputs = self(x, training=True)
        if part == names.ENCODER:
            return self.loss_terms(x, outputs)[names.LOSS]
        return self._objective(x, outputs, training=True)

    # ------------------------------------------------------ training options
    def compile(
        self,
        optimizer=names.ADAM,
        encoder_optimizer=None,
        beta=1.0,
        free_bits=0.0,
        aggressive=False,
        max_inner_steps=100,
        inner_check_every=10,
        mi_patience=1,
        min_mi_gain=0.05,
        **kwargs,
    ):
        """Configures training. With no arguments: Adam, β = 1, no free bits.

        Args:
            optimizer: optimizer or name for the decoder (and the encoder, as a
                copy with its own state, unless `encoder_optimizer` is given).
                Defaults to `"adam"`.
            encoder_optimizer: optimizer or name for the encoder.
            beta: float or `keras_vae.schedules.BetaSchedule`, the KL weight as a
                function of the iteration. Defaults to `1.0`.
            free_bits: float λ ≥ 0, nats per latent dimension below which the
                KL is not penalized (Kingma et al., 2016). Defaults to `0.0`.
            aggressive: bool, He et al. (2019)'s aggressive inference-network
                training: before each decoder update, update the encoder alone
                on fresh random minibatches until its loss stops falling; end
                this mode once I(x; z) on validation data stops rising.
                Each optimizer counts its own steps, so a learning-rate
                schedule on the encoder advances with every inner update:
                keep it constant, or size an `encoder_optimizer`'s schedule
                for that. Defaults to `False`.
            max_inner_steps: int, most encoder updates per iteration. Defaults to `100`.
            inner_check_every: int, the inner loop compares windowed mean losses
                every this many updates and stops when it went up. Defaults to `10`.
            mi_patience: int, epochs without a new highest I(x; z) before
                aggressive mode ends. Defaults to `1`.
            min_mi_gain: float ≥ 0, nats: an epoch's I(x; z) counts as a new
                highest only if it beats the best so far by more than this (as
                `keras.callbacks.EarlyStopping`'s `min_delta`). On Penn Treebank
                the estimate rose by hundredths of a nat per epoch for many
                epochs, so He et al.'s rule (any rise) kept aggressive mode on.
                Defaults to `0.05`.
            **kwargs: passed to `keras.Model.compile` (e.g. `jit_compile`).
        """
        self.refuse_loss_arguments(kwargs)
        if kwargs.get("steps_per_execution", 1) != 1:
            raise ValueError("VAE runs one iteration per call: use steps_per_execution=1.")
        if free_bits < 0:
            raise ValueError(f"`free_bits` must be ≥ 0 nats; got {free_bits}.")
        if min_mi_gain < 0:
            raise ValueError(f"`min_mi_gain` must be ≥ 0 nats; got {min_mi_gain}.")
        for name, value in (
            ("max_inner_steps", max_inner_steps),
            ("inner_check_every", inner_check_every),
            ("mi_patience", mi_patience),
        ):
            if int(value) < 1:
                raise ValueError(f"`{name}` must be a positive integer; got {value}.")

        pair = self._encoder_decoder_optimizer(optimizer, encoder_optimizer)
        super().compile(optimizer=pair, **kwargs)

        self.beta_schedule = schedules.get(beta)
        self.free_bits = float(free_bits)
        self.aggressive = bool(aggressive)
        self.max_inner_steps = int(max_inner_steps)
        self.inner_check_every = int(inner_check_every)
        self.mi_patience = int(mi_patience)
        self.min_mi_gain = float(min_mi_gain)
        self.aggressive_mode.assign(int(self.aggressive))
        self.best_mutual_info.assign(0.0)
        self.epochs_without_mi_gain.assign(0)
        self._compile_arguments = dict(
            optimizer=pair,
            beta=self.beta_schedule,
            free_bits=self.free_bits,
            aggressive=self.aggressive,
            max_inner_steps=self.max_inner_steps,
            inner_check_every=self.inner_check_every,
            mi_patience=self.mi_patience,
            min_mi_gain=self.min_mi_gain,
            **kwargs,
        )

    # --------------------------------------------------------- serialization
    def get_config(self):
        config = super().get_config()
        config.update(
            encoder=keras.saving.serialize_keras_object(self.encoder),
            decoder=keras.saving.serialize_keras_object(self.decoder),
            likelihood=keras.saving.serialize_keras_object(self.likelihood),
            latent_dim=self.latent_dim,
            seed=self.seed,
        )
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for key in ("encoder", "decoder", "likelihood"):
            config[key] = keras.saving.deserialize_keras_object(config[key], custom_objects=custom_objects)
        return cls(**config)


class _MeanOfTerms(keras.metrics.Metric):
    """Weighted means of several named scalars in one metric (one update per step).

    Keras reports each entry of a dict `result()` under its own name.
    """

    def __init__(self, names, **kwargs):
        super().__init__(name="loss_terms", **kwargs)
        self.names = tuple(names)
        self.total = self.add_variable(shape=(len(self.names),), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, terms, sample_weight=1):
        weight = ops.cast(sample_weight, self.dtype)
        values = ops.stack([ops.cast(terms[name], self.dtype) for name in self.names])
        self.total.assign_add(values * weight)
        self.count.assign_add(weight)

    def result(self):
        means = self.total / ops.maximum(self.count, 1.0)
        return {name: means[i] for i, name in enumerate(self.names)}


def _default_networks(
    input_shape, latent_dim, architecture, likelihood, encoder_condition_dim=0, decoder_condition_dim=0
):
    """The default encoder and decoder for this data and likelihood."""
    if architecture not in networks.ARCHITECTURES:
        raise ValueError(
            f"Unknown architecture {architecture!r}: use one of "
            f"{sorted(networks.ARCHITECTURES)}, or build your own encoder and decoder."
        )
    per_feature = likelihood.parameters_per_feature
    build_encoder, build_decoder = networks.ARCHITECTURES[architecture]
    if architecture == names.LSTM:
        if not isinstance(likelihood, likelihoods.Categorical):
            raise ValueError(
                "The lstm architecture models words: use likelihood=keras_vae.likelihoods.Categorical(vocabulary_size)."
            )
        return (
            build_encoder(input_shape, latent_dim, likelihood.num_classes),
            build_decoder((*input_shape, per_feature), latent_dim),
        )
    if per_feature > 1 and architecture != names.MLP:
        raise ValueError(
            f"The {type(likelihood).__name__} likelihood needs {per_feature} decoder outputs per feature, "
            "which only the mlp architecture builds: use architecture='mlp'."
        )
    output_shape = tuple(input_shape) + ((per_feature,) if per_feature > 1 else ())
    encoder = build_encoder(
        input_shape,
        latent_dim,
        condition_dim=encoder_condition_dim,
        input_transform=likelihood.encoder_input_transform,
    )
    return encoder, build_decoder(output_shape, latent_dim, condition_dim=decoder_condition_dim)


def _symbolic(shape, dtype):
    """A KerasTensor of `shape`, or a dict of them for a dict of shapes."""
    if isinstance(shape, dict):
        return {name: _symbolic(value, dtype) for name, value in shape.items()}
    return keras.KerasTensor(tuple(shape), dtype=dtype)


def _batch_size(inputs):
    """The number of examples in a batch of `x` (or of a dict of inputs)."""
    return ops.shape(next(iter(inputs.values())) if isinstance(inputs, dict) else inputs)[0]


def _infer_latent_dim(decoder):
    inputs = getattr(decoder, "inputs", None)
    if inputs:
        return int(inputs[0].shape[-1])
    raise ValueError("Cannot read latent_dim from the decoder (it has no Input): pass VAE(..., latent_dim=...).")
