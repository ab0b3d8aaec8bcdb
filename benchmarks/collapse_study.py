"""Posterior collapse with strong decoders, and its cures, side by side (He et al., 2019, Table 1).

Trains, with one architecture and one budget per dataset, a basic VAE, VAE +
linear KL annealing, β-VAE (β = 0.4), cyclical annealing, free bits, and He et
al.'s aggressive inference-network training (alone and with annealing):

- `ptb`: an LSTM VAE on Penn Treebank sentences (`../shared/data/raw/ptb`);
- `ptb-documents`: the same on PTB documents, consecutive sentences of a split
  joined into texts of 60-100 words (PTB keeps its articles' sentence order,
  so a document has one topic, which a global code can carry);
- `mnist`: a gated PixelCNN decoder on fixed binarized MNIST (TFDS `binarized_mnist`).

It writes, under `--output-dir`, a table in He et al.'s format (importance-
weighted NLL, KL, mutual information I(x; z) and active units on held-out
data, perplexity for text, training time relative to the basic VAE) as
`results.md` and `results.json`, and one figure per dataset with the KL, MI
and active-unit curves of every method (`curves_DATASET.png`).

Reduced setting (subsets and a few epochs): all 7 methods on both datasets
in 45 minutes on 2 idle CPU cores (see docs/collapse-study.md):

    python benchmarks/collapse_study.py

(TensorFlow, the default backend: on CPU its convolution gradients were 3-4
times faster than JAX's for the PixelCNN.)

Text setting (He et al. on text, with the fast text path: batches bucketed by
length): basic, annealing, aggressive, aggressive + annealing and the LSTM
language model without a latent (`language model`), on PTB documents and on
PTB sentences, in 31 minutes on 2 idle CPU cores:

    python benchmarks/collapse_study.py --setting text

(`--epochs` scales its budget, e.g. three times the epochs, 15 minutes:
`--setting text --datasets ptb-documents --methods basic,aggressive --epochs 18`.)

Full setting (He et al.'s sizes: all of PTB with a 1024-unit LSTM, all of
binarized MNIST; days on a CPU, hours on a GPU):

    python benchmarks/collapse_study.py --setting full
"""

import argparse
import dataclasses
import json
import os
import time

import keras
import numpy as np

from keras_vae import AutoregressiveVAE, LanguageModel, likelihoods, names, networks, plotting, schedules
from keras_vae import datasets as data
from keras_vae.datasets import text
from keras_vae.evaluation import report
from keras_vae.files import atomic_path, write_json
from keras_vae.ops import latent
from keras_vae.trainers.aggressive import first_epoch_without_rise

PTB_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data", "raw", "ptb")
# He et al.'s optimizer for text: SGD at 1.0 with gradients clipped to norm 5.
OPTIMIZERS = {"adam": "adam", "sgd": {"class_name": "SGD", "config": {"learning_rate": 1.0, "global_clipnorm": 5.0}}}
LANGUAGE_MODEL = "language model"  # the decoder without a latent: the baseline of text NLLs
METHODS = (
    "basic",
    "annealing",
    "beta 0.4",
    "cyclical",
    "free bits",
    "aggressive",
    "aggressive + annealing",
    LANGUAGE_MODEL,
)
TEXT_METHODS = ("basic", "annealing", "aggressive", "aggressive + annealing", LANGUAGE_MODEL)
# What each setting runs by default: (datasets, methods).
DEFAULTS = {
    "reduced": (("ptb", "mnist"), METHODS[:-1]),
    "full": (("ptb", "mnist"), METHODS[:-1]),
    "text": (("ptb-documents", "ptb"), TEXT_METHODS),
}


