"""Backend-independent parts of the VAE training loop.

The per-backend train steps (`keras_vae/backend/`) only compute and apply
gradients; the names of the parts and metrics, He et al.'s inner loop with its
convergence test, and the batches it draws live here, written once.
"""

import math

import numpy as np
from keras import ops

from keras_vae.data import numpy_batches

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
ACTIVE_UNITS = "active_units"
MUTUAL_INFO = "mutual_info"  # on a probe set (LatentDynamics)
VAL_MUTUAL_INFO = "val_mutual_info"  # on validation data (the aggressive-training switch)


def random_batches(data, batch_size):
    """An endless stream of shuffled minibatches of `data` (the inner encoder loop, the range test)."""
    while True:
        empty = True
        for x in numpy_batches(data, batch_size, shuffle=True):
            empty = False
            yield x
        if empty:
            raise ValueError(
                "Random minibatches are drawn from the training data again and again, "
                "but a pass over it yielded none (a one-shot generator?). Pass arrays, "
                "a tf.data.Dataset or a PyDataset."
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
