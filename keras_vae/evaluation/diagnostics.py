"""Is the training healthy, and if not, why? A training history read check by check, and the diagnosis.

`diagnose` reads a training history the way a VAE diagnostics guide's checklist
does, line by line, each check testing what its name says; given the latent
code's `assessment` (`keras_vae.evaluation.assessment`), its verdict concludes.
"""

import csv
import dataclasses

import numpy as np

from keras_vae.evaluation.variance_phases import variance_phases

# Mean KL per latent dimension, in nats, that reads as healthy: near 0 the code
# is unused (posterior collapse); far above, the posterior is far from the prior.
# A VAE diagnostics guide calls 0.1-1.0 healthy and flags above 2.0; between 1 and 2
# it says nothing, and keras-vae does not flag what the guide does not.
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
    """One line of the checklist: `name` says what is tested, `problem` what a failure means."""

    name: str
    passed: bool
    detail: str
    problem: str = ""
    # Whether a failure vetoes a healthy verdict (the KL heuristics only inform it when the code was assessed).
    decisive: bool = True

    def __post_init__(self):
        self.passed = bool(self.passed)


@dataclasses.dataclass
class Diagnosis:
    """The checklist's verdicts and, when measured, the latent code's assessment; `str()` gives the report."""

    checks: list
    assessment: object = None
    phases: list = dataclasses.field(default_factory=list)

    @property
    def healthy(self):
        if self.assessment is None:
            return all(check.passed for check in self.checks)
        return self.assessment.healthy and all(check.passed for check in self.checks if check.decisive)

    @property
    def verdict(self):
        """The assessment's verdict, or `healthy` / `needs attention` from the checklist alone.

        A healthy code whose decisive curve checks fail is not called healthy: `healthy` and `verdict` agree.
        """
        if self.assessment is None:
            return "healthy" if self.healthy else "needs attention"
        if self.assessment.healthy and not self.healthy:
            return f"{self.assessment.verdict} code, but the training curves need attention"
        return self.assessment.verdict

    def problems(self):
        return [check.problem or f"failed: {check.name}" for check in self.checks if not check.passed]

    def __str__(self):
        lines = ["Diagnosis:", "Training curves (the checklist of a VAE diagnostics guide):"]
        lines += [f"- {'✅' if c.passed else '❌'} {c.name} — {c.detail}" for c in self.checks]
        problems = self.problems()
        if self.phases:
            spans = "; ".join(f"{name}, epochs {first:g}–{last:g}" for name, first, last in self.phases)
            lines.append(f"σ² phases (median over the active dimensions): {spans}")
        if self.assessment is not None:
            lines += ["", "Latent code:", str(self.assessment), ""]
            verdict = self.verdict
            ending = (
                f"; the curves show: {'; '.join(problems)}" if problems else "; the training curves pass every check"
            )
            lines.append(f"Conclusion: {verdict}{ending}.")
            return "\n".join(lines)
        if problems:
            lines.append(f"Conclusion: needs attention ({'; '.join(problems)}).")
            if any(not c.passed and ("collapse" in c.name or "KL" in c.name) for c in self.checks):
                lines.append(f"Remedies against collapse: {REMEDIES}.")
        else:
            lines.append("Conclusion: training is healthy; the latent code is in use.")
        return "\n".join(lines)


