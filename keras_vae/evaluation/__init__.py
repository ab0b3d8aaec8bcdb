"""How good is a trained VAE, and is its code used? Estimators, the diagnosis, downstream probes."""

from keras_vae.evaluation import diagnostics, downstream, metrics, report
from keras_vae.evaluation.report import evaluate

__all__ = ["diagnostics", "downstream", "evaluate", "metrics", "report"]
