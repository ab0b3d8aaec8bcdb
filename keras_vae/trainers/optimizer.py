"""One optimizer object that holds the encoder's and the decoder's optimizers.

Aggressive training (He et al., 2019) updates the encoder alone, then the decoder
alone, so each needs its own optimizer state: masking gradients of a single Adam
would still move the masked weights through its moment estimates. Keras trains
and saves `model.optimizer`, so this wrapper puts both there: their variables
travel in the JAX train state, and a `.keras` file restores each one's state.
"""

import keras

from keras_vae import names


def _copy(optimizer):
    """A fresh optimizer with the same configuration (its own state)."""
    optimizer = keras.optimizers.get(optimizer)
    return type(optimizer).from_config(optimizer.get_config())


@keras.saving.register_keras_serializable(package="keras_vae")
class EncoderDecoderOptimizer(keras.optimizers.Optimizer):
    """Routes each gradient to the encoder's or the decoder's optimizer.

    The model that owns it sets `is_encoder_variable` (done by `VAE.compile`);
    every trainable variable for which it is false (decoder, learned likelihood
    parameters) belongs to the decoder's optimizer. Setting `learning_rate` sets
    it on both, so Keras's learning-rate callbacks work unchanged.

    `iterations` counts training iterations: the decoder's optimizer takes one
    step per iteration in every mode, the encoder's takes more in aggressive mode.

    Why not `keras.optimizers.MultiOptimizer` (measured on Keras 3.15.1)? It
    restores its optimizers' state from a `.keras` file as this class does
    (same optimizer variables after loading, same weights after training on, on
    TensorFlow and JAX), but a VAE's steps need what it lacks, and a subclass
    would override nearly all of it:

    - A step on one part: its `apply` raises unless it gets a gradient for
      every variable it was built on.
    - One learning rate: it raises on `learning_rate`. And since it has
      `optimizers`, `keras.callbacks.LearningRateScheduler` treats it as several:
      it logs `learning_rate_<name>` per optimizer instead of `learning_rate`,
      and sets nothing before the optimizer is built (the first epoch on
      TensorFlow, which builds it at the first trace).
    - Routing by network: a variable's path names its layer, not its network
      (`dense/kernel`), so an `OptimizerMap` of path patterns cannot tell the
      encoder from the decoder, and a routing function does not serialize.
    - Iterations: it counts every `apply`, encoder-only steps included.
    - The file: it saves its optimizers' variables twice (as theirs and again
      as its own: 50 entries instead of 26 for a small VAE with two Adams), and
      warns that it skips its own on reading a file that this class wrote.
    - `parts()`: each optimizer with its slice of `variables`, for the JAX
      trainer's stateless step on one part.

    Args:
        encoder_optimizer: optimizer or name for the inference network φ;
            `None` for a copy of the decoder's (same configuration, own state).
        decoder_optimizer: optimizer or name for the generative model θ.
            Defaults to `"adam"`.
    """

    def __init__(self, encoder_optimizer=None, decoder_optimizer=names.ADAM, name="encoder_decoder_optimizer"):
        super().__init__(learning_rate=0.0, name=name)
        self.decoder_optimizer = keras.optimizers.get(decoder_optimizer)
        if encoder_optimizer is None or encoder_optimizer is self.decoder_optimizer:
            encoder_optimizer = _copy(self.decoder_optimizer)
        self.encoder_optimizer = keras.optimizers.get(encoder_optimizer)
        self.is_encoder_variable = None

    def build(self, var_list):
        if self.built:
            return
        if self.is_encoder_variable is None:
            raise ValueError(
                "EncoderDecoderOptimizer does not know which variables belong to "
                "the encoder: compile the model with VAE.compile()."
            )
        self.encoder_optimizer.build([v for v in var_list if self.is_encoder_variable(v)])
        self.decoder_optimizer.build([v for v in var_list if not self.is_encoder_variable(v)])
        super().build(var_list)

    # `_variables` and `_trainable_variables` are the base Optimizer's own
    # lists (its variables; what it was built on), as Keras's MultiOptimizer uses them.
    @property
    def variables(self):
        return self._variables + self.encoder_optimizer.variables + self.decoder_optimizer.variables

    def parts(self):
        """`{"encoder": (optimizer, slice), "decoder": ...}`: each sub-optimizer and
        where its variables sit in `variables` (for stateless JAX updates)."""
        start = len(self._variables)
        middle = start + len(self.encoder_optimizer.variables)
        end = middle + len(self.decoder_optimizer.variables)
        return {
            names.ENCODER: (self.encoder_optimizer, slice(start, middle)),
            names.DECODER: (self.decoder_optimizer, slice(middle, end)),
        }

    def apply(self, grads, trainable_variables=None):
        if trainable_variables is None:
            trainable_variables = self._trainable_variables
        if not self.built:
            raise ValueError(
                "EncoderDecoderOptimizer must be built on all of the model's trainable "
                "variables before a step updates only some of them: call "
                "optimizer.build(model.trainable_variables) first."
            )
        routed = {True: ([], []), False: ([], [])}
        for grad, variable in zip(grads, trainable_variables, strict=True):
            gradients, variables = routed[bool(self.is_encoder_variable(variable))]
            gradients.append(grad)
            variables.append(variable)
        for is_encoder, optimizer in ((True, self.encoder_optimizer), (False, self.decoder_optimizer)):
            if routed[is_encoder][1]:
                optimizer.apply(*routed[is_encoder])

    @property
    def iterations(self):
        return self.decoder_optimizer.iterations

    def finalize_variable_values(self, var_list):
        for is_encoder, optimizer in ((True, self.encoder_optimizer), (False, self.decoder_optimizer)):
            optimizer.finalize_variable_values([v for v in var_list if bool(self.is_encoder_variable(v)) == is_encoder])

    # The sub-optimizers save and load their own variables (Keras visits them as
    # attributes), so this object stores only its own (unused) base variables.
    def save_own_variables(self, store):
        for i, variable in enumerate(self._variables):
            store[str(i)] = variable.numpy()

    def load_own_variables(self, store):
        for i, variable in enumerate(self._variables):
            variable.assign(store[str(i)])

    @property
    def learning_rate(self):
        return self.decoder_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        self.encoder_optimizer.learning_rate = value
        self.decoder_optimizer.learning_rate = value

    def get_config(self):
        return {
            "name": self.name,
            "encoder_optimizer": keras.optimizers.serialize(self.encoder_optimizer),
            "decoder_optimizer": keras.optimizers.serialize(self.decoder_optimizer),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for key in ("encoder_optimizer", "decoder_optimizer"):
            config[key] = keras.optimizers.deserialize(config[key], custom_objects=custom_objects)
        return cls(**config)
