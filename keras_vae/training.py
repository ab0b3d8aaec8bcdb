"""Backend-independent parts of the VAE training loop.

The per-backend train steps (`keras_vae/backend/`) only compute and apply
gradients; the choice of which part to update, He et al.'s inner loop with its
convergence test, and the data it draws from live here, written once.
"""

import math
import warnings

import keras
import numpy as np
from keras import ops

# Which trainable variables one gradient step updates.
ENCODER = "encoder"
DECODER = "decoder"
JOINT = "joint"
PARTS = (ENCODER, DECODER, JOINT)

# Names of the logged metrics (history keys; callbacks and the CLI use them).
LOSS = "loss"
RECONSTRUCTION_LOSS = "reconstruction_loss"
KL_LOSS = "kl_loss"
BETA = "beta"
AGGRESSIVE = "aggressive"
ENCODER_STEPS = "encoder_steps"
MUTUAL_INFO = "mutual_info"


def _numpy_batches(data, batch_size, shuffle):
    # Keras's own data adapters accept everything `fit` accepts (arrays,
    # tf.data, PyDataset, torch DataLoader, generators), on every backend.
    from keras.src.trainers.data_adapters import get_data_adapter

    if isinstance(data, tuple):  # (x,) or (x, y) as given to validation_data
        data = data[0]
    with warnings.catch_warnings():
        # A tf.data.Dataset keeps its own order (Keras says so in a warning).
        warnings.simplefilter("ignore", UserWarning)
        adapter = get_data_adapter(data, batch_size=batch_size, shuffle=shuffle)
    for batch in adapter.get_numpy_iterator():
        yield keras.utils.unpack_x_y_sample_weight(batch)[0]


def random_batches(data, batch_size):
    """An endless stream of shuffled minibatches of `data`, for the inner encoder loop."""
    while True:
        empty = True
        for x in _numpy_batches(data, batch_size, shuffle=True):
            empty = False
            yield x
        if empty:
            raise ValueError(
                "Aggressive training draws extra random minibatches from the "
                "training data, but it yielded none on a second pass (a one-shot "
                "generator?). Pass arrays, a tf.data.Dataset or a PyDataset."
            )


def run_inner_encoder_steps(encoder_step, batches, max_steps, check_every):
    """He et al. (2019)'s inner loop: update the encoder until it stops improving.

    Runs `encoder_step(batch)` (which returns the batch loss) on up to
    `max_steps` fresh batches; every `check_every` steps it compares the mean
    loss of the last window with the window before and stops once it went up.

    Returns:
        The number of encoder updates made.
    """
    previous = math.inf
    window = []
    for step in range(1, max_steps + 1):
        window.append(encoder_step(next(batches)))
        if step % check_every == 0:
            current = float(np.mean([ops.convert_to_numpy(loss) for loss in window]))
            if current > previous:
                break
            previous, window = current, []
    return step


def estimate_mutual_information(vae, data, batch_size=128):
    """I(x; z) of `vae` on `data`, averaged over minibatches as He et al. do.

    Uses `keras_vae.metrics.mutual_information`, so the value is bounded by
    log(batch_size): compare estimates made with the same batch size.
    """
    from keras_vae.metrics import mutual_information

    total, count = 0.0, 0
    for x in _numpy_batches(data, batch_size, shuffle=False):
        z_mean, z_log_var = vae.encode(x)
        n = int(ops.shape(z_mean)[0])
        value = mutual_information(z_mean, z_log_var, seed=vae.seed_generator)
        total += float(ops.convert_to_numpy(value)) * n
        count += n
    if not count:
        raise ValueError("Cannot estimate mutual information: the data yielded no batch.")
    return total / count
