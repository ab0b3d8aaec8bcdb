"""What `keras-vae train --tensorboard/--mlflow` logs, and where: TensorBoard event files and an MLflow run.

`runs.train` adds the callbacks; once the run is finished, `Tracking.finish` sends its files to MLflow.
"""

import contextlib
import glob
import os

from keras_vae.app import runs
from keras_vae.callbacks import tracking

# In the run directory when --tensorboard gives no directory.
TENSORBOARD = "tensorboard"
# What the MLflow run receives of a finished run directory: {artifact folder: glob patterns}.
ARTIFACTS = {
    None: ["*.png", runs.CONFIG, runs.SUMMARY, runs.HISTORY, runs.DIAGNOSIS],
    runs.DIAGNOSTICS: [os.path.join(runs.DIAGNOSTICS, "*.png"), os.path.join(runs.DIAGNOSTICS, "*.json")],
    "model": [runs.MODEL, runs.VOCABULARY],
}


def check(mlflow):
    """Fails before anything is written when `--mlflow` is asked for and MLflow is missing."""
    if mlflow is not None:
        try:
            tracking.check_mlflow_installed()
        except ImportError as error:
            raise runs.RunError(str(error)) from None


class Tracking:
    """The tracking of one `keras-vae train` session.

    Args:
        config: the run's `TrainConfig` (MLflow's parameters).
        run_dir: the run directory.
        tensorboard: None (off), "" (the run's `tensorboard/`) or a directory.
        mlflow: None (off), "" (the file store `./mlruns`) or a tracking URI or directory.
    """

    def __init__(self, config, run_dir, tensorboard=None, mlflow=None):
        self.run_dir = run_dir
        self.tensorboard_dir = None if tensorboard is None else tensorboard or os.path.join(run_dir, TENSORBOARD)
        self.mlflow = None
        if mlflow is not None:
            params = {**config.to_dict(), "run_directory": os.path.abspath(run_dir)}
            self.mlflow = tracking.MLflowLogger(mlflow or None, run_name=os.path.basename(run_dir), params=params)

    @property
    def train_arguments(self):
        """`runs.train`'s keyword arguments for this tracking."""
        return {"tensorboard_dir": self.tensorboard_dir, "tracking": [self.mlflow] if self.mlflow is not None else []}

    def finish(self, summary):
        """Sends the test numbers and the run directory's figures, config, history and model to MLflow."""
        if self.mlflow is None:
            return
        self.mlflow.log_metrics(summary.get("test", {}), step=summary.get("epochs", 0), prefix="test_")
        for folder, patterns in ARTIFACTS.items():
            paths = sorted({path for pattern in patterns for path in glob.glob(os.path.join(self.run_dir, pattern))})
            self.mlflow.log_artifacts(paths, folder)
        self.mlflow.end()


@contextlib.contextmanager
def tracked(config, run_dir, tensorboard=None, mlflow=None):
    """A `Tracking` whose MLflow run is marked failed if the block raises."""
    session = Tracking(config, run_dir, tensorboard, mlflow)
    try:
        yield session
    except BaseException:
        if session.mlflow is not None:
            session.mlflow.end(failed=True)
        raise
