"""Calibration of the latent-code verdict on labelled runs, and CollapseMonitor's remedy against its alternatives.

Trains, through the `keras-vae train` command (in process), six runs whose state
is known, then reads the verdict of each from the three places a user meets it:
`CollapseMonitor` (its last epoch), the train summary (`summary.json`) and
`keras-vae diagnose`:

| run | expected |
|---|---|
| MLP on MNIST, β = 1 | healthy |
| MLP on MNIST, β = 8 | over-regularized |
| PixelCNN decoder on binarized MNIST, basic | collapsed |
| the same with aggressive training (He et al. 2019) | healthy |
| LSTM VAE on Penn Treebank sentences, basic | collapsed |
| the same with free bits 0.25 | forced by free bits |

then the remedy mode (`--collapse-remedy aggressive`) on the PixelCNN (and with
`--remedy-text` on the LSTM) against the basic and always-aggressive runs: KL,
I(x; z), active units, IW-NLL (K=100, first 50 test examples), wall time.

Reduced setting (2 CPU cores): MNIST 2000 train / 500 test images, 10 epochs;
binarized MNIST 1000 / 400, 10 epochs at Adam 3e-3, PixelCNN 16 filters, 5 blocks;
PTB 2000 / 400 / 400 sentences of at most 20 words, 5 epochs, LSTM 128 units.

    python benchmarks/collapse_calibration.py --output-dir calibration
"""

import argparse
import functools
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from click.testing import CliRunner  # noqa: E402

import keras_vae  # noqa: E402
from keras_vae import datasets as data  # noqa: E402
from keras_vae.app import runs  # noqa: E402
from keras_vae.app.cli import main  # noqa: E402
from keras_vae.datasets import text  # noqa: E402
from keras_vae.evaluation import report  # noqa: E402

PTB_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data", "raw", "ptb")
PIXELCNN = ["--architecture", "pixelcnn", "--learning-rate", "3e-3", "--batch-size", "32", "--epochs", "10"]
AGGRESSIVE = ["--aggressive", "--max-inner-steps", "20", "--inner-check-every", "5"]
LSTM = ["--batch-size", "32", "--epochs", "5"]
MLP = ["--batch-size", "64", "--epochs", "10"]

# name: (dataset, options, expected verdict); the last ones measure the remedy.
RUNS = {
    "mlp-mnist": ("mnist", MLP, "healthy"),
    "mlp-mnist-beta8": ("mnist", [*MLP, "--beta", "8"], "over-regularized"),
    "lstm-ptb": ("ptb", LSTM, "collapsed"),
    "lstm-ptb-free-bits": ("ptb", [*LSTM, "--free-bits", "0.25"], "forced by free bits"),
    "pixelcnn-basic": ("binarized", PIXELCNN, "collapsed"),
    "pixelcnn-aggressive": ("binarized", [*PIXELCNN, *AGGRESSIVE], "healthy"),
}
REMEDY_RUNS = {
    "pixelcnn-remedy": ("binarized", [*PIXELCNN, "--collapse-remedy", "aggressive", *AGGRESSIVE[1:]], None),
}
TEXT_REMEDY_RUNS = {
    "lstm-ptb-aggressive": ("ptb", [*LSTM, *AGGRESSIVE], None),
    "lstm-ptb-remedy": ("ptb", [*LSTM, "--collapse-remedy", "aggressive", *AGGRESSIVE[1:]], None),
}


def small_networks():
    """The study's reduced networks for the CLI's pixelcnn and lstm architectures."""
    nets = keras_vae.networks
    nets.ARCHITECTURES["pixelcnn"] = (
        nets.conv_encoder,
        functools.partial(nets.pixelcnn_decoder, filters=16, num_blocks=5),
    )
    nets.ARCHITECTURES["lstm"] = (
        functools.partial(nets.lstm_encoder, embedding_dim=128, units=128),
        functools.partial(nets.lstm_decoder, embedding_dim=128, units=128),
    )


def prepare_data(directory, ptb_dir):
    """The reduced data sets as files the CLI reads: two .npz files and PTB-style .txt files."""
    os.makedirs(directory, exist_ok=True)
    paths = {"mnist": os.path.join(directory, "mnist.npz"), "binarized": os.path.join(directory, "binarized.npz")}
    for key, name, train, test in (("mnist", "mnist", 2000, 500), ("binarized", "binarized_mnist", 1000, 400)):
        if not os.path.exists(paths[key]):
            x_train, y_train = data.labelled_arrays(name, f"train[:{train}]")
            x_test, y_test = data.labelled_arrays(name, f"test[:{test}]")
            scale = 255.0 if x_train.max() > 1 else 1.0
            arrays = {"x_train": x_train / scale, "x_test": x_test / scale}
            if y_train is not None:
                arrays.update(y_train=y_train, y_test=y_test)
            np.savez(paths[key], **arrays)
    rng = np.random.default_rng(0)
    for split, count in (("train", 2000), ("valid", 400), ("test", 400)):
        path = os.path.join(directory, f"ptb20.{split}.txt")
        if not os.path.exists(path):
            sentences = [s for s in text.read_sentences(os.path.join(ptb_dir, f"ptb.{split}.txt.gz")) if len(s) <= 20]
            chosen = [sentences[i] for i in np.sort(rng.permutation(len(sentences))[:count])]
            with open(path, "w") as file:
                file.write("\n".join(" ".join(s) for s in chosen) + "\n")
    paths["ptb"] = os.path.join(directory, "ptb20.train.txt")
    return paths


