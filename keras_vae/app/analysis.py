"""What `keras-vae check` and `keras-vae embed` do with a trained run, apart from parsing and printing.

`check_run` writes a run's posterior predictive check; `embed_run` its embedding of a table (`keras_vae.app.embedding`).
"""

import os

from keras_vae import names
from keras_vae.app import build, embedding, runs
from keras_vae.evaluation import predictive
from keras_vae.files import write_json
from keras_vae.version import __version__

PREDICTIVE_CHECK = "predictive_check.json"
PREDICTIVE_FIGURE = "predictive_check.png"


def check_run(run_dir, replicates=10, max_examples=None, seed=0, output_dir=None, verbose=False):
    """The posterior predictive check of a run on its test split: `(check, json_path, figure_path)`.

    Raises:
        runs.RunError: the run is not one a predictive check applies to.
    """
    train_config = runs.read_config(run_dir)
    if train_config.likelihood == names.CATEGORICAL or train_config.architecture in names.AUTOREGRESSIVE_ARCHITECTURES:
        raise runs.RunError(
            f"{run_dir} models text or has an autoregressive decoder; keras-vae check compares per-feature "
            "statistics of count, binary or real-valued data: run it on such a run."
        )
    vae, which = runs.load_model(run_dir)  # before the data: a damaged model is reported at once
    data = build.load_data(train_config)
    check = predictive.posterior_predictive_check(
        vae,
        data.test,
        replicates=replicates,
        batch_size=train_config.batch_size,
        max_examples=max_examples,
        seed=seed,
        verbose=verbose,
    )
    output_dir = output_dir or run_dir
    json_path = os.path.join(output_dir, PREDICTIVE_CHECK)
    figure_path = os.path.join(output_dir, PREDICTIVE_FIGURE)
    write_json(json_path, {"run": run_dir, "model": which, **check.to_dict()})
    predictive.plot_predictive_check(
        check, figure_path, title=f"{os.path.basename(os.path.normpath(run_dir))}: {train_config.likelihood} likelihood"
    )
    return check, json_path, figure_path


def embed_run(run_dir, input_path, output_path, library_size="1e4", counterfactual=(), batch_size=1024, quiet=True):
    """`keras-vae embed`: parses `library_size` ("own" or a number) and `NAME=VALUE` conditions; `(rows, latent_dim)`."""
    if library_size == "own":
        size = None
    else:
        try:
            size = float(library_size)
        except ValueError:
            size = -1.0
        if not size > 0:
            raise runs.RunError(f"--library-size must be a positive number of counts or 'own'; got {library_size!r}.")
    condition = {}
    for text in counterfactual:
        name, _, value = text.partition("=")
        try:
            condition[name.strip()] = float(value) if "." in value or "e" in value.lower() else int(value)
        except ValueError:
            raise runs.RunError(f"--condition takes NAME=VALUE with a number, e.g. batch=0; got {text!r}.") from None
    train_config = runs.read_config(run_dir)
    vae, which = runs.load_model(run_dir)
    settings = {
        "run": os.path.abspath(run_dir),
        "model": which,
        "likelihood": train_config.likelihood,
        "latent_dim": vae.latent_dim,
        "beta": str(train_config.beta),
        "keras_vae_version": __version__,
    }
    rows = embedding.embed_file(
        vae, input_path, output_path, size, condition or None, batch_size, settings=settings, verbose=not quiet
    )
    return rows, vae.latent_dim


def latent_figures(run_dir, projection):
    """The test probe's latent means in the plane by `projection`, coloured by label and by each
    categorical condition (e.g. cell type and batch): one figure each, in the run directory; their paths."""
    from keras_vae import plotting  # matplotlib: only when figures are drawn
    from keras_vae.ops import latent

    plotting.check_projection(projection)
    train_config = runs.read_config(run_dir)
    vae, _ = runs.load_model(run_dir)
    data = build.load_data(train_config)
    probe_x, labels = data.probe(runs.PROBE_SIZE)
    z_mean, _ = latent.encode_data(vae, probe_x, batch_size=train_config.batch_size)
    colourings = {"label": labels} if labels is not None else {}
    for name, categories in data.conditions.items():
        if categories:
            colourings[name] = probe_x[name]
    paths = []
    for name, values in (colourings or {"none": None}).items():
        path = os.path.join(run_dir, f"latent_{projection}_by_{name}.png")
        title = f"latent means of the test probe by {name} ({projection.upper()})"
        paths.append(plotting.plot_latent_space(z_mean, path, labels=values, title=title, projection=projection))
    return paths
