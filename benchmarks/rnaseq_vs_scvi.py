"""keras-vae's NB cVAE and scvi-tools' SCVI side by side, on the same synthetic RNA-seq counts.

Both models get the same data (`keras_vae.datasets.synthetic.bulk_rnaseq`, the
same split), a negative-binomial likelihood at each sample's observed library
size, the batch as a covariate, the same latent size, epochs and batch size;
each keeps its own networks and optimizer defaults (keras-vae: the default MLP,
Adam with a cosine-decayed learning rate from 1e-3, β = 0.5 and a decoder
started at the average profile, as `examples/rnaseq_cvae.py`; SCVI: one hidden
layer of 128, dropout 0.1, Adam 1e-3, KL warm-up over 400 epochs, β = 1). The
table, for the default setting and the harder one (`cell_type_scale` 0.15,
cell types closer together), holds:

- held-out marginal NLL per sample, importance-weighted with `--num-samples`
  samples (keras-vae's `evaluate`; SCVI's `get_marginal_ll`), lower is better;
- cell-type accuracy of a linear classifier on the held-out latent means
  (`keras_vae.evaluation.downstream`, the same code for both latents);
- batch accuracy (near chance is mixed), silhouettes by cell type and by
  batch, and the kNN batch-mixing entropy (k = 30);
- seconds of training.

scvi-tools depends on torch and lives in its own environment: `--scvi-python`
runs this same file there as a worker (`pip install torch==2.13.0 scvi-tools`
in a virtual environment; the `[scvi]` extra names it).

    KERAS_BACKEND=tensorflow python benchmarks/rnaseq_vs_scvi.py --scvi-python /tmp/scvi-venv/bin/python
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

SETTINGS = (("default", 0.5), ("harder", 0.15))


def scvi_worker(data_path, output_path):
    """Trains SCVI on the arrays at `data_path`; writes its latent means, marginal log-likelihoods and time."""
    import anndata
    import scvi

    with open(output_path + ".json") as file:
        options = json.load(file)
    arrays = dict(np.load(data_path))
    scvi.settings.seed = options["seed"]

    def table(split):
        obs = {"batch": arrays[f"batch_{split}"].astype(str)}
        return anndata.AnnData(X=arrays[f"x_{split}"].astype(np.float32), obs=obs)

    train, test = table("train"), table("test")
    scvi.model.SCVI.setup_anndata(train, batch_key="batch")
    model = scvi.model.SCVI(train, n_latent=options["latent_dim"], gene_likelihood="nb")
    start = time.perf_counter()
    model.train(
        max_epochs=options["epochs"],
        batch_size=options["batch_size"],
        train_size=1.0,
        accelerator="cpu",
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=False,
    )
    seconds = time.perf_counter() - start
    log_likelihoods = model.get_marginal_ll(test, n_mc_samples=options["num_samples"], return_mean=False)
    np.savez(
        output_path,
        z_train=model.get_latent_representation(train),
        z_test=model.get_latent_representation(test),
        log_likelihood=np.asarray(log_likelihoods),
        seconds=seconds,
    )


def train_keras_vae(arrays, args):
    import keras

    import keras_vae
    from keras_vae.evaluation import report

    keras.utils.set_random_seed(args.seed)
    train = {"x": arrays["x_train"], "batch": arrays["batch_train"]}
    test = {"x": arrays["x_test"], "batch": arrays["batch_test"]}
    cvae = keras_vae.ConditionalVAE.from_input_shape(
        arrays["x_train"].shape[1:],
        {"batch": int(arrays["batch_train"].max()) + 1},
        latent_dim=args.latent_dim,
        likelihood="nb",
        seed=args.seed,
    )
    steps = -(-len(arrays["x_train"]) // args.batch_size) * args.epochs
    schedule = keras.optimizers.schedules.CosineDecay(1e-3, steps)
    cvae.compile(optimizer=keras.optimizers.Adam(schedule), beta=0.5)
    cvae.initialize_decoder_bias(train)
    start = time.perf_counter()
    cvae.fit(train, epochs=args.epochs, batch_size=args.batch_size, verbose=0)
    seconds = time.perf_counter() - start
    result = report.evaluate(cvae, test, num_samples=args.num_samples, seed=0)
    to_numpy = keras.ops.convert_to_numpy
    return to_numpy(cvae.embed(train)), to_numpy(cvae.embed(test)), result.importance_weighted_nll, seconds


def train_scvi(arrays, args, directory):
    data_path, output_path = os.path.join(directory, "data.npz"), os.path.join(directory, "scvi.npz")
    np.savez(data_path, **arrays)
    options = {k: getattr(args, k) for k in ("latent_dim", "epochs", "batch_size", "num_samples", "seed")}
    with open(output_path + ".json", "w") as file:
        json.dump(options, file)
    environment = {**os.environ, "PYTHONWARNINGS": "ignore"}
    subprocess.run(
        [args.scvi_python, os.path.abspath(__file__), "--scvi-worker", data_path, output_path],
        check=True,
        env=environment,
    )
    with np.load(output_path) as result:
        return result["z_train"], result["z_test"], float(-result["log_likelihood"].mean()), float(result["seconds"])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scvi-python", default="/tmp/scvi-venv/bin/python", help="a Python with scvi-tools")
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--genes", type=int, default=1000)
    parser.add_argument("--latent-dim", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--num-samples", type=int, default=100, help="importance samples per test example")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--settings", default="default,harder", help="default and/or harder")
    parser.add_argument("--scvi-worker", nargs=2, metavar=("DATA", "OUTPUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scvi_worker:
        return scvi_worker(*args.scvi_worker)

    import keras

    from keras_vae.datasets import synthetic
    from keras_vae.evaluation import downstream

    print(
        f"{args.samples} samples x {args.genes} genes, latent {args.latent_dim}, {args.epochs} epochs, "
        f"batch size {args.batch_size}, {args.num_samples} importance samples; keras-vae on {keras.backend.backend()}"
    )
    header = (
        f"{'setting':<9}{'model':<18}{'NLL':>9}{'type acc':>9}{'PCA acc':>8}{'batch acc':>10}{'chance':>7}"
        f"{'type sil':>9}{'batch sil':>10}{'mixing':>7}{'s':>6}"
    )
    print(header, flush=True)
    for setting, cell_type_scale in SETTINGS:
        if setting not in args.settings.split(","):
            continue
        data = synthetic.bulk_rnaseq(
            num_samples=args.samples, num_genes=args.genes, cell_type_scale=cell_type_scale, seed=args.seed
        )
        arrays = synthetic.to_arrays(data, seed=args.seed)
        with tempfile.TemporaryDirectory() as directory:
            results = {
                "keras-vae NB cVAE": train_keras_vae(arrays, args),
                "scvi-tools SCVI": train_scvi(arrays, args, directory),
            }
        for name, (z_train, z_test, nll, seconds) in results.items():
            r = downstream.latent_space_report(
                z_train,
                arrays["y_train"],
                z_test,
                arrays["y_test"],
                arrays["x_train"],
                arrays["x_test"],
                arrays["batch_train"],
                arrays["batch_test"],
            )
            print(
                f"{setting:<9}{name:<18}{nll:>9.1f}{r['latent_accuracy']:>9.3f}{r['pca_accuracy']:>8.3f}"
                f"{r['batch_accuracy']:>10.3f}{r['batch_chance_accuracy']:>7.3f}{r['label_silhouette']:>9.3f}"
                f"{r['batch_silhouette']:>10.3f}{r['batch_mixing_entropy']:>7.3f}{seconds:>6.0f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
