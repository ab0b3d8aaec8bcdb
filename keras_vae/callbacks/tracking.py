"""`MLflowLogger`: a training run in MLflow (parameters, per-epoch metrics, files as artifacts), offline by default.

TensorBoard needs no class of its own: Keras's `TensorBoard` callback, plus the
`tensorboard_dir` of `LatentDynamics`, `LatentSpacePlot` and `ImageGrids`.
"""

import importlib.util
import math
import os
import pathlib
import time

import keras

# MLflow's default place: ./mlruns, its file store.
DEFAULT_TRACKING_DIR = "mlruns"
DEFAULT_EXPERIMENT = "keras-vae"


def check_mlflow_installed():
    """Raises `ImportError` in one line when MLflow is missing."""
    if importlib.util.find_spec("mlflow") is None:
        raise ImportError("MLflow tracking needs mlflow: pip install 'keras-vae[mlflow]' (mlflow-skinny is enough).")


def tracking_uri(uri=None):
    """`uri`, or the file store `./mlruns` as a `file:` URI; a plain path becomes a `file:` URI too."""
    uri = uri or DEFAULT_TRACKING_DIR
    if "://" in uri or uri.startswith("file:"):
        return uri
    return pathlib.Path(uri).absolute().as_uri()


class MLflowLogger(keras.callbacks.Callback):
    """Logs a training run to MLflow: its parameters, every epoch's logs as metrics, and files as artifacts.

    The run starts at `on_train_begin` and stays open for `log_artifacts` and
    `log_metrics` after `fit` (the final model and figures are written then);
    `end()` closes it. It talks to the store through `MlflowClient`, so it
    neither needs nor changes MLflow's active run.

    MLflow 3 keeps its file store (a local directory such as `./mlruns`) in
    maintenance mode and refuses it unless `MLFLOW_ALLOW_FILE_STORE=true`;
    for a local directory this callback sets that variable. A database store
    (`sqlite:///mlflow.db`) needs the full `mlflow` package.

    Args:
        uri: str or None, the tracking URI or a local directory. Defaults to `./mlruns`.
        experiment: str, the experiment's name (created if missing). Defaults to `"keras-vae"`.
        run_name: str or None.
        params: dict of the run's parameters (values are logged as strings).
    """

    def __init__(self, uri=None, experiment=DEFAULT_EXPERIMENT, run_name=None, params=None):
        super().__init__()
        check_mlflow_installed()
        self.uri = tracking_uri(uri)
        self.experiment = experiment
        self.run_name = run_name
        self.run_params = dict(params or {})
        self.run_id = None
        self._client = None

    @property
    def client(self):
        if self._client is None:
            from mlflow.tracking import MlflowClient

            if self.uri.startswith("file:"):
                os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            self._client = MlflowClient(self.uri)
        return self._client

    def start(self):
        """Creates the run and logs the parameters (once; `on_train_begin` calls it)."""
        if self.run_id is not None:
            return self.run_id
        from mlflow.entities import Param

        found = self.client.get_experiment_by_name(self.experiment)
        experiment_id = found.experiment_id if found else self.client.create_experiment(self.experiment)
        self.run_id = self.client.create_run(experiment_id, run_name=self.run_name).info.run_id
        params = [Param(key, str(value)) for key, value in sorted(self.run_params.items())]
        for start in range(0, len(params), 100):  # MLflow takes at most 100 parameters per batch
            self.client.log_batch(self.run_id, params=params[start : start + 100])
        return self.run_id

    def on_train_begin(self, logs=None):
        self.start()

    def on_epoch_end(self, epoch, logs=None):
        self.log_metrics(logs or {}, step=epoch + 1)

    def log_metrics(self, values, step, prefix=""):
        """Logs the finite numbers among `values` at `step`."""
        from mlflow.entities import Metric

        timestamp = int(time.time() * 1000)
        metrics = []
        for key, value in values.items():
            try:
                value = float(keras.ops.convert_to_numpy(value))
            except (TypeError, ValueError):
                continue  # a non-scalar entry of the logs
            if math.isfinite(value):
                metrics.append(Metric(prefix + key, value, timestamp, step))
        if metrics:
            self.client.log_batch(self.start(), metrics=metrics)

    def log_artifacts(self, paths, artifact_path=None):
        """Uploads the existing files among `paths` (under `artifact_path` in the run's artifacts)."""
        for path in paths:
            if os.path.isfile(path):
                self.client.log_artifact(self.start(), os.fspath(path), artifact_path)

    def end(self, failed=False):
        """Marks the run finished (or failed)."""
        if self.run_id is not None:
            self.client.set_terminated(self.run_id, "FAILED" if failed else "FINISHED")
