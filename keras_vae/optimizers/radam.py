"""RAdam (Liu et al. 2020): Adam whose adaptive step is switched on, and rectified, once the
variance of its second-moment estimate is tractable. Keras 3 ships no RAdam; this one follows
`torch.optim.RAdam`'s update, on the three backends."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_vae")
class RAdam(keras.optimizers.Optimizer):
    """Rectified Adam.

    Adam's adaptive learning rate `1/sqrt(v̂)` has a large variance in the first
    steps, when `v̂` averages only a few squared gradients; the usual cure is a
    learning-rate warm-up. RAdam derives one instead: with ρ∞ = 2/(1 − β₂) − 1
    and ρₜ = ρ∞ − 2t·β₂ᵗ/(1 − β₂ᵗ) (the length of the approximated simple moving
    average), it takes plain momentum steps `lr · m̂` while ρₜ ≤ 5 (the first five
    steps with β₂ = 0.999), then Adam's step scaled by the rectification term

        rₜ = sqrt((ρₜ − 4)(ρₜ − 2)ρ∞ / ((ρ∞ − 4)(ρ∞ − 2)ρₜ)),

    which rises towards 1. The update is `torch.optim.RAdam`'s (ε is added to
    `sqrt(v)` before the bias correction, as in Keras's Adam); `weight_decay` is
    Keras's decoupled decay (torch's `decoupled_weight_decay=True`).

    Args:
        learning_rate: float or `keras.optimizers.schedules.LearningRateSchedule`.
            Defaults to `0.001`.
        beta_1: decay rate of the first-moment estimate. Defaults to `0.9`.
        beta_2: decay rate of the second-moment estimate. Defaults to `0.999`.
        epsilon: added to `sqrt(v)`. Defaults to `1e-7` (Keras's Adam's).
        **kwargs: the base optimizer's (`weight_decay`, `clipnorm`,
            `global_clipnorm`, `clipvalue`, `use_ema`, `name`, ...).

    Reference:
        Liu et al. (2020), On the Variance of the Adaptive Learning Rate and Beyond.
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, name="radam", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        for label, value in (("beta_1", beta_1), ("beta_2", beta_2)):
            if not 0.0 <= value < 1.0:
                raise ValueError(f"RAdam's `{label}` must be in [0, 1); got {value}.")
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._momentums, self._velocities = self.add_optimizer_variables(var_list, ["momentum", "velocity"])

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        gradient = ops.cast(gradient, dtype)
        step = ops.cast(self.iterations + 1, dtype)
        beta_1 = ops.cast(self.beta_1, dtype)
        beta_2 = ops.cast(self.beta_2, dtype)
        beta_1_power = ops.power(beta_1, step)
        beta_2_power = ops.power(beta_2, step)

        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]
        self.assign_add(m, ops.multiply(ops.subtract(gradient, m), 1 - beta_1))
        self.assign_add(v, ops.multiply(ops.subtract(ops.square(gradient), v), 1 - beta_2))

        rho_infinity = 2.0 / (1.0 - beta_2) - 1.0
        rho = rho_infinity - 2.0 * step * beta_2_power / (1.0 - beta_2_power)
        rectified = rho > 5.0
        # Evaluated on both branches (a jitted step has no Python `if`): keep the unused one finite.
        safe_rho = ops.maximum(rho, 5.0)
        rectification = ops.sqrt(
            (safe_rho - 4.0)
            * (safe_rho - 2.0)
            * rho_infinity
            / ((rho_infinity - 4.0) * (rho_infinity - 2.0) * safe_rho)
        )
        adaptive = rectification * ops.sqrt(1.0 - beta_2_power) / ops.add(ops.sqrt(v), ops.cast(self.epsilon, dtype))
        scale = ops.where(rectified, adaptive, ops.ones_like(adaptive))
        self.assign_sub(variable, ops.multiply(ops.multiply(m, scale), lr / (1.0 - beta_1_power)))

    def get_config(self):
        config = super().get_config()
        config.update(beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon)
        return config
