"""Keras callbacks that watch a VAE train: latent dynamics, plots, collapse, logs.

They read the model at epoch ends (or every N steps), after Keras has synced
the train state, so they work under jit on TensorFlow, JAX and PyTorch. Files
are written atomically into `output_dir`. Keras's own `CSVLogger`,
`TensorBoard` and `ProgbarLogger` do the rest: the summary numbers these
callbacks add to the epoch logs (`active_units`, `mutual_info`) reach them when
these callbacks come before them in the list.
"""

from keras_vae.callbacks.checkpoints import RunCheckpoint, checkpoint_paths, write_history_csv
from keras_vae.callbacks.collapse import CollapseMonitor, PosteriorCollapseWarning
from keras_vae.callbacks.figures import ImageGrids, LatentSpacePlot
from keras_vae.callbacks.latent_dynamics import LatentDynamics
from keras_vae.callbacks.logging import EpochLogger, NonFiniteLossError, StopOnNonFiniteLoss
from keras_vae.callbacks.tracking import MLflowLogger
from keras_vae.callbacks.variance_forces import LogVarianceForces

__all__ = [
    "CollapseMonitor",
    "EpochLogger",
    "ImageGrids",
    "LatentDynamics",
    "LatentSpacePlot",
    "LogVarianceForces",
    "MLflowLogger",
    "NonFiniteLossError",
    "PosteriorCollapseWarning",
    "RunCheckpoint",
    "StopOnNonFiniteLoss",
    "checkpoint_paths",
    "write_history_csv",
]
