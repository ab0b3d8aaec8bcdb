"""The contract between a VAE and its observation model p(x|z): the `Likelihood` base class.

Models, evaluation and the export call only the methods declared here, so a new
family is a subclass that implements them; none of them probes for a method.
"""

import keras
from keras import ops


def random_seed(seed):
    """A `keras.random.SeedGenerator` for several draws in a row (an int seed would repeat one stream)."""
    return seed if isinstance(seed, keras.random.SeedGenerator) else keras.random.SeedGenerator(seed)


def sum_over_features(values):
    """`values` `(batch, ...)` summed over every axis but the first: `(batch,)`."""
    return ops.sum(values, axis=tuple(range(1, len(values.shape))))


class Likelihood(keras.layers.Layer):
    """An observation model p(x|z) on the decoder's output.

    The decoder outputs `parameters_per_feature` values per feature of `x`: one
    tensor shaped like `x` when that is 1 (logits for `Bernoulli`, the mean for
    `Gaussian`, the log mean for the count likelihoods), else with that many
    channels on a last axis. This output is called `decoded` below.

    Every method takes one optional `condition`, the `(batch, condition_dim)`
    vector of a `ConditionalVAE` (None for a `VAE`), so callers pass it along
    whatever the family; only a condition-dependent parameter (e.g.
    `NegativeBinomial`'s `dispersion="gene-condition"`) reads it.

    A subclass implements `log_prob`, `mean`, `initial_decoded` and `draw`,
    and `distribution_parameters` and `check_data` where it has more to say
    than the defaults. Weights it learns (a scale, a dispersion) are made in `build`,
    from the shape of `x`, and are trained with the decoder.

    Attributes:
        parameters_per_feature: int, the decoder outputs per feature of `x`.
        encoder_input_transform: `None` or `"log1p"`: what the default
            encoder applies to `x` before its first layer (counts span
            orders of magnitude, so their encoder sees log(1 + x)).
        accepts_flat_features: bool, True when `log_prob` gives the same sum
            for `x` and `decoded` reshaped together to `(batch, -1)` (one term
            per feature and no parameter shaped like the features). Evaluation
            then scores on one feature axis, which XLA runs faster. False
            unless a family says so.
        checks_data: bool, True when `check_data` can refuse data: `fit`
            reads a first batch ahead for it only then.
    """

    parameters_per_feature = 1
    encoder_input_transform = None
    accepts_flat_features = False
    checks_data = False

    def log_prob(self, x, decoded, condition=None):
        """log p(x | decoded) for each example, summed over its features.

        Args:
            x: tensor `(batch, ...)`, the data.
            decoded: the decoder's output for `x`'s codes.
            condition: `None` or a tensor `(batch, condition_dim)`.

        Returns:
            A tensor `(batch,)`.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement `log_prob(x, decoded, condition=None)`.")

    def mean(self, decoded, condition=None):
        """The mean of p(x | decoded), shaped like `x` (like `decoded` for `Categorical`)."""
        raise NotImplementedError(f"{type(self).__name__} must implement `mean(decoded, condition=None)`.")

    def distribution_parameters(self, decoded, condition=None):
        """The distribution's named parameters, `"mean"` first: what an export's `decode` endpoint returns.

        Returns:
            A dict of tensors. This default holds the mean alone.
        """
        return {"mean": self.mean(decoded, condition=condition)}

    def initial_decoded(self, x):
        """The decoder output, for one example, whose mean is the average of the data `x`.

        `VAE.initialize_decoder_bias` starts the decoder's last bias there.

        Args:
            x: NumPy array `(examples, ...)`.

        Returns:
            A NumPy array that broadcasts to one example's `decoded` (`Categorical`
            gives one value per token, the same at every position).
        """
        raise NotImplementedError(f"{type(self).__name__} must implement `initial_decoded(x)`.")

    def draw(self, decoded, uniform=None, condition=None, seed=None, library=None):
        """Values of `x` drawn from p(x | decoded): at random, or the most probable ones.

        The one sampling method of every family: posterior predictive checks
        draw replicate data sets with it, an autoregressive decoder samples
        position by position with it.

        Args:
            decoded: the decoder's output.
            uniform: `None`, or noise in (0, 1) shaped like `x` that the draw
                is a function of (Bernoulli, Gaussian, Categorical: what an
                autoregressive decoder passes).
            condition: `None` or a tensor `(batch, condition_dim)`.
            seed: `None`, an int or a `keras.random.SeedGenerator`: draw at
                random with it. With neither `uniform` nor `seed`, the most
                probable values (the mean for a `Gaussian`).
            library: `None` or a tensor `(batch,)`, each example's total count,
                which the count likelihoods with `library="observed"` draw at
                (at their `library_size` without it); other families ignore it.

        Returns:
            A tensor shaped like `x`, in the decoder's dtype.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement `draw(decoded, uniform, condition, seed)`.")

    def check_data(self, x):
        """Raises a one-line ValueError when the NumPy batch `x` is data this family cannot model.

        `fit` calls it on the first batch it sees; this default accepts anything.
        """

    def set_condition_dim(self, condition_dim):
        """Told by a `ConditionalVAE` the length of its condition vector; ignored unless a parameter depends on it."""
