"""Is the model healthy, and if not, why? Latent statistics over data, and a diagnosis.

`latent_statistics` measures the encoder on a data set (KL and σ² per latent
dimension, active units, I(x; z)); the callbacks, the aggressive-training switch
and `diagnose` all use it. `diagnose` reads a training history the way the
checklist of "Interpreting loss curves and diagnostics" does, line by line.
"""

import csv
import dataclasses

import numpy as np

# Mean KL per latent dimension, in nats, that reads as healthy: near 0 the code
# is unused (posterior collapse); far above, the posterior is far from the prior.
HEALTHY_KL_PER_DIMENSION = (0.1, 2.0)

REMEDIES = (
    "lower β (compile(beta=0.5)); KL annealing (beta=keras_vae.schedules.LinearWarmup(steps)); "
    "cyclical annealing (beta=keras_vae.schedules.Cyclical(total_steps)); free bits "
    "(compile(free_bits=0.1)); aggressive encoder training (compile(aggressive=True)); a weaker decoder"
)


def read_history_csv(path):
    """A history dict (metric → list of per-epoch values) from Keras's CSVLogger file."""
    with open(path, newline="") as file:
        rows = list(csv.DictReader(file))

    def number(text):  # CSVLogger writes "NA" where an epoch has no value
        return float(text) if text not in ("", "NA") else float("nan")

    return {key: [number(row[key]) for row in rows] for key in (rows[0] if rows else {})}


@dataclasses.dataclass
class Check:
    name: str
    passed: bool
    detail: str


@dataclasses.dataclass
class Diagnosis:
    """The checklist's verdicts; `str()` gives the printed report."""

    checks: list

    @property
    def healthy(self):
        return all(check.passed for check in self.checks)

    def __str__(self):
        lines = ["Diagnosis:"]
        lines += [f"- {'✅' if c.passed else '❌'} {c.name} — {c.detail}" for c in self.checks]
        failed = [c.name for c in self.checks if not c.passed]
        if failed:
            lines.append(f"Conclusion: needs attention ({'; '.join(failed)}).")
            if any("collapse" in name or "KL" in name for name in failed):
                lines.append(f"Remedies against collapse: {REMEDIES}.")
        else:
            lines.append("Conclusion: training is healthy; the latent code is in use.")
        return "\n".join(lines)


def diagnose(history, latent_dim, latent_curves=None, kl_per_dimension=HEALTHY_KL_PER_DIMENSION, overfit_tolerance=0.1):
    """Reads a training history against the checklist of healthy VAE training.

    Args:
        history: dict of per-epoch lists (`History.history`, or `read_history_csv`)
            with at least `loss`, `reconstruction_loss` and `kl_loss`.
        latent_dim: int, to read the KL per latent dimension.
        latent_curves: optional list of per-epoch `latent_statistics` records (as
            written by `callbacks.LatentDynamics`), for active units and I(x; z).
        kl_per_dimension: (low, high) healthy mean KL per latent dimension, nats.
        overfit_tolerance: float, largest healthy relative gap between the last
            train and validation losses.

    Returns:
        A `Diagnosis`.
    """
    for key in ("loss", "reconstruction_loss", "kl_loss"):
        if len(history.get(key, [])) < 2:
            raise ValueError(f"Need at least two epochs of '{key}' in the history to diagnose a run.")
    loss, reconstruction, kl = (np.asarray(history[k], float) for k in ("loss", "reconstruction_loss", "kl_loss"))
    low, high = kl_per_dimension
    kl_per_dim = kl[-1] / latent_dim
    tail = kl[-max(2, len(kl) // 4) :]
    kl_change = abs(tail[-1] - tail[0]) / max(abs(tail).max(), 1e-8)

    checks = [
        Check("Total loss decreasing", loss[-1] < loss[0], f"{loss[0]:.4g} → {loss[-1]:.4g}"),
        Check(
            "Reconstruction improving",
            reconstruction[-1] < reconstruction[0],
            f"{reconstruction[0]:.4g} → {reconstruction[-1]:.4g}",
        ),
        Check(
            "KL increasing then stabilizing",
            kl[-1] >= 0.5 * kl.max() and kl_change < 0.1,
            f"{kl[0]:.4g} → peak {kl.max():.4g} → {kl[-1]:.4g}, last {len(tail)} epochs moved {100 * kl_change:.0f}%",
        ),
        Check(
            "KL in the healthy range",
            low <= kl_per_dim <= high,
            f"{kl_per_dim:.3g} nats per latent dimension (healthy {low}–{high})",
        ),
    ]
    collapse_flags = [f"KL {kl_per_dim:.3g} nats per latent dimension"] if kl_per_dim < low else []
    if latent_curves:
        last = latent_curves[-1]
        if last["active_units"] == 0:
            collapse_flags.append("no active units")
        if last["mutual_info"] < 0.1:
            collapse_flags.append(f"I(x; z) {last['mutual_info']:.3g} nats")
        evidence = f"{last['active_units']}/{latent_dim} active units, I(x; z) {last['mutual_info']:.3g} nats"
    else:
        evidence = f"KL {kl[-1]:.3g} nats"
    checks.append(
        Check(
            "No posterior collapse",
            not collapse_flags,
            ("collapsed: " + ", ".join(collapse_flags)) if collapse_flags else evidence,
        )
    )
    if len(history.get("val_loss", [])):
        gap = abs(history["val_loss"][-1] - loss[-1]) / max(abs(loss[-1]), 1e-8)
        checks.append(
            Check(
                "Train ≈ val",
                gap <= overfit_tolerance,
                f"train {loss[-1]:.4g}, val {history['val_loss'][-1]:.4g} ({100 * gap:.1f}% apart)",
            )
        )
    return Diagnosis(checks)