def train_and_read(name, dataset, options, output_dir, nll_examples=50):
    """Trains one run through the CLI; its three verdicts and its numbers."""
    run_dir = os.path.join(output_dir, name)
    start = time.perf_counter()
    result = CliRunner().invoke(
        main, ["train", "--dataset", dataset, *options, "--quiet", "--overwrite", "--output", run_dir]
    )
    if result.exit_code != 0:
        raise RuntimeError(f"{name}: {result.output}")
    seconds = time.perf_counter() - start
    summary = json.load(open(os.path.join(run_dir, runs.SUMMARY)))
    monitor = json.load(open(os.path.join(run_dir, runs.DIAGNOSTICS, runs.COLLAPSE_RECORDS)))
    diagnosis, figure = runs.diagnose(run_dir)
    vae, _ = runs.load_model(run_dir)
    test = runs.build.load_data(runs.read_config(run_dir)).probe(nll_examples)[0]
    nll = report.evaluate(vae, test, num_samples=100, seed=0).importance_weighted_nll
    code = summary["test"]
    return {
        "run": name,
        "monitor": monitor["records"][-1]["verdict"],
        "summary": summary["verdict"],
        "diagnose": diagnosis.verdict,
        "mutual_info": code["mutual_info"],
        "mutual_info_interval": code["mutual_info_interval"],
        "decoder_gap": code["decoder_gap"],
        "active_units": code["active_units"],
        "kl": code["kl_loss"],
        "iw_nll": nll,
        "train_seconds": summary["train_seconds"],
        "seconds": seconds,
        "remedy_events": monitor["events"],
        "aggressive_epochs": _aggressive_epochs(run_dir),
        "figure": figure,
    }


def _aggressive_epochs(run_dir):
    history = runs.diagnostics.read_history_csv(os.path.join(run_dir, runs.HISTORY))
    return int(np.nansum(history.get("aggressive", [0])))


def confusion_table(rows, entry_point):
    labels = list(dict.fromkeys([r["expected"] for r in rows]))
    verdicts = list(
        dict.fromkeys(["healthy", "partial collapse", "collapsed", "over-regularized", "forced by free bits"])
    )
    lines = [f"| expected \\ {entry_point} | " + " | ".join(verdicts) + " |", "|---" * (len(verdicts) + 1) + "|"]
    for label in labels:
        counts = [sum(r["expected"] == label and r[entry_point] == v for r in rows) for v in verdicts]
        lines.append(f"| {label} | " + " | ".join(str(c) for c in counts) + " |")
    return "\n".join(lines)


def main_():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", default="collapse-calibration")
    parser.add_argument("--ptb-dir", default=PTB_DIR)
    parser.add_argument("--runs", default=",".join(RUNS), help="comma-separated names of the labelled runs")
    parser.add_argument("--no-remedy", action="store_true", help="skip the remedy measurement")
    parser.add_argument("--remedy-text", action="store_true", help="also measure the remedy on the LSTM")
    args = parser.parse_args()
    small_networks()
    paths = prepare_data(os.path.join(args.output_dir, "data"), args.ptb_dir)
    chosen = {name: RUNS[name] for name in args.runs.split(",") if name}
    if not args.no_remedy:
        chosen.update(REMEDY_RUNS)
    if args.remedy_text:
        chosen.update(TEXT_REMEDY_RUNS)
    results_path = os.path.join(args.output_dir, "results.json")
    rows = json.load(open(results_path)) if os.path.exists(results_path) else []
    done = {r["run"] for r in rows}
    for name, (dataset, options, expected) in chosen.items():
        if name in done:
            continue
        row = train_and_read(name, paths[dataset], options, args.output_dir)
        row["expected"] = expected
        rows.append(row)
        print(json.dumps({k: row[k] for k in ("run", "expected", "monitor", "summary", "diagnose")}), flush=True)
        with open(results_path, "w") as file:
            json.dump(rows, file, indent=2)
    labelled = [r for r in rows if r["expected"]]
    lines = ["# Collapse calibration", ""]
    for entry_point in ("monitor", "summary", "diagnose"):
        lines += [f"## {entry_point}", "", confusion_table(labelled, entry_point), ""]
    lines += [
        "## Runs",
        "",
        "| run | expected | monitor | summary | diagnose | I(x; z) [95%] | decoder gap | AU | KL | IW-NLL (K=100, 50) | train s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        low, high = r["mutual_info_interval"]
        lines.append(
            f"| {r['run']} | {r['expected'] or '–'} | {r['monitor']} | {r['summary']} | {r['diagnose']} | "
            f"{r['mutual_info']:.2f} [{low:.2f}, {high:.2f}] | {r['decoder_gap']:.2f} | {r['active_units']} | "
            f"{r['kl']:.2f} | {r['iw_nll']:.2f} | {r['train_seconds']:.0f} |"
        )
    with open(os.path.join(args.output_dir, "results.md"), "w") as file:
        file.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main_()
