"""The VAE-GAN of Larsen et al. (2016): a VAE whose decoder is also a GAN's generator, with the
reconstruction measured in a discriminator layer's feature space, and three optimizers."""

import keras
from keras import layers, ops

from keras_vae import likelihoods, names, schedules
from keras_vae.models.vae import VAE, _batch_size, _default_networks, _MeanOfTerms
from keras_vae.ops.kl import free_bits_kl, gaussian_kl
from keras_vae.trainers.optimizer import MultiPartOptimizer, _copy

FEATURE_RECONSTRUCTION_LOSS = "feature_reconstruction_loss"
DECODER_LOSS = "decoder_loss"
DISCRIMINATOR_LOSS = "discriminator_loss"
# The discriminator's cross-entropy on real data and on reconstructions, this batch (pythae's balancing reads them).
REAL_CROSS_ENTROPY = "real_cross_entropy"
FAKE_CROSS_ENTROPY = "fake_cross_entropy"
_ADVERSARIAL_TERMS = (FEATURE_RECONSTRUCTION_LOSS, DECODER_LOSS, DISCRIMINATOR_LOSS)
_BALANCE_TERMS = (REAL_CROSS_ENTROPY, FAKE_CROSS_ENTROPY)


def conv_discriminator(input_shape, filters=(32, 64), dense_units=256, name="discriminator"):
    """Larsen et al.'s discriminator, smaller: strided 5×5 convolutions, a dense layer, one logit.

    Returns `[logit (batch, 1), features]`, where `features` is the last
    convolution's output (their "Dis_l", the layer reconstructions are compared in).
    """
    x = keras.Input(input_shape)
    hidden = x
    for count in filters:
        hidden = layers.Conv2D(count, 5, strides=2, padding="same")(hidden)
        hidden = layers.LeakyReLU(0.2)(hidden)
    features = hidden
    hidden = layers.Dense(dense_units)(layers.Flatten()(hidden))
    logit = layers.Dense(1)(layers.LeakyReLU(0.2)(hidden))
    return keras.Model(x, [logit, features], name=name)


def mlp_discriminator(input_shape, hidden_units=(256, 128), name="discriminator"):
    """A dense discriminator for non-image data: `[logit, features]`, the features being its last hidden layer."""
    x = keras.Input(input_shape)
    hidden = layers.Flatten()(x)
    for units in hidden_units:
        hidden = layers.LeakyReLU(0.2)(layers.Dense(units)(hidden))
    return keras.Model(x, [layers.Dense(1)(hidden), hidden], name=name)


def balanced_steps(real_cross_entropy, fake_cross_entropy, equilibrium, margin):
    """pythae's balancing: `(train_decoder, train_discriminator)` from this batch's discriminator losses.

    A discriminator that is winning (either cross-entropy under `equilibrium -
    margin`) pauses; a decoder whose discriminator is losing (either over
    `equilibrium + margin`) pauses; if both would pause, both train.
    """
    train_discriminator = min(real_cross_entropy, fake_cross_entropy) >= equilibrium - margin
    train_decoder = max(real_cross_entropy, fake_cross_entropy) <= equilibrium + margin
    if not (train_decoder or train_discriminator):
        return True, True
    return train_decoder, train_discriminator