@dataclasses.dataclass
class Setting:
    """One dataset's data sizes, networks and budget."""

    num_train: int
    num_validation: int  # for I(x; z) during training (aggressive mode's switch) and the curves
    num_test: int  # KL, MI and active units of the table
    num_nll: int  # the first this many test examples for the IW-NLL: `num_samples` decoder passes each
    epochs: int
    batch_size: int
    latent_dim: int
    network: dict  # sizes, for the encoder and the decoder
    max_words: int = 0  # text: sentences (or documents) of at most this many words (0: all)
    document_words: tuple = ()  # text: (min, max) words of documents of consecutive sentences; () for sentences
    bucketed: bool = False  # text: batches bucketed by length (padding bounded) instead of padded to the longest
    vocabulary_size: int = 10_000  # text
    num_samples: int = 500
    free_bits: float = 0.25  # nats per dimension
    decoder_options: dict = dataclasses.field(default_factory=dict)  # e.g. dropout, for the decoder only
    max_inner_steps: int = 100
    inner_check_every: int = 10
    mi_patience: int = 1
    min_mi_gain: float = 0.05
    # The same for every method: a `keras.optimizers.get` identifier (a name or a config dict).
    optimizer: object = "adam"


SETTINGS = {
    "reduced": {
        "ptb": Setting(
            2000,
            400,
            400,
            40,
            5,
            32,
            32,
            {"embedding_dim": 128, "units": 128},
            max_words=20,
            vocabulary_size=5000,
            max_inner_steps=20,
            inner_check_every=5,
        ),
        # Adam at 3e-3: at 1e-3, 235 iterations left the basic VAE's unused posteriors 3 nats from the prior.
        "mnist": Setting(
            1000,
            400,
            400,
            20,
            10,
            32,
            32,
            {"filters": 16, "num_blocks": 5},
            max_inner_steps=20,
            inner_check_every=5,
            optimizer={"class_name": "Adam", "config": {"learning_rate": 3e-3}},
        ),
    },
    # He et al. on text with the fast text path (bucketed batches), documents beside sentences.
    "text": {
        "ptb-documents": Setting(
            1500,
            200,
            200,
            50,
            6,
            32,
            32,
            {"embedding_dim": 128, "units": 128},
            vocabulary_size=5000,
            document_words=(60, 100),
            bucketed=True,
            num_samples=100,
            max_inner_steps=20,
            inner_check_every=5,
        ),
        "ptb": Setting(
            4000,
            400,
            400,
            50,
            6,
            32,
            32,
            {"embedding_dim": 128, "units": 128},
            vocabulary_size=5000,
            bucketed=True,
            num_samples=100,
            max_inner_steps=20,
            inner_check_every=5,
        ),
    },
    "full": {
        "ptb": Setting(42_068, 3370, 3761, 3761, 40, 32, 32, {"embedding_dim": 512, "units": 1024}),
        "mnist": Setting(50_000, 10_000, 10_000, 10_000, 40, 32, 32, {"filters": 64, "num_blocks": 8}),
    },
}


# Data ------------------------------------------------------------------------------------


def is_text(dataset):
    return dataset.startswith("ptb")


def ptb_arrays(setting, ptb_dir):
    """Token ids of the train / validation / test sentences (or documents), and the vocabulary."""
    rng = np.random.default_rng(0)

    def sentences(split, count):
        found = text.read_sentences(os.path.join(ptb_dir, f"ptb.{split}.txt.gz"))
        if setting.document_words:  # joined within the split, in the source's order
            found = text.join_documents(found, *setting.document_words)
        if setting.max_words:
            found = [s for s in found if len(s) <= setting.max_words]
        return [found[i] for i in np.sort(rng.permutation(len(found))[:count])]

    train = sentences("train", setting.num_train)
    vocabulary = text.Vocabulary.from_sentences(train, max_size=setting.vocabulary_size)
    length = (setting.max_words or max(len(s) for s in train)) + 1
    splits = [
        vocabulary.encode(s, length)
        for s in (train, sentences("valid", setting.num_validation), sentences("test", setting.num_test))
    ]
    return splits, vocabulary


def mnist_arrays(setting):
    """Fixed binarized MNIST (Larochelle's split, from TFDS): train / validation / test subsets."""
    take = lambda split, count: data.labelled_arrays("binarized_mnist", f"{split}[:{count}]")[0]  # noqa: E731
    return [
        take("train", setting.num_train),
        take("validation", setting.num_validation),
        take("test", setting.num_test),
    ], None


# Methods ---------------------------------------------------------------------------------


