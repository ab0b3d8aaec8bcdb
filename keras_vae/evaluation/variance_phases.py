"""The phases of the encoder's σ² over training, read off the per-dimension σ² curves.

A blog post on the dynamic balance in VAEs (Hu, 2025) describes three: σ² kept
small while the decoder learns, σ² expanding as the decoder improves, and equilibrium.
"""

import numpy as np

SMALL = "σ² small while the decoder learns"
EXPANDING = "σ² expanding"
EQUILIBRIUM = "equilibrium"

# Equilibrium: the median log σ² moves by under this much per epoch (about 10% in σ²).
SETTLED_LOG_CHANGE = 0.1


def variance_phases(records, dimensions=None, settled=SETTLED_LOG_CHANGE):
    """The phases of the median σ² over `dimensions` (default: all), with their epoch spans.

    Args:
        records: `LatentDynamics` records (dicts with `epoch` and `variance_per_dim`), in order.
        dimensions: indices of the dimensions to read (e.g. the active ones); None for all.
        settled: float, largest change of the median log σ² per epoch that counts as equilibrium.

    Returns:
        A list of `(phase, first_epoch, last_epoch)`, in order; phases that did not
        happen are left out (a run whose σ² only falls has no expansion).
    """
    if len(records) < 2:
        return []
    epochs = np.asarray([r["epoch"] for r in records], float)
    variance = np.asarray([r["variance_per_dim"] for r in records], float)
    if dimensions is not None and len(dimensions):
        variance = variance[:, list(dimensions)]
    curve = np.median(np.log(np.maximum(variance, 1e-12)), axis=1)
    lowest = int(np.argmin(curve))
    slope = np.diff(curve) / np.maximum(np.diff(epochs), 1e-9)  # change per epoch after each record
    phases = [(SMALL, epochs[0], epochs[lowest])] if lowest > 0 else []
    # Expanding: from the lowest point for as long as σ² keeps growing faster than `settled` per epoch.
    end = lowest
    while end < len(slope) and slope[end] > settled:
        end += 1
    if end > lowest:
        phases.append((EXPANDING, epochs[lowest], epochs[end]))
    if end < len(curve) - 1 and np.all(np.abs(slope[end:]) <= settled):
        phases.append((EQUILIBRIUM, epochs[end], epochs[-1]))
    return [(name, float(first), float(last)) for name, first, last in phases]
