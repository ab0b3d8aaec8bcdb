"""Matplotlib figures of training dynamics, the latent space and images, saved atomically as PNG.

Figures are made with `matplotlib.figure.Figure`, not pyplot: no display, no
global backend switch, nothing left open in a notebook's pyplot state.
"""

import importlib.util

import numpy as np

from keras_vae.files import atomic_path
from keras_vae.names import PROJECTIONS, UMAP


def new_figure(rows, columns, figsize, **kwargs):
    """A matplotlib `Figure` (no pyplot state) and its `rows` × `columns` axes; `save_figure` writes it."""
    # Imported here: `import keras_vae` must not cost matplotlib's import.
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize)
    return figure, figure.subplots(rows, columns, **kwargs)


def save_figure(figure, path):
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=100, bbox_inches="tight")
    return path


def plot_latent_dynamics(records, path, title=None):
    """σ² and KL of every latent dimension over training (one line each), with β and active units."""
    steps = [r["step"] for r in records]
    variance = np.asarray([r["variance_per_dim"] for r in records])
    kl = np.asarray([r["kl_per_dim"] for r in records])
    figure, axes = new_figure(1, 3, figsize=(15, 4))
    axes[0].plot(steps, variance, linewidth=1)
    axes[0].set(yscale="log", xlabel="iteration", ylabel="mean encoder σ²", title="σ² per latent dimension")
    axes[1].plot(steps, kl, linewidth=1)
    axes[1].set(xlabel="iteration", ylabel="KL (nats)", title="KL per latent dimension")
    axes[2].plot(steps, [r["beta"] for r in records], color="black", label="β")
    axes[2].set(xlabel="iteration", ylabel="β", title="β schedule and active units")
    units = axes[2].twinx()
    units.plot(steps, [r["active_units"] for r in records], color="tab:red", linestyle="--", label="active units")
    units.set_ylabel("active units", color="tab:red")
    units.set_ylim(0, variance.shape[1] + 0.5)
    if title:
        figure.suptitle(title)
    return save_figure(figure, path)