def kl_rose_then_settled(kl, rise=0.05, settle=0.1):
    """The guide's "KL increasing then stabilizing", tested as said: `(passed, detail, problem)`.

    Increasing: the KL's peak comes after the first epoch and is at least `rise`
    (relative) above it. Stabilizing: the last quarter of the epochs (at least two)
    moves it by under `settle` (relative to its largest value there), and it ends
    at half its peak or more.
    """
    kl = np.asarray(kl, float)
    peak = int(np.argmax(kl))
    rose = peak > 0 and kl[peak] > kl[0] * (1 + rise) + 1e-12
    tail = kl[-max(2, len(kl) // 4) :]
    change = abs(tail[-1] - tail[0]) / max(abs(tail).max(), 1e-8)
    settled = change < settle and kl[-1] >= 0.5 * kl[peak]
    shape = f"{kl[0]:.4g} → peak {kl[peak]:.4g} at epoch {peak + 1} → {kl[-1]:.4g}"
    detail = f"{shape}; last {len(tail)} epochs moved {100 * change:.0f}%"
    if not rose:
        falling = "fell throughout" if np.all(np.diff(kl) <= 0) else "never rose above its first epoch"
        return False, f"{detail}: it {falling}", f"the KL {falling} ({kl[0]:.4g} → {kl[-1]:.4g})"
    if not settled:
        return False, f"{detail}: still moving", f"the KL has not settled ({shape})"
    return True, detail, ""


def diagnose(
    history,
    latent_dim,
    latent_curves=None,
    kl_per_dimension=HEALTHY_KL_PER_DIMENSION,
    overfit_tolerance=0.1,
    assessment=None,
):
    """Reads a training history against the checklist of healthy VAE training.

    Args:
        history: dict of per-epoch lists (`History.history`, or `read_history_csv`)
            with at least `loss`, `reconstruction_loss` and `kl_loss`.
        latent_dim: int, to read the KL per latent dimension.
        latent_curves: optional list of per-epoch `latent_statistics` records (as
            written by `callbacks.LatentDynamics`), for active units and I(x; z)
            when there is no `assessment`.
        kl_per_dimension: (low, high) healthy mean KL per latent dimension, nats.
        overfit_tolerance: float, largest healthy relative gap between the last
            train and validation losses.
        assessment: an `assessment.Assessment` of the trained model: its verdict
            decides the collapse check and the conclusion.

    Returns:
        A `Diagnosis`.
    """
    for key in ("loss", "reconstruction_loss", "kl_loss"):
        if len(history.get(key, [])) < 2:
            raise ValueError(f"Need at least two epochs of '{key}' in the history to diagnose a run.")
    loss, reconstruction, kl = (np.asarray(history[k], float) for k in ("loss", "reconstruction_loss", "kl_loss"))
    low, high = kl_per_dimension
    kl_per_dim = kl[-1] / latent_dim
    kl_passed, kl_detail, kl_problem = kl_rose_then_settled(kl)
    informative = assessment is None  # with an assessment, the KL heuristics inform; its verdict decides

    checks = [
        Check(
            "Total loss decreasing",
            loss[-1] < loss[0],
            f"{loss[0]:.4g} → {loss[-1]:.4g}",
            f"the loss did not decrease ({loss[0]:.4g} → {loss[-1]:.4g})",
        ),
        Check(
            "Reconstruction improving",
            reconstruction[-1] < reconstruction[0],
            f"{reconstruction[0]:.4g} → {reconstruction[-1]:.4g}",
            f"the reconstruction did not improve ({reconstruction[0]:.4g} → {reconstruction[-1]:.4g})",
        ),
        Check("KL increasing then stabilizing", kl_passed, kl_detail, kl_problem, decisive=informative),
        Check(
            "KL in the healthy range",
            low <= kl_per_dim <= high,
            f"{kl_per_dim:.3g} nats per latent dimension (healthy {low}–{high})",
            f"the KL is {kl_per_dim:.3g} nats per latent dimension, outside {low}–{high}",
            decisive=informative,
        ),
    ]
    if assessment is not None:
        from keras_vae.evaluation.assessment import COLLAPSED, FORCED

        collapsed = assessment.verdict in (COLLAPSED, FORCED)
        checks.append(
            Check(
                "No posterior collapse",
                not collapsed,
                f"{assessment.verdict}: {assessment.mutual_info_text()}, decoder gap {assessment.decoder_gap:.2f} nats",
                f"posterior collapse ({assessment.verdict})",
            )
        )
    else:
        checks.append(_collapse_check_from_curves(kl, kl_per_dim, low, latent_dim, latent_curves))
    if len(history.get("val_loss", [])):
        gap = abs(history["val_loss"][-1] - loss[-1]) / max(abs(loss[-1]), 1e-8)
        checks.append(
            Check(
                "Train ≈ val",
                gap <= overfit_tolerance,
                f"train {loss[-1]:.4g}, val {history['val_loss'][-1]:.4g} ({100 * gap:.1f}% apart)",
                f"train and validation losses {100 * gap:.1f}% apart",
            )
        )
    phases = []
    if latent_curves and "variance_per_dim" in latent_curves[0]:
        active = None if assessment is None else [j for j, on in enumerate(assessment.active) if on]
        phases = variance_phases(latent_curves, active or None)
    return Diagnosis(checks, assessment, phases)


def _collapse_check_from_curves(kl, kl_per_dim, low, latent_dim, latent_curves):
    """The collapse check from the history and the `LatentDynamics` records, when the model was not assessed."""
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
    return Check(
        "No posterior collapse",
        not collapse_flags,
        ("collapsed: " + ", ".join(collapse_flags)) if collapse_flags else evidence,
        "posterior collapse (" + ", ".join(collapse_flags) + ")",
    )
