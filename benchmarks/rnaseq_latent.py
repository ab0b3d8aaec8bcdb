"""Count likelihoods and batch conditioning on synthetic bulk RNA-seq, side by side.

Trains, on one `keras_vae.datasets.synthetic.bulk_rnaseq` data set and with the same
networks, budget and β (and, as `examples/rnaseq_cvae.py`, a decoder started
at the data's average and a cosine-decayed learning rate), a Gaussian VAE on log1p(counts) (learned σ per gene),
NB and ZINB VAEs on the raw counts, and NB and ZINB conditional VAEs given the
batch, then prints one table:

- held-out NLL per sample, importance-weighted (`--num-samples`, default 100).
  For the Gaussian, a density of log1p(x), it is also shown as a count NLL by
  the change of variables `NLL(x) ≈ NLL(log1p x) + Σ log(1 + x)` (unit-width
  bins), which makes it comparable with the count models;
- cell-type accuracy of a linear classifier on the latent means (held out),
  beside PCA of log1p(counts) with as many components, and chance;
- batch accuracy from the latent means, beside chance: near chance means the
  batches are mixed, which is what conditioning on the batch is for;
- integration metrics of the held-out latent means (`keras_vae.evaluation.downstream`):
  silhouette by cell type (higher: types apart) and by batch (near 0: batches
  overlap), and the kNN batch-mixing entropy (k = 30; 1 is perfectly mixed);
- KL, active units, seconds of training;
- posterior predictive checks of the count models (`keras_vae.evaluation.predictive`,
  10 replicate data sets of the held-out samples): the held-out zero fraction
  and the predicted one, averaged over genes, and the mean |predicted -
  observed| per gene of the zero fraction and of log1p(variance).
  With `--dropout 0.2` the data have technical zeros that only the ZINB models can explain.

    KERAS_BACKEND=jax python benchmarks/rnaseq_latent.py [--epochs 40] [--cell-type-scale 0.15]
"""

import argparse
import time

import keras
import numpy as np

import keras_vae
from keras_vae import likelihoods
from keras_vae.datasets import synthetic
from keras_vae.evaluation import downstream, predictive, report

MODELS = (
    # name, likelihood, conditioned on the batch, encoder input
    ("Gaussian on log1p", "gaussian", False, "log1p"),
    ("NB", "nb", False, "counts"),
    ("ZINB", "zinb", False, "counts"),
    ("NB cVAE (batch)", "nb", True, "counts"),
    ("ZINB cVAE (batch)", "zinb", True, "counts"),
)


def inputs(arrays, split, conditioned, log1p):
    x = np.log1p(arrays[f"x_{split}"]) if log1p else arrays[f"x_{split}"]
    return {"x": x, "batch": arrays[f"batch_{split}"]} if conditioned else x


