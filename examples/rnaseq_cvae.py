"""A conditional VAE on synthetic bulk RNA-seq counts, trained the way a VAE diagnostics guide advises.

    KERAS_BACKEND=jax python examples/rnaseq_cvae.py [--epochs 40] [--output runs/rnaseq_cvae]

The data are `keras_vae.datasets.synthetic.bulk_rnaseq()`: 2000 samples x 1000 genes from
5 cell types, measured in 3 batches. The model is a cVAE with a negative-binomial
likelihood (the encoder sees log1p of the counts, the likelihood the raw counts
with each sample's observed library size) conditioned on the batch, trained
with β = 0.5, the advised start for expression data, from a decoder started at
the average expression profile, with Adam's learning rate decaying from 1e-3
to 0 (cosine). It prints the per-epoch log
in the diagnostics guide's training-log format (`epoch 001 | train loss=... recon=... kl=... | val loss=...`)
and the diagnosis report, then judges the latent space: cell type read from it
by a linear classifier (against PCA of log1p counts and chance), batch read
from it (near chance = the batches are mixed), and the integration metrics
(silhouettes by cell type and by batch, kNN batch-mixing entropy). A posterior
predictive check compares each gene's held-out mean, variance and zero
fraction with 10 replicate data sets drawn from the model. It writes the latent
space coloured by cell type and by batch (PCA, and UMAP where the `[umap]`
extra is installed), the predictive check and the training curves to `--output`.
"""

import argparse
import os
import time

import keras
import numpy as np

import keras_vae
from keras_vae import callbacks, plotting
from keras_vae.datasets import synthetic
from keras_vae.evaluation import diagnostics, downstream, predictive


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--latent-dim", type=int, default=10)
    parser.add_argument("--beta", type=float, default=0.5)
    parser.add_argument("--likelihood", choices=["nb", "zinb", "poisson"], default="nb")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dropout", type=float, default=0.0, help="technical zeros in the synthetic data")
    parser.add_argument("--replicates", type=int, default=10, help="replicate data sets of the predictive check")
    parser.add_argument("--output", default=os.path.join("runs", "rnaseq_cvae"))
    args = parser.parse_args()

    arrays = synthetic.to_arrays(synthetic.bulk_rnaseq(dropout=args.dropout, seed=args.seed), seed=args.seed)
    train = {"x": arrays["x_train"], "batch": arrays["batch_train"]}
    test = {"x": arrays["x_test"], "batch": arrays["batch_test"]}
    num_batches = int(arrays["batch_train"].max()) + 1

    keras.utils.set_random_seed(args.seed)
    cvae = keras_vae.ConditionalVAE.from_input_shape(
        arrays["x_train"].shape[1:],
        {"batch": num_batches},
        latent_dim=args.latent_dim,
        likelihood=args.likelihood,
        seed=args.seed,
    )
    # Cosine decay of the learning rate: the run settles instead of stopping mid-climb.
    steps = int(np.ceil(len(arrays["x_train"]) / 64)) * args.epochs
    cvae.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(1e-3, steps)), beta=args.beta)
    # The decoder starts at the average expression profile, so z only has to explain
    # how samples differ from it: the KL rises slowly instead of spiking first.
    cvae.initialize_decoder_bias(train)
    latent = callbacks.LatentDynamics(test, os.path.join(args.output, "diagnostics"))
    start = time.perf_counter()
    history = cvae.fit(
        train,
        epochs=args.epochs,
        batch_size=64,
        validation_data=(test,),
        verbose=0,
        callbacks=[callbacks.EpochLogger(), latent],
    ).history
    seconds = time.perf_counter() - start

    diagnosis = diagnostics.diagnose(history, args.latent_dim, latent_curves=latent.records)
    print(diagnosis)
    z_train = keras.ops.convert_to_numpy(cvae.embed(train))
    z_test = keras.ops.convert_to_numpy(cvae.embed(test))
    report = downstream.latent_space_report(
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
        f"latent space (held out): cell type {report['latent_accuracy']:.3f} (PCA of log1p counts "
        f"{report['pca_accuracy']:.3f}, chance {report['chance_accuracy']:.3f}); batch {report['batch_accuracy']:.3f} "
        f"(chance {report['batch_chance_accuracy']:.3f})"
    )
    print(
        f"integration (held out): silhouette by cell type {report['label_silhouette']:.3f} (PCA "
        f"{report['pca_label_silhouette']:.3f}), by batch {report['batch_silhouette']:.3f}; kNN batch-mixing entropy "
        f"{report['batch_mixing_entropy']:.3f} (perfectly mixed: {report['batch_mixing_ceiling']:.3f})"
    )
    check = predictive.posterior_predictive_check(cvae, test, replicates=args.replicates, seed=args.seed)
    summary = check.summary()
    print(
        f"posterior predictive check ({check.replicates} replicates of the held-out samples, per gene): zero fraction "
        f"observed {check.observed['zero_fraction'].mean():.3f}, predicted {check.predicted('zero_fraction').mean():.3f}; "
        + "; ".join(f"{s.replace('_', ' ')} error {summary[s]['error']:.3f}" for s in predictive.STATISTICS)
    )
    predictive.plot_predictive_check(check, os.path.join(args.output, "predictive_check.png"))
    projections = ["pca"]
    try:
        plotting.check_projection("umap")
        projections.append("umap")
    except ImportError as missing:
        print(f"no UMAP figures: {missing}")
    figures = []
    for projection in projections:
        suffix = "" if projection == "pca" else "_umap"
        for labels, by in ((arrays["y_test"], "cell_type"), (arrays["batch_test"], "batch")):
            name = f"latent_by_{by}{suffix}.png"
            title = f"latent means by {by.replace('_', ' ')} ({projection.upper()})"
            plotting.plot_latent_space(
                z_test, os.path.join(args.output, name), labels=labels, title=title, projection=projection
            )
            figures.append(name)
    plotting.plot_training_curves(
        history, os.path.join(args.output, "training_curves.png"), latent_records=latent.records
    )
    print(
        f"{keras.backend.backend()}: {args.epochs} epochs in {seconds:.0f} s; diagnosis "
        f"{'passed' if diagnosis.healthy else 'needs attention'}; figures in {args.output}/ "
        f"({', '.join(figures)}, predictive_check.png, training_curves.png)"
    )
    return 0 if np.isfinite(history["loss"][-1]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
