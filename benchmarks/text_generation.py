"""Generation tokens per second of the text VAE: re-running the decoder per position against carrying the LSTM state.

The same LSTM VAE (the command line's default for text: embedding 256, 512
units, 32 latent dimensions, a categorical likelihood over 10,000 words;
untrained, its `<eos>` logit lowered so that every output is `--length`
tokens long) generates from `--batch` codes, side by side in one run:

- `rerun greedy`: `generate(z, method="greedy", cached=False)`, the decoder
  run on the whole sequence once per position (what `generate` did before);
- `cached greedy`, `cached sample`, `cached beam`: `networks.LSTMDecoderSteps`,
  one LSTM step per position with the state carried, in one compiled loop
  (beam search keeps `--beam-width` sequences per code; its tokens/s counts
  the tokens it returns, not the k times as many it scores).

Each contender first generates once (tracing, compiling); then every round
times one generation of each in turn, so a slow spell of a shared machine
hits them all alike, and the median is reported:

    python benchmarks/text_generation.py                 # TensorFlow
    KERAS_BACKEND=jax python benchmarks/text_generation.py
    python benchmarks/text_generation.py --length 50 --batch 32 --rounds 5
"""

import argparse
import time

import keras
import numpy as np


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--length", type=int, default=50, help="tokens per output [default: 50]")
    parser.add_argument("--batch", type=int, default=32, help="codes generated from at once [default: 32]")
    parser.add_argument("--vocabulary-size", type=int, default=10_000)
    parser.add_argument("--latent-dim", type=int, default=32)
    parser.add_argument("--units", type=int, default=512)
    parser.add_argument("--embedding-dim", type=int, default=256)
    parser.add_argument("--beam-width", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds [default: 3]")
    return parser.parse_args()


def text_vae(args):
    from keras_vae import AutoregressiveVAE, likelihoods, names, networks

    keras.utils.set_random_seed(0)
    vae = AutoregressiveVAE(
        networks.lstm_encoder((args.length,), args.latent_dim, args.vocabulary_size, args.embedding_dim, args.units),
        networks.lstm_decoder(
            (args.length, args.vocabulary_size), args.latent_dim, embedding_dim=args.embedding_dim, units=args.units
        ),
        likelihood=likelihoods.Categorical(args.vocabulary_size),
        data_shape=(args.length,),
        seed=0,
    )
    # An untrained model ends its sentences at random: keep every output `length` tokens long.
    bias = vae.decoder.get_layer(networks.DECODER_LAYERS["logits"]).bias
    values = np.asarray(keras.ops.convert_to_numpy(bias)).copy()
    values[names.EOS] = -1e4
    bias.assign(values)
    return vae


def main():
    args = parse_args()
    vae = text_vae(args)
    z = np.random.default_rng(0).standard_normal((args.batch, args.latent_dim)).astype("float32")
    contenders = {
        "rerun greedy": lambda: vae.generate(z, method="greedy", cached=False),
        "cached greedy": lambda: vae.generate(z, method="greedy"),
        "cached sample": lambda: vae.generate(z, method="sample", seed=0),
        f"cached beam (k={args.beam_width})": lambda: vae.generate(z, method="beam", beam_width=args.beam_width),
    }
    first_call, tokens = {}, {}
    for name, generate in contenders.items():
        start = time.perf_counter()
        generated = generate()
        first_call[name] = time.perf_counter() - start
        tokens[name] = int((generated != 0).sum())
    np.testing.assert_array_equal(contenders["rerun greedy"](), contenders["cached greedy"]())
    seconds = {name: [] for name in contenders}
    for round_ in range(args.rounds):
        for name, generate in contenders.items():
            start = time.perf_counter()
            generate()
            seconds[name].append(time.perf_counter() - start)
        print(f"round {round_ + 1}: " + ", ".join(f"{name} {seconds[name][-1]:.2f} s" for name in contenders))
    median = {name: float(np.median(values)) for name, values in seconds.items()}
    baseline = tokens["rerun greedy"] / median["rerun greedy"]
    print(
        f"\n{keras.backend.backend()}: {args.batch} codes × {args.length} tokens, vocabulary {args.vocabulary_size}, "
        f"embedding {args.embedding_dim}, {args.units} units; median of {args.rounds} rounds\n"
    )
    print("| generation | first call s | s (median) | tokens/s | vs rerun greedy |")
    print("|---|---:|---:|---:|---:|")
    for name in contenders:
        rate = tokens[name] / median[name]
        print(f"| {name} | {first_call[name]:.2f} | {median[name]:.3f} | {rate:,.0f} | {rate / baseline:.1f}× |")


if __name__ == "__main__":
    main()