def train_one(arrays, likelihood, conditioned, log1p, args):
    keras.utils.set_random_seed(args.seed)
    shape = arrays["x_train"].shape[1:]
    if likelihood == "gaussian":
        likelihood = likelihoods.Gaussian(learn_scale="per_feature")
    if conditioned:
        vae = keras_vae.ConditionalVAE.from_input_shape(
            shape,
            {"batch": int(arrays["batch_train"].max()) + 1},
            latent_dim=args.latent_dim,
            likelihood=likelihood,
            seed=args.seed,
        )
    else:
        vae = keras_vae.VAE.from_input_shape(shape, latent_dim=args.latent_dim, likelihood=likelihood, seed=args.seed)
    steps = -(-len(arrays["x_train"]) // args.batch_size) * args.epochs
    vae.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(1e-3, steps)), beta=args.beta)
    train, test = inputs(arrays, "train", conditioned, log1p), inputs(arrays, "test", conditioned, log1p)
    vae.initialize_decoder_bias(train)
    start = time.perf_counter()
    vae.fit(train, epochs=args.epochs, batch_size=args.batch_size, verbose=0)
    seconds = time.perf_counter() - start
    result = report.evaluate(vae, test, num_samples=args.num_samples, seed=0)
    probes = downstream.latent_space_report(
        keras.ops.convert_to_numpy(vae.embed(train)),
        arrays["y_train"],
        keras.ops.convert_to_numpy(vae.embed(test)),
        arrays["y_test"],
        arrays["x_train"],
        arrays["x_test"],
        arrays["batch_train"],
        arrays["batch_test"],
    )
    checks = {}
    if not log1p:  # replicates of a density of log1p(x) are not counts
        check = predictive.posterior_predictive_check(vae, test, replicates=10, seed=0)
        summary = check.summary()
        checks = {
            "zeros_observed": float(check.observed["zero_fraction"].mean()),
            "zeros_predicted": float(check.predicted("zero_fraction").mean()),
            "zeros_error": summary["zero_fraction"]["error"],
            "variance_error": summary["variance"]["error"],
        }
    # A density of log1p(x) as one of x: the change of variables adds Σ log(1 + x) per sample.
    count_nll = (
        np.mean(result.nll + np.log1p(arrays["x_test"]).sum(axis=1)) if log1p else result.importance_weighted_nll
    )
    return {
        "nll": result.importance_weighted_nll,
        "count_nll": float(count_nll),
        "kl": result.kl_loss,
        "active": result.active_units,
        "seconds": seconds,
        **probes,
        **checks,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--genes", type=int, default=1000)
    parser.add_argument("--cell-type-scale", type=float, default=0.5)
    parser.add_argument("--batch-effect", type=float, default=0.3)
    parser.add_argument("--median-library-size", type=float, default=5e5)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--latent-dim", type=int, default=10)
    parser.add_argument("--beta", type=float, default=0.5)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--num-samples", type=int, default=100, help="importance samples per test example")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", default=",".join(str(i) for i in range(len(MODELS))), help="indices into the table")
    args = parser.parse_args()

    data = synthetic.bulk_rnaseq(
        num_samples=args.samples,
        num_genes=args.genes,
        cell_type_scale=args.cell_type_scale,
        batch_effect=args.batch_effect,
        median_library_size=args.median_library_size,
        dropout=args.dropout,
        seed=args.seed,
    )
    arrays = synthetic.to_arrays(data, seed=args.seed)
    print(
        f"{keras.backend.backend()}: {args.samples} samples x {args.genes} genes, {len(np.unique(data.cell_type))} cell types, "
        f"{len(np.unique(data.batch))} batches; latent {args.latent_dim}, beta {args.beta}, {args.epochs} epochs"
    )
    header = (
        f"{'model':<20}{'NLL':>10}{'count NLL':>11}{'KL':>8}{'active':>7}{'type acc':>9}{'PCA acc':>8}{'chance':>7}"
        f"{'batch acc':>10}{'chance':>7}{'type sil':>9}{'batch sil':>10}{'mixing':>7}{'s':>6}"
        f"{'zeros obs':>10}{'pred':>6}{'|err|':>7}{'var err':>8}"
    )
    print(header)
    for index in (int(i) for i in args.models.split(",")):
        name, likelihood, conditioned, encoder_input = MODELS[index]
        r = train_one(arrays, likelihood, conditioned, encoder_input == "log1p", args)
        print(
            f"{name:<20}{r['nll']:>10.1f}{r['count_nll']:>11.1f}{r['kl']:>8.2f}{r['active']:>7d}{r['latent_accuracy']:>9.3f}"
            f"{r['pca_accuracy']:>8.3f}{r['chance_accuracy']:>7.3f}{r['batch_accuracy']:>10.3f}{r['batch_chance_accuracy']:>7.3f}"
            f"{r['label_silhouette']:>9.3f}{r['batch_silhouette']:>10.3f}{r['batch_mixing_entropy']:>7.3f}"
            f"{r['seconds']:>6.0f}"
            + (
                f"{r['zeros_observed']:>10.3f}{r['zeros_predicted']:>6.3f}{r['zeros_error']:>7.3f}{r['variance_error']:>8.3f}"
                if "zeros_error" in r
                else ""
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