def compile_options(method, setting, total_steps):
    """`compile` arguments of each method, He et al.'s choices where they state them."""
    # He et al. anneal β from 0.1 to 1 over the first 10 of 100 epochs; with a few
    # epochs, over the first half of training.
    warmup = schedules.LinearWarmup(max(1, total_steps // 2), start=0.1)
    aggressive = {
        "aggressive": True,
        "max_inner_steps": setting.max_inner_steps,
        "inner_check_every": setting.inner_check_every,
        "mi_patience": setting.mi_patience,
    }
    return {
        "basic": {},
        "annealing": {"beta": warmup},
        "beta 0.4": {"beta": 0.4},
        "cyclical": {"beta": schedules.Cyclical(total_steps, n_cycles=4)},
        "free bits": {"free_bits": setting.free_bits},
        "aggressive": aggressive,
        "aggressive + annealing": {"beta": warmup, **aggressive},
    }[method]


class LatentCurves(keras.callbacks.Callback):
    """KL, I(x; z) and active units on held-out data every `every` iterations; its own time is kept apart."""

    def __init__(self, x, every):
        super().__init__()
        self.x, self.every, self.records, self.seconds = x, every, [], 0.0

    def on_train_batch_end(self, batch, logs=None):
        step = int(keras.ops.convert_to_numpy(self.model.train_iterations))
        if step == 1 or step % self.every == 0:
            start = time.perf_counter()
            stats = latent.latent_statistics(self.model, self.x)
            self.records.append(
                {
                    "step": step,
                    "kl": stats["kl"],
                    "mutual_info": stats["mutual_info"],
                    "active_units": stats["active_units"],
                }
            )
            self.seconds += time.perf_counter() - start


def run_method(dataset, method, setting, splits, vocabulary):
    train, validation, test = splits
    keras.utils.set_random_seed(0)
    if method == LANGUAGE_MODEL:
        return run_language_model(setting, splits, vocabulary)
    if is_text(dataset):
        shape = train.shape[1:]
        vae = AutoregressiveVAE(
            networks.lstm_encoder(shape, setting.latent_dim, len(vocabulary), **setting.network),
            networks.lstm_decoder(
                (*shape, len(vocabulary)), setting.latent_dim, **setting.network, **setting.decoder_options
            ),
            likelihood=likelihoods.Categorical(len(vocabulary)),
            seed=0,
            data_shape=shape,
        )
    else:
        shape = train.shape[1:]
        vae = AutoregressiveVAE(
            networks.conv_encoder(shape, setting.latent_dim),
            networks.pixelcnn_decoder(shape, setting.latent_dim, **setting.network, **setting.decoder_options),
            likelihood="bernoulli",
            seed=0,
        )
    vae.initialize_decoder_bias(train)
    batches, steps_per_epoch = training_batches(setting, train)
    vae.compile(
        optimizer=keras.optimizers.get(setting.optimizer),
        **compile_options(method, setting, steps_per_epoch * setting.epochs),
    )
    curves = LatentCurves(validation, every=max(1, steps_per_epoch // 3))
    start = time.perf_counter()
    history = vae.fit(
        batches,
        epochs=setting.epochs,
        batch_size=None if setting.bucketed else setting.batch_size,
        validation_data=(validation,),
        callbacks=[curves],
        verbose=0,
    )
    seconds = time.perf_counter() - start - curves.seconds
    # The IW-NLL takes `num_samples` decoder passes per example: on the first `num_nll` test examples only.
    result = report.evaluate(
        vae, test, num_samples=setting.num_samples, nll_examples=setting.num_nll, text=vocabulary is not None, seed=0
    )
    row = {
        "method": method,
        "nll": result.importance_weighted_nll,
        "kl": result.kl_loss,
        "mutual_info": result.mutual_info,
        "active_units": result.active_units,
        "seconds": seconds,
        "final_train_loss": float(history.history["loss"][-1]),
        "aggressive_epochs": int(sum(history.history.get(names.AGGRESSIVE, []))),
        # He et al.'s rule (end at the first epoch whose I(x; z) is not above the previous one's) on the
        # epochs that ran aggressive; None: it would not have ended it before ours did.
        "he_rule_epoch": first_epoch_without_rise(
            [m for m in history.history.get(names.VAL_MUTUAL_INFO, []) if np.isfinite(m)]
        ),
        # per epoch, in aggressive runs: mean inner encoder steps per iteration, and the switch's I(x; z)
        "encoder_steps": history.history.get(names.ENCODER_STEPS),
        "val_mutual_info": history.history.get(names.VAL_MUTUAL_INFO),
    }
    if vocabulary is not None:
        row["perplexity"] = result.perplexity
        row["tokens_per_second"] = epoch_tokens(train) * setting.epochs / seconds
        row["greedy_reconstructions"] = vocabulary.decode(vae.reconstruct(test[:3]))
        row["originals"] = vocabulary.decode(test[:3])
    return row, curves.records


def training_batches(setting, train):
    """What `fit` trains on, and the iterations per epoch: bucketed batches for the fast text path, else the array."""
    if not setting.bucketed:
        return train, -(-len(train) // setting.batch_size)
    batches = text.bucketed_batches(train, setting.batch_size, shuffle=True, seed=0)
    return batches, sum(1 for _ in batches)


def epoch_tokens(ids):
    """Tokens a text model scores in one pass over `ids`: words and `<eos>`, not padding."""
    return int(np.sum(text.tokens_per_sentence(ids)))


def run_language_model(setting, splits, vocabulary):
    """The text VAE's decoder without a latent, trained and scored as the VAEs are: its NLL is exact."""
    train, _, test = splits
    keras.utils.set_random_seed(0)
    model = LanguageModel.from_vocabulary_size(len(vocabulary), **setting.network, **setting.decoder_options)
    model.initialize_output_bias(train)  # as the VAEs' decoders start (`initialize_decoder_bias`)
    model.compile(optimizer=keras.optimizers.get(setting.optimizer))
    batches, _ = training_batches(setting, train)
    start = time.perf_counter()
    history = model.fit(
        batches, epochs=setting.epochs, batch_size=None if setting.bucketed else setting.batch_size, verbose=0
    )
    seconds = time.perf_counter() - start
    nll = model.nll(test[: setting.num_nll])
    row = {
        "method": LANGUAGE_MODEL,
        "nll": float(np.mean(nll)),
        "kl": 0.0,
        "mutual_info": 0.0,
        "active_units": 0,
        "seconds": seconds,
        "final_train_loss": float(history.history["loss"][-1]),
        "aggressive_epochs": 0,
        "perplexity": text.perplexity(nll, test[: setting.num_nll]),
        "tokens_per_second": epoch_tokens(train) * setting.epochs / seconds,
    }
    return row, []


def table(dataset, rows, setting):
    """He et al.'s Table 1 columns; for text also perplexity and training tokens/s; for aggressive runs the
    epochs aggressive mode lasted, and when He et al.'s own rule would have ended it."""
    basic = next((r["seconds"] for r in rows if r["method"] == "basic"), None)
    text_columns = " PPL | tokens/s |" if is_text(dataset) else ""
    lines = [
        f"| method | IW-NLL (K={setting.num_samples}, {setting.num_nll} ex.) | KL | MI | AU |{text_columns} "
        "time (s) | relative time | aggressive epochs (He et al.'s rule) |",
        "|---|---|---|---|---|" + ("---|---|" if is_text(dataset) else "") + "---|---|---|",
    ]
    for r in rows:
        latent_free = r["method"] == LANGUAGE_MODEL
        code = "– | – | –" if latent_free else f"{r['kl']:.2f} | {r['mutual_info']:.2f} | {r['active_units']}"
        extra = f" {r['perplexity']:.1f} | {r.get('tokens_per_second', 0):.0f} |" if is_text(dataset) else ""
        relative = f"{r['seconds'] / basic:.2f}×" if basic else "–"
        aggressive = "–"
        if "aggressive" in r["method"]:
            he_rule = r.get("he_rule_epoch")
            aggressive = (
                f"{r['aggressive_epochs']} ({'≥ ' + str(r['aggressive_epochs']) if he_rule is None else he_rule})"
            )
        lines.append(
            f"| {r['method']} | {r['nll']:.2f} | {code} |{extra} {r['seconds']:.0f} | {relative} | {aggressive} |"
        )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setting", choices=sorted(SETTINGS), default="reduced")
    parser.add_argument(
        "--datasets", help="comma-separated: ptb, ptb-documents (text setting), mnist [default: the setting's]"
    )
    parser.add_argument("--methods", help="comma-separated, from: " + ", ".join(METHODS) + " [default: the setting's]")
    parser.add_argument("--epochs", type=int, help="override the setting's epochs")
    parser.add_argument(
        "--optimizer",
        choices=sorted(OPTIMIZERS),
        help="override the setting's optimizer (sgd: He et al.'s, at 1.0, clipped to 5)",
    )
    parser.add_argument(
        "--max-inner-steps", type=int, help="override aggressive training's most encoder steps per iteration"
    )
    parser.add_argument(
        "--inner-check-every", type=int, help="override aggressive training's steps between convergence checks"
    )
    parser.add_argument("--ptb-dir", default=PTB_DIR, help="folder of ptb.{train,valid,test}.txt.gz")
    parser.add_argument("--output-dir", help="[default: collapse-study, or collapse-study-SETTING]")
    args = parser.parse_args()
    default_datasets, default_methods = DEFAULTS[args.setting]
    datasets = [d.strip() for d in args.datasets.split(",")] if args.datasets else list(default_datasets)
    methods = [m.strip() for m in args.methods.split(",")] if args.methods else list(default_methods)
    if args.output_dir is None:
        args.output_dir = "collapse-study" if args.setting == "reduced" else f"collapse-study-{args.setting}"
    missing = sorted(set(datasets) - set(SETTINGS[args.setting]))
    if missing:
        parser.error(f"the {args.setting} setting has no {missing}; it has {sorted(SETTINGS[args.setting])}")
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        parser.error(f"unknown methods {unknown}; choose from {list(METHODS)}")

    os.makedirs(args.output_dir, exist_ok=True)
    results_path = os.path.join(args.output_dir, "results.json")
    results = {}
    if os.path.exists(results_path):  # other datasets of an earlier run stay in the table
        with open(results_path) as file:
            results = json.load(file)
    study_start = time.perf_counter()
    for dataset in datasets:
        setting = SETTINGS[args.setting][dataset]
        overrides = {
            "epochs": args.epochs,
            "max_inner_steps": args.max_inner_steps,
            "inner_check_every": args.inner_check_every,
        }
        overrides = {name: value for name, value in overrides.items() if value}
        if args.optimizer:
            overrides["optimizer"] = OPTIMIZERS[args.optimizer]
        setting = dataclasses.replace(setting, **overrides)
        splits, vocabulary = ptb_arrays(setting, args.ptb_dir) if is_text(dataset) else mnist_arrays(setting)
        print(
            f"== {dataset}: {len(splits[0])} training examples of shape {splits[0].shape[1:]}, {setting.epochs} epochs",
            flush=True,
        )
        # A rerun of some methods replaces their rows and curves and keeps the others (same setting).
        earlier = results.get(dataset, {})
        same = earlier.get("setting") == json.loads(json.dumps(dataclasses.asdict(setting)))
        rows = [r for r in earlier.get("rows", []) if r["method"] not in methods] if same else []
        curves = {m: c for m, c in earlier.get("curves", {}).items() if m not in methods} if same else {}
        for method in methods:
            row, curves[method] = run_method(dataset, method, setting, splits, vocabulary)
            rows.append(row)
            rows.sort(key=lambda r: METHODS.index(r["method"]))
            print(f"   {method}: {json.dumps({k: v for k, v in row.items() if k not in ('originals',)})}", flush=True)
            results[dataset] = {
                "setting": dataclasses.asdict(setting),
                "backend": keras.backend.backend(),
                "rows": rows,
                "curves": curves,
            }
            write_json(results_path, results)
        plotting.plot_collapse_curves(
            curves, os.path.join(args.output_dir, f"curves_{dataset}.png"), title=f"{dataset} ({args.setting})"
        )
        print(table(dataset, rows, setting), flush=True)
    with atomic_path(os.path.join(args.output_dir, "results.md")) as temporary, open(temporary, "w") as file:
        for dataset, result in results.items():
            file.write(f"## {dataset}\n\n{table(dataset, result['rows'], Setting(**result['setting']))}\n\n")
    print(f"Done in {time.perf_counter() - study_start:.0f} s; results in {args.output_dir}/", flush=True)


if __name__ == "__main__":
    main()