def image_grid(images, columns):
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim not in (3, 4):
        raise ValueError(f"Expected images (n, height, width[, channels]); got shape {images.shape}.")
    rows = -(-len(images) // columns)
    padded = np.zeros((rows * columns, *images.shape[1:]), images.dtype)
    padded[: len(images)] = images
    height, width = images.shape[1:3]
    grid = padded.reshape(rows, columns, height, width, -1).transpose(0, 2, 1, 3, 4)
    grid = grid.reshape(rows * height, columns * width, -1)
    return np.clip(grid[..., 0] if grid.shape[-1] == 1 else grid, 0.0, 1.0)


def plot_images(images, path, title=None, columns=8):
    """A grid of images with values in [0, 1]."""
    figure, axis = new_figure(1, 1, figsize=(columns, -(-len(images) // columns)))
    axis.imshow(image_grid(images, columns), cmap="gray", vmin=0, vmax=1)
    axis.axis("off")
    if title:
        axis.set_title(title)
    return save_figure(figure, path)


UMAP_MISSING = 'The UMAP projection needs umap-learn: pip install "keras-vae[umap]" (or use the PCA projection).'


def check_projection(projection):
    """Raises a one-line ImportError (how to install it) if `projection` is "umap" and umap-learn is missing."""
    if projection not in PROJECTIONS:
        raise ValueError(f"`projection` must be one of {PROJECTIONS}; got {projection!r}.")
    # Found, not imported: importing umap-learn compiles with numba for seconds.
    if projection == UMAP and importlib.util.find_spec("umap") is None:
        raise ImportError(UMAP_MISSING)


def project_2d(z, projection="pca", seed=0):
    """Latent codes as 2-D points: themselves if 2-D, else their first two principal components or their
    UMAP embedding (McInnes et al. 2018; the `[umap]` extra, seeded: reproducible but single-threaded)."""
    from keras_vae.evaluation.downstream import pca

    check_projection(projection)
    z = np.asarray(z, float)
    if z.shape[1] <= 2 or len(z) < 2:
        return np.pad(z[:, :2], ((0, 0), (0, 2 - min(2, z.shape[1]))))
    if projection == "umap":
        import umap

        neighbours = max(2, min(15, len(z) - 1))
        return umap.UMAP(n_components=2, n_neighbors=neighbours, random_state=seed).fit_transform(z)
    return pca(z, dim=2)


def plot_latent_space(z, path, labels=None, decoded_grid=None, title=None, projection="pca"):
    """Posterior means as a scatter coloured by label, and the decoded latent plane if given.

    `projection` ("pca" or "umap") maps codes of more than two dimensions to the plane.
    """
    points = project_2d(z, projection)
    panels = 2 if decoded_grid is not None else 1
    figure, axes = new_figure(1, panels, figsize=(6 * panels, 5.5), squeeze=False)
    if labels is None:
        axes[0, 0].scatter(points[:, 0], points[:, 1], s=4)
    else:  # one colour per class, named in a legend
        labels = np.asarray(labels)
        for index, label in enumerate(np.unique(labels)):
            chosen = labels == label
            axes[0, 0].scatter(points[chosen, 0], points[chosen, 1], s=4, color=f"C{index % 10}", label=str(label))
        axes[0, 0].legend(title="label", markerscale=3, fontsize="small", loc="best")
    projected = np.asarray(z).shape[1] > 2
    axis_name = "UMAP " if projection == "umap" else "PC "
    axes[0, 0].set(
        xlabel=axis_name + "1" if projected else "z₁",
        ylabel=axis_name + "2" if projected else "z₂",
        title="posterior means" + (f" ({projection.upper()})" if projected else ""),
    )
    if decoded_grid is not None:
        axes[0, 1].imshow(image_grid(decoded_grid, int(round(len(decoded_grid) ** 0.5))), cmap="gray")
        axes[0, 1].set_title("decoded latent plane")
        axes[0, 1].axis("off")
    if title:
        figure.suptitle(title)
    return save_figure(figure, path)


def plot_training_curves(history, path, latent_records=None):
    """Loss, reconstruction and KL per epoch (train and val), and σ² per latent dimension."""
    panels = [("loss", "total loss"), ("reconstruction_loss", "reconstruction"), ("kl_loss", "KL (nats)")]
    figure, axes = new_figure(1, 4 if latent_records else 3, figsize=(5 * (4 if latent_records else 3), 4))
    for axis, (key, label) in zip(axes, panels):
        epochs = np.arange(1, len(history[key]) + 1)
        axis.plot(epochs, history[key], label="train")
        if f"val_{key}" in history:
            axis.plot(epochs, history[f"val_{key}"], label="val")
        axis.set(xlabel="epoch", title=label)
        axis.legend()
    if latent_records:
        axes[3].plot([r["epoch"] for r in latent_records], [r["variance_per_dim"] for r in latent_records], linewidth=1)
        axes[3].set(yscale="log", xlabel="epoch", title="σ² per latent dimension")
    return save_figure(figure, path)


def plot_lr_range_test(result, path, title=None):
    """Loss against learning rate (log axis) of a range test, with the suggested base and max rates.

    `result` is a `keras_vae.lr_finder.LRRangeTest` or its `to_dict()`.
    """
    get = result.get if isinstance(result, dict) else lambda key: getattr(result, key)
    rates = np.asarray(get("learning_rates"), float)
    losses = np.asarray([np.nan if v is None else v for v in get("losses")], float)
    smoothed = np.asarray([np.nan if v is None else v for v in get("smoothed_losses")], float)
    figure, axis = new_figure(1, 1, figsize=(7, 4.5))
    axis.plot(rates, losses, color="tab:blue", alpha=0.3, linewidth=1, label="batch loss")
    axis.plot(rates, smoothed, color="tab:blue", label="smoothed loss")
    for key, style, name in (("base_learning_rate", ":", "base"), ("max_learning_rate", "--", "max")):
        rate = get(key)
        if rate is not None and np.isfinite(rate):
            axis.axvline(rate, color="tab:red", linestyle=style, label=f"{name} {rate:.2g}")
    # A diverging tail would squash the rest: show from the lowest loss up to
    # the highest smoothed loss before the smoothed minimum (about the start).
    if np.isfinite(smoothed).any():
        lowest = int(np.nanargmin(smoothed))
        finite = losses[np.isfinite(losses)]
        low = finite.min() if finite.size else smoothed[lowest]
        high = np.nanmax(smoothed[: lowest + 1])
        margin = 0.05 * (high - low) or 1.0
        axis.set_ylim(low - margin, high + margin)
    axis.set(xscale="log", xlabel="learning rate", ylabel="loss", title=title or "learning-rate range test")
    axis.legend()
    return save_figure(figure, path)


def plot_collapse_curves(curves, path, title=None):
    """KL, I(x; z) and active units over training, one line per run: `curves` is `{name: records}`.

    Each record is a dict with `step`, `kl`, `mutual_info` and `active_units`
    (as `benchmarks/collapse_study.py` writes them). The KL axis is linear
    up to 1 nat and logarithmic above, so early spikes leave the end readable.

    Returns:
        The path written.
    """
    figure, axes = new_figure(1, 3, figsize=(16, 4.2))
    for name, records in curves.items():
        if not records:  # a run without a latent (a language model) has no curves
            continue
        steps = [r["step"] for r in records]
        for axis, key in zip(axes, ("kl", "mutual_info", "active_units")):
            axis.plot(steps, [r[key] for r in records], label=name, linewidth=1.5)
    for axis, label in zip(axes, ("KL (nats; log scale above 1)", "I(x; z) (nats)", "active units")):
        axis.set_xlabel("iteration")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
    axes[0].set_yscale("symlog", linthresh=1.0)
    highest = max((r["kl"] for records in curves.values() for r in records), default=1.0)
    ticks = [t for t in (0, 0.25, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500) if t <= max(1.0, 1.2 * highest)]
    axes[0].set_yticks(ticks, labels=[f"{t:g}" for t in ticks])
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(
        handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(len(labels), 7), frameon=False
    )
    if title:
        figure.suptitle(title)
    return save_figure(figure, path)


def plot_posterior_mean_space(runs, path, title=None):
    """He et al. (2019)'s posterior mean space: the model's E_p(z|x)[z] against the encoder's E_q(z|x)[z].

    `runs` is `{name: records}`, one row per run, one column per record; a
    record is a dict with `iteration`, `model_mean` and `encoder_mean` (arrays
    over the same examples, one latent dimension). Every panel has the same
    limits, the diagonal μ_φ = μ_θ (the encoder agrees with the model) and the
    origin (the code unused) marked.
    """
    records = [record for run in runs.values() for record in run]
    limit = 1.05 * max(0.1, *(np.abs(np.concatenate([r["model_mean"], r["encoder_mean"]])).max() for r in records))
    columns = max(len(run) for run in runs.values())
    figure, axes = new_figure(len(runs), columns, figsize=(2.7 * columns, 2.8 * len(runs)), squeeze=False)
    for row, (name, run) in enumerate(runs.items()):
        for column, axis in enumerate(axes[row]):
            if column >= len(run):
                axis.axis("off")
                continue
            axis.plot([-limit, limit], [-limit, limit], color="gray", linewidth=0.8, linestyle="--")
            axis.axhline(0.0, color="lightgray", linewidth=0.6)
            axis.axvline(0.0, color="lightgray", linewidth=0.6)
            axis.scatter(run[column]["model_mean"], run[column]["encoder_mean"], s=5, alpha=0.5, linewidths=0)
            axis.plot(0.0, 0.0, marker="+", color="tab:red", markersize=12, markeredgewidth=1.5)
            axis.set(xlim=(-limit, limit), ylim=(-limit, limit), aspect="equal")
            axis.set_title(f"{name}, iteration {run[column]['iteration']}", fontsize="medium")
            if row == len(runs) - 1:
                axis.set_xlabel("μ_θ = E_p(z|x)[z] (model)")
            if column == 0:
                axis.set_ylabel("μ_φ = E_q(z|x)[z] (encoder)")
    if title:
        figure.suptitle(title)
    return save_figure(figure, path)


def plot_assessment(assessment, path, latent_records=None, events=None):
    """The latent code on one page: KL and I(x; z) per dimension, the decoder-uses-z test, σ² curves, the verdict.

    `assessment` is a `keras_vae.evaluation.assessment.Assessment`; `latent_records`
    the `LatentDynamics` records (σ² per dimension over epochs, with the phases
    marked); `events` the `CollapseMonitor`'s remedy events (marked on the σ² panel).
    """
    from keras_vae.evaluation.variance_phases import variance_phases

    figure, axes = new_figure(1, 4, figsize=(22, 4.5), gridspec_kw={"width_ratios": [3, 1.3, 2.2, 2]})
    dims = np.arange(assessment.latent_dim)
    order = np.argsort(assessment.mutual_info_per_dim)[::-1]
    colors = ["tab:green" if assessment.active[j] else "tab:gray" for j in order]
    axes[0].bar(dims - 0.2, np.asarray(assessment.kl_per_dim)[order], width=0.4, color=colors, alpha=0.45, label="KL")
    axes[0].bar(
        dims + 0.2, np.asarray(assessment.mutual_info_per_dim)[order], width=0.4, color=colors, label="I(x; z_j)"
    )
    axes[0].set_xticks(dims, [str(j) for j in order], fontsize=7)
    axes[0].set(xlabel="latent dimension (by I(x; z_j))", ylabel="nats", title="KL (light) and I(x; z_j) per dimension")
    axes[0].text(
        0.99,
        0.95,
        f"green: active ({assessment.active_rule})",
        transform=axes[0].transAxes,
        ha="right",
        va="top",
        fontsize=8,
    )
    names = ["own z", "shuffled z", "prior z"]
    values = [assessment.log_likelihood_own, assessment.log_likelihood_shuffled, assessment.log_likelihood_prior]
    axes[1].bar(names, values, color=["tab:blue", "tab:orange", "tab:gray"])
    low = min(values)
    axes[1].set_ylim(low - 0.05 * abs(low) - 1, max(values) + 0.05 * abs(low) + 1)
    axes[1].set(ylabel="log p(x|z), nats per example", title=f"decoder uses z: gap {assessment.decoder_gap:.2f} nats")
    if latent_records:
        epochs = [r["epoch"] for r in latent_records]
        variance = np.asarray([r["variance_per_dim"] for r in latent_records])
        for j in range(variance.shape[1]):
            active = assessment.active[j] if j < len(assessment.active) else False
            axes[2].plot(
                epochs, variance[:, j], linewidth=1.2 if active else 0.6, color=None if active else "lightgray"
            )
        active_dims = [j for j, on in enumerate(assessment.active) if on]
        for number, (name, first, last) in enumerate(variance_phases(latent_records, active_dims or None)):
            axes[2].axvspan(first, last, alpha=0.05 + 0.07 * (number % 2), color="tab:blue")
            axes[2].text(
                (first + last) / 2,
                0.97 - 0.05 * number,
                name,
                transform=axes[2].get_xaxis_transform(),
                ha="center",
                va="top",
                fontsize=7,
            )
        for event in events or []:
            axes[2].axvline(event["epoch"], color="tab:red", linestyle="--")
            axes[2].text(
                event["epoch"],
                0.02,
                f" {event['remedy']} on",
                color="tab:red",
                transform=axes[2].get_xaxis_transform(),
                fontsize=8,
            )
        axes[2].set(yscale="log", xlabel="epoch", ylabel="mean encoder σ²", title="σ² per dimension (active in colour)")
    else:
        axes[2].text(0.5, 0.5, "no σ² curves recorded", ha="center", va="center", transform=axes[2].transAxes)
    axes[3].axis("off")
    lines = [assessment.verdict.upper(), ""] + [_wrap(line, 60) for line in assessment.evidence]
    if assessment.remedies:
        lines += ["", "remedies:"] + [_wrap("- " + remedy, 60) for remedy in assessment.remedies]
    color = "tab:green" if assessment.verdict == "healthy" else "tab:red"
    axes[3].text(0, 1, "\n".join(lines), va="top", fontsize=8, transform=axes[3].transAxes, color="black")
    axes[3].set_title(f"verdict: {assessment.verdict}", color=color, fontsize=13, loc="left")
    return save_figure(figure, path)


def _wrap(text, width):
    import textwrap

    return "\n".join(textwrap.wrap(text, width))


def plot_log_variance_forces(records, path):
    """The two forces on each dimension's log σ² (`callbacks.LogVarianceForces` records): bars at the last epoch, totals over epochs."""
    last = records[-1]
    dims = np.arange(len(last["reconstruction"]))
    figure, axes = new_figure(1, 2, figsize=(13, 4))
    axes[0].bar(dims - 0.2, last["reconstruction"], width=0.4, label="reconstruction (pushes σ² down if > 0)")
    axes[0].bar(dims + 0.2, last["kl"], width=0.4, label="β·KL (pushes σ² toward 1)")
    axes[0].axhline(0, color="black", linewidth=0.5)
    axes[0].set(xlabel="latent dimension", ylabel="d loss / d log σ²", title=f"forces on log σ², epoch {last['epoch']}")
    axes[0].legend(fontsize=8)
    epochs = [r["epoch"] for r in records]
    totals = np.asarray([np.add(r["reconstruction"], r["kl"]) for r in records])
    axes[1].plot(epochs, totals, linewidth=1)
    axes[1].axhline(0, color="black", linewidth=0.5)
    axes[1].set(
        yscale="symlog",
        xlabel="epoch",
        ylabel="total d loss / d log σ²",
        title="> 0: reconstruction wins (σ² falls); < 0: KL wins (σ² rises)",
    )
    return save_figure(figure, path)
