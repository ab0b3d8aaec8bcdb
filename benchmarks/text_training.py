"""Training tokens per second of the text VAE: sentences padded to the longest against bucketed batches.

The same LSTM VAE (the command line's default for text,
`AutoregressiveVAE.from_input_shape(..., architecture="lstm")` with the
categorical likelihood over PTB's 10,000 words; `--units` and
`--embedding-dim` make it smaller) trains on Penn Treebank's training
sentences (`../shared/data/raw/ptb`) in two ways, side by side in one run:

- `padded`: every batch padded to the longest sentence of all splits (83
  tokens), as `keras_vae.datasets.load` batched text before bucketing;
- `bucketed`: `keras_vae.datasets.text.bucketed_batches`, each batch of
  sentences of similar length cut to the smallest of a few widths that holds
  its longest one (what `load`, and so `keras-vae train`, now feed).

Tokens are the real ones, words and `<eos>` (padding is not scored, so it
is not counted). Each contender first trains one batch of every width it
uses (JAX compiles one step per width); then every round times `--steps`
batches of each in turn (`fit` on them), so a slow spell of a shared machine
hits both alike, and the median round is reported:

    python benchmarks/text_training.py                          # TensorFlow
    KERAS_BACKEND=jax python benchmarks/text_training.py
    python benchmarks/text_training.py --units 128 --embedding-dim 64 --steps 30 --rounds 5
"""

import argparse
import itertools
import os
import time

import keras
import numpy as np

PTB_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data", "raw", "ptb")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ptb-dir", default=PTB_DIR, help="folder of ptb.train.txt.gz [default: %(default)s]")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20, help="batches per contender per round [default: 20]")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds [default: 5]")
    parser.add_argument("--latent-dim", type=int, default=32)
    parser.add_argument("--units", type=int, default=None, help="LSTM units [default: the CLI's, 512]")
    parser.add_argument("--embedding-dim", type=int, default=None, help="[default: the CLI's, 256]")
    return parser.parse_args()


def text_vae(length, vocabulary_size, args):
    from keras_vae import AutoregressiveVAE, likelihoods, networks

    keras.utils.set_random_seed(0)
    likelihood = likelihoods.Categorical(vocabulary_size)
    if args.units is None and args.embedding_dim is None:
        vae = AutoregressiveVAE.from_input_shape(
            (length,), latent_dim=args.latent_dim, architecture="lstm", likelihood=likelihood, seed=0
        )
    else:
        sizes = {"units": args.units or 512, "embedding_dim": args.embedding_dim or 256}
        vae = AutoregressiveVAE(
            networks.lstm_encoder((length,), args.latent_dim, vocabulary_size, **sizes),
            networks.lstm_decoder((length, vocabulary_size), args.latent_dim, **sizes),
            likelihood=likelihood,
            seed=0,
        )
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    return vae


def padded_batches(ids, batch_size, seed):
    """Today's text batches before bucketing: shuffled every epoch, padded to the longest sentence."""
    import tensorflow as tf

    rows = tf.data.Dataset.from_tensor_slices(ids).shuffle(len(ids), seed=seed, reshuffle_each_iteration=True)
    return rows.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def dataset_of(batches):
    """`fit`'s input holding exactly `batches` (NumPy arrays of any width)."""
    import tensorflow as tf

    spec = tf.TensorSpec((None, None), tf.int32)
    dataset = tf.data.Dataset.from_generator(lambda: iter(batches), output_signature=spec)
    return dataset.apply(tf.data.experimental.assert_cardinality(len(batches)))


def one_of_each_width(pipeline):
    seen = {}
    for batch in pipeline.as_numpy_iterator():
        seen.setdefault(batch.shape[1], batch)
    return list(seen.values())


def main():
    args = parse_args()
    from keras_vae.datasets import text

    train = text.read_sentences(os.path.join(args.ptb_dir, "ptb.train.txt.gz"))
    vocabulary = text.Vocabulary.from_sentences(train)
    ids = vocabulary.encode(train)
    length = ids.shape[1]
    pipelines = {
        "padded": padded_batches(ids, args.batch_size, seed=0),
        "bucketed": text.bucketed_batches(ids, args.batch_size, seed=0),
    }
    models = {name: text_vae(length, len(vocabulary), args) for name in pipelines}
    print(
        f"keras {keras.__version__} on {keras.backend.backend()}: {len(ids)} PTB sentences, {len(vocabulary)} ids, "
        f"padded to {length}; batch {args.batch_size}, latent {args.latent_dim}, "
        f"units {models['padded'].decoder.get_layer('decoder_lstm').units}"
    )
    for name, pipeline in pipelines.items():  # warm-up: compile every width
        start = time.perf_counter()
        warm = one_of_each_width(pipeline)
        models[name].fit(dataset_of(warm), epochs=1, verbose=0)
        print(f"{name}: widths {sorted(b.shape[1] for b in warm)}, warm-up {time.perf_counter() - start:.1f} s")

    rates = {name: [] for name in pipelines}
    computed = {name: [] for name in pipelines}
    for round_ in range(args.rounds):
        for name, pipeline in pipelines.items():
            batches = list(itertools.islice(pipeline.as_numpy_iterator(), args.steps))
            tokens = int(sum(np.sum(text.tokens_per_sentence(batch)) for batch in batches))
            dataset = dataset_of(batches)
            start = time.perf_counter()
            models[name].fit(dataset, epochs=1, verbose=0)
            seconds = time.perf_counter() - start
            rates[name].append(tokens / seconds)
            computed[name].append(tokens / sum(batch.size for batch in batches))
        print(f"round {round_ + 1}: " + ", ".join(f"{name} {rates[name][-1]:,.0f} tokens/s" for name in pipelines))
    median = {name: float(np.median(values)) for name, values in rates.items()}
    print()
    print("| batches | tokens/s (median) | real tokens / positions computed |")
    print("|---|---|---|")
    for name in pipelines:
        print(f"| {name} | {median[name]:,.0f} | {np.mean(computed[name]):.0%} |")
    print(f"\nbucketed / padded: {median['bucketed'] / median['padded']:.2f}x")


if __name__ == "__main__":
    main()
