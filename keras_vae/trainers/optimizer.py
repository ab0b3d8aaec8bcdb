"""One optimizer object that holds an optimizer per part of a model (encoder, decoder, discriminator, ...).

Aggressive training (He et al., 2019) updates the encoder alone, then the decoder
alone, and a VAE-GAN (Larsen et al., 2016) steps its encoder, decoder and
discriminator on three losses, so each part needs its own optimizer state:
masking gradients of a single Adam would still move the masked weights through
its moment estimates. Keras trains and saves `model.optimizer`, so this wrapper
puts them all there: their variables travel in the JAX train state, and a
`.keras` file restores each one's state.
"""

import keras

from keras_vae import names


def _copy(optimizer):
    """A fresh optimizer with the same configuration (its own state)."""
    optimizer = keras.optimizers.get(optimizer)
    return type(optimizer).from_config(optimizer.get_config())


@keras.saving.register_keras_serializable(package="keras_vae")
class MultiPartOptimizer(keras.optimizers.Optimizer):
    """Routes each gradient to the optimizer of the model part that owns its variable.

    The model that owns it sets `part_of(variable) -> part name` (its
    `compile` does). Setting `learning_rate` sets it on every part's optimizer,
    so Keras's learning-rate callbacks work unchanged; `iterations` is the
    `counting_part`'s, which takes one step per training iteration. Part `p`'s
    optimizer is the attribute `p_optimizer` (the name its state has in a
    `.keras` file).

    Why not `keras.optimizers.MultiOptimizer` (measured on Keras 3.15.1)? It
    restores its optimizers' state from a `.keras` file as this class does
    (same optimizer variables after loading, same weights after training on, on
    TensorFlow and JAX), but a multi-part model's steps need what it lacks, and
    a subclass would override nearly all of it:

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
        optimizers: dict, part name → optimizer or name, in the order the
            parts' optimizer variables are laid out.
        counting_part: the part whose `iterations` this optimizer reports.
            Defaults to the last part.
    """

    def __init__(self, optimizers, counting_part=None, name="multi_part_optimizer"):
        super().__init__(learning_rate=0.0, name=name)
        if not optimizers:
            raise ValueError("MultiPartOptimizer needs at least one part: pass {'encoder': ..., ...}.")
        self.part_names = tuple(optimizers)
        for part, optimizer in optimizers.items():
            setattr(self, f"{part}_optimizer", keras.optimizers.get(optimizer))
        self.counting_part = counting_part or self.part_names[-1]
        if self.counting_part not in self.part_names:
            raise ValueError(f"`counting_part` must be one of {self.part_names}; got {self.counting_part!r}.")
        self.part_of = None

    @property
    def part_optimizers(self):
        """`{part: optimizer}`, in the parts' order."""
        return {part: getattr(self, f"{part}_optimizer") for part in self.part_names}

    def _split(self, var_list):
        if self.part_of is None:
            raise ValueError(
                f"{type(self).__name__} does not know which part each variable belongs to: "
                "compile the model with its own compile() (VAE.compile, VAEGAN.compile)."
            )
        split = {part: [] for part in self.part_names}
        for variable in var_list:
            part = self.part_of(variable)
            if part not in split:
                raise ValueError(f"A variable of part {part!r} has no optimizer here: the parts are {self.part_names}.")
            split[part].append(variable)
        return split

    def build(self, var_list):
        if self.built:
            return
        for part, variables in self._split(var_list).items():
            self.part_optimizers[part].build(variables)
        super().build(var_list)

    # `_variables` and `_trainable_variables` are the base Optimizer's own
    # lists (its variables; what it was built on), as Keras's MultiOptimizer uses them.
    @property
    def variables(self):
        return self._variables + [v for optimizer in self.part_optimizers.values() for v in optimizer.variables]

    def parts(self):
        """`{part: (optimizer, slice)}`: each part's optimizer and where its variables sit in
        `variables` (for stateless JAX updates)."""
        slices, start = {}, len(self._variables)
        for part, optimizer in self.part_optimizers.items():
            end = start + len(optimizer.variables)
            slices[part] = (optimizer, slice(start, end))
            start = end
        return slices

    def apply(self, grads, trainable_variables=None):
        if trainable_variables is None:
            trainable_variables = self._trainable_variables
        if not self.built:
            raise ValueError(
                f"{type(self).__name__} must be built on all of the model's trainable "
                "variables before a step updates only some of them: call "
                "optimizer.build(model.trainable_variables) first."
            )
        gradient_of = {id(variable): grad for grad, variable in zip(grads, trainable_variables, strict=True)}
        for part, variables in self._split(trainable_variables).items():
            if variables:
                self.part_optimizers[part].apply([gradient_of[id(v)] for v in variables], variables)

    @property
    def iterations(self):
        return self.part_optimizers[self.counting_part].iterations

    def finalize_variable_values(self, var_list):
        for part, variables in self._split(var_list).items():
            self.part_optimizers[part].finalize_variable_values(variables)

    # The parts' optimizers save and load their own variables (Keras visits them
    # as attributes), so this object stores only its own (unused) base variables.
    def save_own_variables(self, store):
        for i, variable in enumerate(self._variables):
            store[str(i)] = variable.numpy()

    def load_own_variables(self, store):
        for i, variable in enumerate(self._variables):
            variable.assign(store[str(i)])

    @property
    def learning_rate(self):
        return self.part_optimizers[self.counting_part].learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        for optimizer in self.part_optimizers.values():
            optimizer.learning_rate = value

    def get_config(self):
        return {
            "name": self.name,
            "optimizers": {part: keras.optimizers.serialize(o) for part, o in self.part_optimizers.items()},
            "counting_part": self.counting_part,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["optimizers"] = {
            part: keras.optimizers.deserialize(o, custom_objects=custom_objects)
            for part, o in config["optimizers"].items()
        }
        return cls(**config)


@keras.saving.register_keras_serializable(package="keras_vae")
class EncoderDecoderOptimizer(MultiPartOptimizer):
    """A VAE's `MultiPartOptimizer`: the encoder's and the decoder's optimizers.

    The model that owns it sets `is_encoder_variable` (done by `VAE.compile`);
    every trainable variable for which it is false (decoder, learned likelihood
    parameters) belongs to the decoder's optimizer. `iterations` counts
    training iterations: the decoder's optimizer takes one step per iteration
    in every mode, the encoder's takes more in aggressive mode.

    Args:
        encoder_optimizer: optimizer or name for the inference network φ;
            `None` for a copy of the decoder's (same configuration, own state).
        decoder_optimizer: optimizer or name for the generative model θ.
            Defaults to `"adam"`.
    """

    def __init__(self, encoder_optimizer=None, decoder_optimizer=names.ADAM, name="encoder_decoder_optimizer"):
        decoder_optimizer = keras.optimizers.get(decoder_optimizer)
        if encoder_optimizer is None or encoder_optimizer is decoder_optimizer:
            encoder_optimizer = _copy(decoder_optimizer)
        super().__init__(
            {names.ENCODER: encoder_optimizer, names.DECODER: decoder_optimizer},
            counting_part=names.DECODER,
            name=name,
        )
        self.is_encoder_variable = None

    @property
    def is_encoder_variable(self):
        return self._is_encoder_variable

    @is_encoder_variable.setter
    def is_encoder_variable(self, function):
        self._is_encoder_variable = function
        self.part_of = None if function is None else lambda v: names.ENCODER if function(v) else names.DECODER

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
