"""Per-backend gradient bookkeeping of the VAE train steps, chosen once, at import.

Each module defines `VAETrainer`, a mixin with the same methods, the way Keras
splits its own trainers (`keras/src/backend/{tensorflow,jax,torch}/trainer.py`),
and `compile_inference(model, fn)`, which compiles a `keras.ops` function of a
model for repeated evaluation without gradients. Everything else (loss, β
schedule, free bits, the inner loop, the estimators) is in `keras.ops`.
"""

import keras

_BACKEND = keras.backend.backend()
if _BACKEND == "tensorflow":
    from keras_vae.backend.tensorflow import VAETrainer, compile_inference
elif _BACKEND == "jax":
    from keras_vae.backend.jax import VAETrainer, compile_inference
elif _BACKEND == "torch":
    from keras_vae.backend.torch import VAETrainer, compile_inference
else:
    raise ImportError(
        f"keras-vae trains on the tensorflow, jax and torch backends, not "
        f"{_BACKEND!r}: set KERAS_BACKEND to one of them."
    )

__all__ = ["VAETrainer", "compile_inference"]
