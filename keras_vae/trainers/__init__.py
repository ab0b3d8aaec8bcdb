"""The VAE's training: one loop (`base.BaseVAETrainer`), the backend's gradient steps chosen once, at import.

Each of `tensorflow.py`, `jax.py` and `torch.py` defines `VAETrainer`, a
`BaseVAETrainer` with the same three gradient-bookkeeping methods, the way Keras
splits its own trainers (`keras/src/backend/{tensorflow,jax,torch}/trainer.py`);
`compile_inference(model, fn)`, which compiles a `keras.ops` function of a model
for repeated evaluation without gradients (`kept_inference` keeps one per model
and key); and `scale_loss_for_replicas(loss)`: a device's loss over the number
of devices where the engine sums their gradients (tf.distribute), else unchanged. Everything else (loss, β schedule,
free bits, the inner loop, the estimators) is in `keras.ops`.
"""

import keras

from keras_vae.trainers.base import BaseVAETrainer

_BACKEND = keras.backend.backend()
if _BACKEND == "tensorflow":
    from keras_vae.trainers.tensorflow import VAETrainer, compile_inference, scale_loss_for_replicas
elif _BACKEND == "jax":
    from keras_vae.trainers.jax import VAETrainer, compile_inference, scale_loss_for_replicas
elif _BACKEND == "torch":
    from keras_vae.trainers.torch import VAETrainer, compile_inference, scale_loss_for_replicas
else:
    raise ImportError(
        f"keras-vae trains on the tensorflow, jax and torch backends, not "
        f"{_BACKEND!r}: set KERAS_BACKEND to one of them."
    )


def kept_inference(model, key, make):
    """`compile_inference(model, make())`, compiled once per `model` and `key` and kept on the model.

    For functions called again and again (every epoch's diagnostics): each new
    compiled function traces (TensorFlow) or compiles (JAX) anew. The function
    reads the live weights, so it never goes stale; `key` names what `make`
    builds, with every value its closure depends on.
    """
    functions = model.__dict__.setdefault("_kept_inference_functions", {})
    if key not in functions:
        functions[key] = compile_inference(model, make())
    return functions[key]


__all__ = ["BaseVAETrainer", "VAETrainer", "compile_inference", "kept_inference", "scale_loss_for_replicas"]