@keras.saving.register_keras_serializable(package="keras_vae")
class VAEGAN(VAE):
    """A VAE-GAN (Larsen et al., 2016): encoder, decoder/generator and discriminator, each with its optimizer.

    With `x̃` the decoded mean of `z ~ q(z|x)`, `x_p` that of `z ~ N(0, I)`,
    `D(x) = [logit, Dis_l(x)]` the discriminator and `σ` the sigmoid, one
    training iteration takes three gradient steps, each on a fresh forward pass
    and with its own optimizer (a `MultiPartOptimizer`):

    - encoder: `β · KL(q(z|x) || p(z)) + L_llike`, where
      `L_llike = ½ ‖Dis_l(x) − Dis_l(x̃)‖²` (a Gaussian in feature space, mean
      over the batch), with β's schedule and free bits as in `VAE`;
    - decoder: `γ · L_llike + L_GAN`, with the non-saturating generator loss
      `L_GAN = −log σ(D(x̃)) − log σ(D(x_p))`;
    - discriminator: `−log σ(D(x)) − log(1 − σ(D(x̃))) − log(1 − σ(D(x_p)))`.

    With `balance=True` (pythae's `VAEGAN` trainer), the discriminator's
    cross-entropies on `x` and `x̃` of the encoder step's batch decide whether the
    decoder and the discriminator step (`balanced_steps`).

    It is a `VAE`: `encode`, `embed`, `decode`, `reconstruct`, `sample`, the
    export and the callbacks work unchanged; `reconstruction_loss` logs the
    likelihood's pixel-space `−log p(x|z)`, which no step optimizes (for
    comparison with a VAE). Every epoch also logs `feature_reconstruction_loss`,
    `decoder_loss`, `discriminator_loss` and the batch's
    `real_cross_entropy`/`fake_cross_entropy`; `loss` is the encoder's.

    Args:
        encoder, decoder, likelihood, latent_dim, seed: as for `VAE`.
        discriminator: `keras.Model`, x → `[logit (batch, 1), features]`.

    References:
        Larsen et al. (2016), Autoencoding beyond pixels using a learned similarity metric.
    """

    _step_parts = (names.ENCODER, names.DECODER, names.DISCRIMINATOR)
    _loss_only_parts = ()

    def __init__(
        self, encoder, decoder, discriminator, likelihood=names.BERNOULLI, latent_dim=None, seed=None, **kwargs
    ):
        super().__init__(encoder, decoder, likelihood=likelihood, latent_dim=latent_dim, seed=seed, **kwargs)
        self.discriminator = discriminator
        self.adversarial_terms_tracker = _MeanOfTerms(_ADVERSARIAL_TERMS)
        self.balance_terms_tracker = _LatestTerms(_BALANCE_TERMS)
        self.gamma = 1.0
        self.balance = False
        self.equilibrium = 0.68
        self.margin = 0.4
        self._discriminator_variable_ids = None

    @classmethod
    def from_input_shape(
        cls, input_shape, latent_dim=32, architecture=names.CONV, likelihood=names.BERNOULLI, seed=None, **kwargs
    ):
        """A VAE-GAN with `VAE`'s default encoder and decoder and a matching discriminator
        (`conv_discriminator` for `"conv"`, else `mlp_discriminator`)."""
        if architecture not in (names.MLP, names.CONV):
            raise ValueError(f"VAEGAN builds mlp or conv networks, not {architecture!r}.")
        likelihood = likelihoods.get(likelihood)
        encoder, decoder = _default_networks(input_shape, latent_dim, architecture, likelihood)
        build = conv_discriminator if architecture == names.CONV else mlp_discriminator
        return cls(encoder, decoder, build(input_shape), likelihood, latent_dim=latent_dim, seed=seed, **kwargs)

    def build(self, input_shape):
        super().build(input_shape)
        if not self.discriminator.built:
            self.discriminator(keras.KerasTensor(tuple(input_shape), dtype=self.compute_dtype))

    # ---------------------------------------------------------------- parts
    def _part_of(self, variable):
        if self._discriminator_variable_ids is None and self.discriminator.built:
            self._discriminator_variable_ids = {id(v) for v in self.discriminator.variables}
        if id(variable) in (self._discriminator_variable_ids or ()):
            return names.DISCRIMINATOR
        return super()._part_of(variable)

    def _discriminate(self, x, training=False):
        outputs = self.discriminator(x, training=training)
        if not isinstance(outputs, (list, tuple)) or len(outputs) != 2:
            raise ValueError(
                "The discriminator must return [logit, features]: the logit (batch, 1) and the layer "
                f"reconstructions are compared in; it returned {type(outputs).__name__}."
            )
        return ops.reshape(outputs[0], (-1,)), outputs[1]

    # ----------------------------------------------------------------- loss
    def loss_terms(self, x, outputs, training=False):
        """Every part's loss and the logged terms, from the outputs of `call` (see the class docstring)."""
        x = ops.cast(x, self.compute_dtype)
        decoded = outputs["decoded"]
        reconstruction = -self.likelihood.log_prob(x, decoded)
        prior_z = keras.random.normal(ops.shape(outputs["z_mean"]), dtype=x.dtype, seed=self.seed_generator)
        generated = self.likelihood.mean(self.decoder(prior_z, training=training))
        real_logit, real_features = self._discriminate(x, training)
        fake_logit, fake_features = self._discriminate(self.likelihood.mean(decoded), training)
        prior_logit, _ = self._discriminate(generated, training)

        squared = ops.reshape(ops.square(real_features - fake_features), (ops.shape(x)[0], -1))
        feature_reconstruction = ops.mean(0.5 * ops.sum(squared, axis=-1))
        kl_per_dim = gaussian_kl(outputs["z_mean"], outputs["z_log_var"])
        beta = self.beta_schedule(self.train_iterations)
        # −log σ(l) = softplus(−l); −log(1 − σ(l)) = softplus(l).
        real_cross_entropy = ops.mean(ops.softplus(-real_logit))
        fake_cross_entropy = ops.mean(ops.softplus(fake_logit))
        discriminator_loss = real_cross_entropy + fake_cross_entropy + ops.mean(ops.softplus(prior_logit))
        generator_loss = ops.mean(ops.softplus(-fake_logit)) + ops.mean(ops.softplus(-prior_logit))
        return {
            names.LOSS: beta * free_bits_kl(kl_per_dim, self.free_bits) + feature_reconstruction,
            names.RECONSTRUCTION_LOSS: ops.mean(reconstruction),
            names.KL_LOSS: ops.mean(ops.sum(kl_per_dim, axis=-1)),
            names.BETA: beta,
            FEATURE_RECONSTRUCTION_LOSS: feature_reconstruction,
            DECODER_LOSS: self.gamma * feature_reconstruction + generator_loss,
            DISCRIMINATOR_LOSS: discriminator_loss,
            REAL_CROSS_ENTROPY: real_cross_entropy,
            FAKE_CROSS_ENTROPY: fake_cross_entropy,
        }

    def _objective(self, x, outputs, training):
        """The encoder's loss; updates every logged term (and, training, the iteration counter)."""
        terms = self.loss_terms(x, outputs, training=training)
        for tracker in (self.loss_terms_tracker, self.adversarial_terms_tracker):
            tracker.update_state(terms, sample_weight=_batch_size(x))
        self.balance_terms_tracker.update_state(terms)
        if training:
            self.train_iterations.assign_add(1)
        return terms[names.LOSS]

    def _step_loss(self, x, part):
        """The loss of a step on `part`; the encoder's step (the first of an iteration) logs the terms."""
        outputs = self(x, training=True)
        if part == names.ENCODER:
            return self._objective(x, outputs, training=True)
        return self.loss_terms(x, outputs, training=True)[DECODER_LOSS if part == names.DECODER else DISCRIMINATOR_LOSS]

    def _part_loss(self, x, part):
        loss = self._step_loss(x, part)
        if part == names.ENCODER:  # Keras's `loss` metric: the encoder's objective, once per iteration
            tracker = next(metric for metric in self.metrics if metric.name == names.LOSS)
            tracker.update_state(loss, sample_weight=_batch_size(x))
        return loss

    def _run_iteration(self, data, run_step, aggressive):
        """Encoder, then decoder, then discriminator; with `balance`, the encoder step's batch
        losses decide whether the last two step."""
        logs = run_step(names.ENCODER, data)
        train_decoder = train_discriminator = True
        if self.balance:
            real, fake = (float(ops.convert_to_numpy(logs[name])) for name in _BALANCE_TERMS)
            train_decoder, train_discriminator = balanced_steps(real, fake, self.equilibrium, self.margin)
        if train_decoder:
            logs = run_step(names.DECODER, data)
        if train_discriminator:
            logs = run_step(names.DISCRIMINATOR, data)
        return logs

    # ------------------------------------------------------ training options
    def compile(
        self,
        optimizer=names.ADAM,
        encoder_optimizer=None,
        discriminator_optimizer=None,
        beta=1.0,
        free_bits=0.0,
        gamma=1.0,
        balance=False,
        equilibrium=0.68,
        margin=0.4,
        **kwargs,
    ):
        """Configures training. With no arguments: three Adams, β = 1, γ = 1, no balancing.

        Args:
            optimizer: optimizer or name for the decoder, copied (own state) for
                the encoder and the discriminator unless they are given; or a
                `MultiPartOptimizer` with the three parts.
            encoder_optimizer, discriminator_optimizer: optimizers or names.
            beta, free_bits: the KL's weight (or schedule) and free bits, as for `VAE`.
            gamma: float ≥ 0, the weight of the feature-space reconstruction
                in the decoder's loss against the GAN term. Defaults to `1.0`.
            balance: bool, pythae's equilibrium/margin balancing. Defaults to `False`.
            equilibrium, margin: floats, its thresholds (nats of cross-entropy).
                Default to pythae's `0.68` and `0.4`.
            **kwargs: passed to `keras.Model.compile` (e.g. `jit_compile`).
        """
        self.refuse_loss_arguments(kwargs)
        if kwargs.pop("aggressive", False):
            raise ValueError("VAEGAN has no aggressive training: its encoder already steps on its own loss.")
        if free_bits < 0 or gamma < 0 or margin < 0:
            raise ValueError(f"`free_bits`, `gamma` and `margin` must be ≥ 0; got {free_bits}, {gamma}, {margin}.")
        parts = (names.ENCODER, names.DECODER, names.DISCRIMINATOR)
        if isinstance(optimizer, MultiPartOptimizer):
            if encoder_optimizer is not None or discriminator_optimizer is not None:
                raise ValueError("Pass the parts' optimizers or a MultiPartOptimizer, not both.")
            if optimizer.part_names != parts:
                raise ValueError(f"VAEGAN's MultiPartOptimizer needs the parts {parts}; got {optimizer.part_names}.")
            multi = optimizer
        else:
            decoder = keras.optimizers.get(optimizer)
            multi = MultiPartOptimizer(
                {
                    names.ENCODER: _copy(decoder) if encoder_optimizer is None else encoder_optimizer,
                    names.DECODER: decoder,
                    names.DISCRIMINATOR: _copy(decoder) if discriminator_optimizer is None else discriminator_optimizer,
                },
                counting_part=names.ENCODER,  # it steps every iteration; balancing may skip the others
            )
        multi.part_of = self._part_of
        keras.Model.compile(self, optimizer=multi, **kwargs)
        self.beta_schedule = schedules.get(beta)
        self.free_bits = float(free_bits)
        self.gamma = float(gamma)
        self.balance = bool(balance)
        self.equilibrium = float(equilibrium)
        self.margin = float(margin)
        self.aggressive = False
        self.aggressive_mode.assign(0)
        self._compile_arguments = dict(
            optimizer=multi,
            beta=self.beta_schedule,
            free_bits=self.free_bits,
            gamma=self.gamma,
            balance=self.balance,
            equilibrium=self.equilibrium,
            margin=self.margin,
            **kwargs,
        )

    # --------------------------------------------------------- serialization
    def get_config(self):
        config = super().get_config()
        config["discriminator"] = keras.saving.serialize_keras_object(self.discriminator)
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for key in ("encoder", "decoder", "discriminator", "likelihood"):
            config[key] = keras.saving.deserialize_keras_object(config[key], custom_objects=custom_objects)
        return cls(**config)


class _LatestTerms(keras.metrics.Metric):
    """The latest batch's values of several named scalars (what balancing reads), not a mean."""

    def __init__(self, names, **kwargs):
        super().__init__(name="latest_terms", **kwargs)
        self.names = tuple(names)
        self.values = self.add_variable(shape=(len(self.names),), initializer="zeros", name="values")

    def update_state(self, terms):
        self.values.assign(ops.stack([ops.cast(terms[name], self.dtype) for name in self.names]))

    def result(self):
        return {name: self.values[i] for i, name in enumerate(self.names)}
