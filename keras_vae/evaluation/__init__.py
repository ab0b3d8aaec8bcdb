"""How good is a trained VAE, and is its code used? Estimators, the diagnosis, downstream probes,
posterior predictive checks."""

from keras_vae.evaluation import diagnostics, downstream, metrics, predictive, report
from keras_vae.evaluation.report import evaluate

__all__ = ["diagnostics", "downstream", "evaluate", "metrics", "predictive", "report"]
