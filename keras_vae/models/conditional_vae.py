"""The conditional variational autoencoder: a VAE whose networks also see known covariates."""

import keras
from keras import ops

from keras_vae import likelihoods, names
from keras_vae.models.vae import VAE, _default_networks, returns_numpy

PARTS_CONDITIONED = ("encoder", "decoder")


@keras.saving.register_keras_serializable(package="keras_vae")
class ConditionalVAE(VAE):
    """A VAE conditioned on categorical and continuous covariates (Sohn et al., 2015).

    Inputs are dicts: `{"x": data, name: values, ...}` with one entry per
    condition. A categorical condition holds integer labels `(batch,)` and
    enters the networks one-hot; a continuous one holds numbers `(batch,)`.
    Their concatenation, the condition vector, is a second input of the
    encoder (`[x, condition]`), the decoder (`[z, condition]`) or both, and is
    passed to the likelihood (whose dispersion may depend on it). With the
    condition in the decoder, z is free to leave out what the condition
    explains, e.g. a batch effect, and decoding one z under another condition
    is a counterfactual: `reconstruct(inputs, condition={"batch": 0})`.

    Training is the plain VAE's, tools included (β schedules, free bits,
    aggressive training, the diagnostics callbacks), on dicts instead of arrays.

    Args:
        encoder: `keras.Model`, `[x, condition]` (or `x`) → `[z_mean, z_log_var]`.
        decoder: `keras.Model`, `[z, condition]` (or `z`) → likelihood parameters.
        conditions: dict `{name: number of categories}` in input order, with
            `None` for a continuous condition.
        likelihood, latent_dim, seed: as for `VAE`.
        condition_on: the networks that see the condition: a tuple of
            `"encoder"` and/or `"decoder"`. Defaults to both.

    Example:
    ```python
    cvae = keras_vae.ConditionalVAE.from_input_shape(
        (num_genes,), conditions={"batch": 3}, latent_dim=10, likelihood="nb"
    )
    cvae.compile(beta=0.5)
    cvae.fit({"x": counts, "batch": batch_labels}, epochs=50, batch_size=128)
    corrected = cvae.reconstruct({"x": counts, "batch": batch_labels}, condition={"batch": 0})
    ```
    """

    def __init__(
        self,
        encoder,
        decoder,
        conditions,
        likelihood=names.BERNOULLI,
        latent_dim=None,
        seed=None,
        condition_on=PARTS_CONDITIONED,
        **kwargs,
    ):
        self.conditions = _checked_conditions(conditions)
        self.condition_on = tuple(condition_on)
        if not self.condition_on or set(self.condition_on) - set(PARTS_CONDITIONED):
            raise ValueError(
                f"`condition_on` must name 'encoder' and/or 'decoder'; got {condition_on!r}. "
                "Without a conditioned network, use VAE."
            )
        super().__init__(encoder, decoder, likelihood=likelihood, latent_dim=latent_dim, seed=seed, **kwargs)
        self.condition_dim = _condition_dim(self.conditions)
        self.likelihood.set_condition_dim(self.condition_dim)

    @classmethod
    def from_input_shape(
        cls,
        input_shape,
        conditions,
        latent_dim=32,
        architecture=names.MLP,
        likelihood=names.BERNOULLI,
        condition_on=PARTS_CONDITIONED,
        seed=None,
        **kwargs,
    ):
        """A conditional VAE with the default MLP or conv networks, the condition appended to their inputs.

        Args:
            input_shape: shape of one example of `x`.
            conditions, condition_on: as for `ConditionalVAE`.
            latent_dim, architecture, likelihood, seed, **kwargs: as for `VAE.from_input_shape`.
        """
        condition_dim = _condition_dim(_checked_conditions(conditions))
        likelihood = likelihoods.get(likelihood)
        encoder, decoder = _default_networks(
            input_shape,
            latent_dim,
            architecture,
            likelihood,
            encoder_condition_dim=condition_dim if "encoder" in condition_on else 0,
            decoder_condition_dim=condition_dim if "decoder" in condition_on else 0,
        )
        return cls(
            encoder,
            decoder,
            conditions,
            likelihood=likelihood,
            latent_dim=latent_dim,
            seed=seed,
            condition_on=condition_on,
            **kwargs,
        )

    # ------------------------------------------------------------- conditions
    def condition_vector(self, values):
        """The networks' condition input `(batch, condition_dim)` from `{name: values}`.

        Categorical labels become one-hot vectors, continuous values one column each.
        """
        missing = [name for name in self.conditions if name not in values]
        if missing:
            raise ValueError(
                f"The conditional VAE needs the conditions {list(self.conditions)}; {', '.join(missing)} "
                f"missing: pass inputs as a dict {{'x': data, {', '.join(repr(n) + ': values' for n in self.conditions)}}}."
            )
        columns = []
        for name, categories in self.conditions.items():
            value = ops.reshape(ops.convert_to_tensor(values[name]), (-1,))
            if categories:
                columns.append(ops.one_hot(ops.cast(value, "int32"), categories, dtype=self.compute_dtype))
            else:
                columns.append(ops.expand_dims(ops.cast(value, self.compute_dtype), -1))
        return ops.concatenate(columns, axis=-1)

    def _split_inputs(self, inputs):
        if not isinstance(inputs, dict) or "x" not in inputs:
            raise ValueError(
                f"The conditional VAE takes a dict of inputs {{'x': data, {', '.join(repr(n) + ': ...' for n in self.conditions)}}}; "
                f"got {type(inputs).__name__}{' without x' if isinstance(inputs, dict) else ''}."
            )
        # Tensors both: a Keras network refuses a list that mixes them with arrays.
        return ops.convert_to_tensor(inputs["x"]), self.condition_vector(inputs)

    def _encoder_inputs(self, x, condition):
        return [x, condition] if "encoder" in self.condition_on else x

    def _decoder_inputs(self, z, condition, x=None):
        # Tensors both: a Keras network refuses a list that mixes them with arrays.
        return [ops.convert_to_tensor(z), condition] if "decoder" in self.condition_on else z

    # ---------------------------------------------------------------- usage
    @returns_numpy
    def decode(self, z, condition=None):
        """The mean of p(x|z, condition); `condition` is `{name: values}` (scalars apply to every z)."""
        vector = self._broadcast_condition(condition, ops.shape(z)[0])
        return self.likelihood.mean(self.decoded(z, vector), condition=vector)

    @returns_numpy
    def reconstruct(self, inputs, condition=None):
        """The decoded mean at the posterior mean of `inputs`.

        Args:
            inputs: dict of `x` and the conditions it was observed under.
            condition: dict of conditions to decode under instead (a
                counterfactual: "these samples, had they been in batch 0");
                scalars apply to every example; conditions it leaves out
                keep their observed values.
        """
        observed = {name: inputs[name] for name in self.conditions if name in inputs}
        return self.decode(self.embed(inputs), {**observed, **(condition or {})})

    @returns_numpy
    def sample(self, n, condition=None, seed=None):
        """`n` draws of the likelihood's mean at z ~ N(0, I), under `condition` (`{name: value or values}`)."""
        seed = self.seed_generator if seed is None else seed
        z = keras.random.normal((n, self.latent_dim), seed=seed)
        return self.decode(z, condition)

    def _broadcast_condition(self, condition, n):
        if "decoder" not in self.condition_on:
            return None
        if condition is None:
            raise ValueError(
                f"The decoder is conditioned: pass condition={{{', '.join(repr(c) + ': ...' for c in self.conditions)}}}."
            )
        values = {}
        for name, value in condition.items():
            value = ops.convert_to_tensor(value)
            values[name] = ops.broadcast_to(value, (n,)) if len(value.shape) == 0 else value
        return self.condition_vector(values)

    # --------------------------------------------------------- serialization
    def get_config(self):
        config = super().get_config()
        config.update(conditions=dict(self.conditions), condition_on=list(self.condition_on))
        return config


def _condition_dim(conditions):
    """The length of the condition vector: a column per category, one per continuous condition."""
    return sum(categories or 1 for categories in conditions.values())


def _checked_conditions(conditions):
    """`{name: categories or None}` with categories ≥ 2; a one-line ValueError otherwise."""
    if not isinstance(conditions, dict) or not conditions:
        raise ValueError(
            f"`conditions` must be a non-empty dict {{name: number of categories, or None if continuous}}; got {conditions!r}."
        )
    checked = {}
    for name, categories in conditions.items():
        if name == "x" or not isinstance(name, str):
            raise ValueError(f"Condition names must be strings other than 'x' (the data's key); got {name!r}.")
        if categories is not None and (isinstance(categories, bool) or int(categories) != categories or categories < 2):
            raise ValueError(
                f"Condition {name!r} has {categories!r} categories; give an integer ≥ 2, or None for a continuous condition."
            )
        checked[name] = None if categories is None else int(categories)
    return checked
