"""How good is a trained VAE, and is its code used? Estimators, the diagnosis, downstream probes."""
