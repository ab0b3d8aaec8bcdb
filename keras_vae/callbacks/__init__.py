"""Keras callbacks that watch a VAE train: latent dynamics, plots, collapse, logs; and those of
He et al. (2019)'s training recipe: the learning rate decayed with the best weights reloaded
(`DecayOnPlateau`), early stopping that survives a resumed run, the best model kept.

They read the model at epoch ends (or every N steps), after Keras has synced
the train state, so they work under jit on TensorFlow, JAX and PyTorch. Files
are written atomically into `output_dir`. Keras's own `CSVLogger`,
`TensorBoard` and `ProgbarLogger` do the rest: the summary numbers these
callbacks add to the epoch logs (`active_units`, `mutual_info`) reach them when
these callbacks come before them in the list.
"""

from keras_vae.callbacks.checkpoints import (
    BestModelCheckpoint,
    RunCheckpoint,
    checkpoint_paths,
    read_best_record,
    write_history_csv,
)
from keras_vae.callbacks.collapse import CollapseMonitor, PosteriorCollapseWarning
from keras_vae.callbacks.figures import ImageGrids, LatentSpacePlot
from keras_vae.callbacks.latent_dynamics import LatentDynamics
from keras_vae.callbacks.logging import EpochLogger, NonFiniteLossError, StopOnNonFiniteLoss
from keras_vae.callbacks.plateau import DecayOnPlateau, ResumedEarlyStopping
from keras_vae.callbacks.tracking import MLflowLogger
from keras_vae.callbacks.variance_forces import LogVarianceForces

__all__ = [
    "BestModelCheckpoint",
    "CollapseMonitor",
    "DecayOnPlateau",
    "EpochLogger",
    "ImageGrids",
    "LatentDynamics",
    "LatentSpacePlot",
    "LogVarianceForces",
    "MLflowLogger",
    "NonFiniteLossError",
    "PosteriorCollapseWarning",
    "ResumedEarlyStopping",
    "RunCheckpoint",
    "StopOnNonFiniteLoss",
    "checkpoint_paths",
    "read_best_record",
    "write_history_csv",
]
