"""AutoregressiveVAE with the PixelCNN decoder, and text and PixelCNN runs through `data.load` and the command line."""

import gzip
import json

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from conftest import INPUT_SHAPE, prototype_images, to_numpy
from keras_vae import AutoregressiveVAE, networks, schedules
from keras_vae import datasets as data
from keras_vae.app.cli import main
from keras_vae.datasets import text
from keras_vae.evaluation import metrics

WORDS = ["the", "cat", "dog", "sat", "ran", "on", "a", "mat", "far"]


def write_sentences(path, n, seed, gzipped=False):
    rng = np.random.default_rng(seed)
    lines = [" ".join(rng.choice(WORDS, rng.integers(2, 7))) for _ in range(n)]
    opener = gzip.open if gzipped else open
    with opener(path, "wt") as file:
        file.write("\n".join(lines) + "\n")
    return lines


def small_pixelcnn_vae(latent_dim=3, seed=0):
    keras.utils.set_random_seed(seed)
    return AutoregressiveVAE(
        networks.mlp_encoder(INPUT_SHAPE, latent_dim, hidden_units=(16,)),
        networks.pixelcnn_decoder(INPUT_SHAPE, latent_dim, filters=8, num_blocks=2),
        seed=seed,
    )


# The PixelCNN VAE ------------------------------------------------------------------------


def test_pixelcnn_vae_trains_with_annealing_and_free_bits_and_samples_binary_images():
    x, _ = prototype_images(256)
    vae = small_pixelcnn_vae()
    vae.initialize_decoder_bias(x)
    vae.compile(optimizer=keras.optimizers.Adam(3e-3), beta=schedules.LinearWarmup(40, start=0.1), free_bits=0.05)
    history = vae.fit(x, epochs=4, batch_size=32, verbose=0).history
    assert np.isfinite(history["loss"]).all() and history["loss"][-1] < history["loss"][0]
    assert min(history["kl_loss"]) >= 0 and history["beta"][0] < history["beta"][-1] <= 1.0
    samples = vae.sample(4, seed=0)
    assert samples.shape == (4, *INPUT_SHAPE) and set(np.unique(samples)) <= {0.0, 1.0}
    greedy = vae.reconstruct(x[:4])
    assert greedy.shape == (4, *INPUT_SHAPE) and set(np.unique(greedy)) <= {0.0, 1.0}
    nll = to_numpy(metrics.importance_weighted_nll(vae, x[:6], num_samples=8, seed=0))
    assert nll.shape == (6,) and np.isfinite(nll).all() and (nll > 0).all()


def test_generation_writes_each_pixel_from_the_pixels_before_it():
    """Greedy generation is a fixed point: re-scoring the generated image picks the same pixels."""
    vae = small_pixelcnn_vae()
    z = np.random.default_rng(0).normal(size=(3, 3)).astype("float32")
    generated = vae.generate(z, method="greedy")
    logits = to_numpy(vae.decoder([z, generated]))
    np.testing.assert_array_equal((logits > 0).astype("float32"), generated)


def test_pixelcnn_vae_aggressive_training_and_its_round_trip(tmp_path):
    x, _ = prototype_images(128)
    vae = small_pixelcnn_vae()
    vae.compile(aggressive=True, max_inner_steps=4, inner_check_every=2)
    history = vae.fit(x, epochs=2, batch_size=32, validation_data=(x[:64],), verbose=0).history
    assert history["encoder_steps"][0] >= 2 and np.isfinite(history["loss"]).all()
    vae.save(tmp_path / "pixelcnn.keras")
    loaded = keras.saving.load_model(tmp_path / "pixelcnn.keras")
    assert type(loaded) is AutoregressiveVAE
    outputs, again = vae(x[:4]), loaded(x[:4])
    np.testing.assert_allclose(to_numpy(again["z_mean"]), to_numpy(outputs["z_mean"]), rtol=1e-5, atol=1e-6)
    z = to_numpy(outputs["z_mean"])
    np.testing.assert_allclose(
        to_numpy(loaded.decoder([z, x[:4]])), to_numpy(vae.decoder([z, x[:4]])), rtol=1e-5, atol=1e-5
    )


def test_the_default_pixelcnn_vae_builds_for_mnist_shapes():
    vae = AutoregressiveVAE.from_input_shape((28, 28, 1), latent_dim=4)
    outputs = vae(np.zeros((2, 28, 28, 1), "float32"))
    assert outputs["decoded"].shape == (2, 28, 28, 1) and vae.data_shape == (28, 28, 1)
    with pytest.raises(ValueError, match="generate"):
        vae._decoder_inputs(outputs["z"], None, None)
    with pytest.raises(ValueError, match="lstm_decoder"):  # beam search is for words
        vae.generate(np.zeros((1, 4), "float32"), method="beam")
    with pytest.raises(ValueError, match="shape"):
        vae.generate(np.zeros((1, 4), "float32"), length=5)


# Text through data.load ------------------------------------------------------------------


@pytest.mark.backend_independent
def test_a_text_file_loads_as_token_ids_with_its_sibling_splits(tmp_path):
    train = write_sentences(tmp_path / "toy.train.txt.gz", 50, 0, gzipped=True)
    test = write_sentences(tmp_path / "toy.test.txt.gz", 12, 1, gzipped=True)
    valid = write_sentences(tmp_path / "toy.valid.txt.gz", 9, 2, gzipped=True)
    datasets = data.load(tmp_path / "toy.train.txt.gz", batch_size=16)
    assert datasets.vocabulary is not None and datasets.name == "toy.train"
    assert (datasets.num_train, datasets.num_validation, datasets.num_test) == (50, 9, 12)
    longest = max(len(s.split()) for s in train + test + valid)
    assert datasets.input_shape == (longest + 1,)
    batch = next(iter(datasets.test.as_numpy_iterator()))
    assert batch.dtype == np.int32 and batch.shape == (12, longest + 1)
    assert datasets.vocabulary.decode(batch) == test
    x, labels = datasets.probe(5)
    assert labels is None and datasets.vocabulary.decode(x) == test[:5]


@pytest.mark.backend_independent
def test_a_text_file_alone_holds_out_a_seeded_validation_part(tmp_path):
    lines = write_sentences(tmp_path / "notes.txt", 40, 0)
    first, second = (data.load(tmp_path / "notes.txt", validation_fraction=0.25, seed=3) for _ in range(2))
    assert (first.num_train, first.num_validation, first.num_test) == (30, 10, 10)
    held_out = first.vocabulary.decode(next(iter(first.validation.as_numpy_iterator())))
    assert held_out == second.vocabulary.decode(next(iter(second.validation.as_numpy_iterator())))
    assert set(held_out) <= set(lines)
    with pytest.raises(data.DataError, match="validation_fraction"):
        data.load(tmp_path / "notes.txt", validation_fraction=0.0)
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(data.DataError, match="one sentence per line"):
        data.load(tmp_path / "empty.txt")
    with pytest.raises(data.DataError, match="no conditions"):
        data.load(tmp_path / "notes.txt", conditions=("batch",))
    with pytest.raises(data.DataError, match="No such file"):
        data.load(tmp_path / "missing.txt")


# The command line ------------------------------------------------------------------------


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.slow  # a whole run through the command line: train, evaluate, sample, export
def test_a_text_run_trains_evaluates_samples_sentences_and_exports_encode_and_embed(tmp_path, small_default_networks):
    write_sentences(tmp_path / "toy.train.txt", 96, 0)
    write_sentences(tmp_path / "toy.test.txt", 16, 1)
    output = tmp_path / "run"
    options = "--epochs 2 --batch-size 16 --latent-dim 2 --aggressive --max-inner-steps 3 --free-bits 0.1 --quiet"
    result = invoke("train", "--dataset", tmp_path / "toy.train.txt", *options.split(), "--output", output)
    assert result.exit_code == 0, result.output
    config = json.loads((output / "config.json").read_text())["train"]
    assert (config["architecture"], config["likelihood"]) == ("lstm", "categorical")
    assert (
        text.Vocabulary.load(output / "vocabulary.json").tokens[4:]
        == data.load(tmp_path / "toy.train.txt").vocabulary.tokens[4:]
    )

    result = invoke("evaluate", output, "-k", "4", "--quiet")
    assert result.exit_code == 0, result.output
    evaluation = json.loads((output / "evaluation.json").read_text())
    assert evaluation["perplexity"] > 1 and np.isfinite(evaluation["importance_weighted_nll"])
    assert "perplexity" in result.output

    result = invoke("sample", output, "-n", "5")
    assert result.exit_code == 0, result.output
    samples = (output / "samples" / "samples.txt").read_text().splitlines()
    assert samples[0].startswith("#") and len(samples) == 6
    assert all(word in WORDS + ["<unk>"] for line in samples[1:] for word in line.split())
    assert (output / "samples" / "reconstructions.txt").exists() and (output / "samples" / "interpolation.txt").exists()

    # Encoding needs no autoregression: the export has encode and embed, and says why not the others.
    result = invoke("export", output, tmp_path / "export")
    assert result.exit_code == 0, result.output
    assert "signatures: encode, embed (" in result.output
    assert "decode, reconstruct, sample: not exported: an autoregressive decoder" in result.output


@pytest.mark.backend_independent  # the command's choice of model; the range test itself is tested on every backend
def test_lr_find_on_text_uses_the_text_vae(tmp_path, small_default_networks):
    write_sentences(tmp_path / "toy.txt", 64, 0)
    plot = tmp_path / "lr.png"
    result = invoke(
        "lr-find", "--dataset", tmp_path / "toy.txt", "--steps", "10", "--batch-size", "16", "--quiet", "--output", plot
    )
    assert result.exit_code in (0, 1), result.output  # 1: the loss did not fall in 10 steps
    losses = json.loads((tmp_path / "lr.json").read_text())["losses"]
    # Sentence NLLs under a categorical likelihood: positive and finite (a Bernoulli on token ids is neither).
    assert len(losses) >= 2 and all(loss is not None and np.isfinite(loss) and loss > 0 for loss in losses)


@pytest.mark.backend_independent
@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--architecture", "mlp"], ["holds sentences", "--architecture lstm"]),
        (["--likelihood", "gaussian"], ["holds sentences", "--likelihood"]),
    ],
)
def test_text_runs_refuse_other_networks_in_one_line(tmp_path, args, fragments):
    write_sentences(tmp_path / "toy.txt", 40, 0)
    result = invoke(
        "train", "--dataset", tmp_path / "toy.txt", "--epochs", "1", "--quiet", "--output", tmp_path / "run", *args
    )
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and all(fragment in lines[0] for fragment in fragments), result.output
    assert not (tmp_path / "run").exists()


@pytest.mark.slow  # a whole run through the command line: train with figures, then sample
def test_images_refuse_the_text_networks_and_a_pixelcnn_run_trains(tmp_path, small_default_networks):
    x, labels = prototype_images(96)
    x = np.pad(x, ((0, 0), (0, 2), (0, 2), (0, 0)))  # 8×8: the conv encoder halves it twice
    np.savez(tmp_path / "images.npz", x_train=x[:64], y_train=labels[:64], x_test=x[64:], y_test=labels[64:])
    result = invoke(
        "train", "--dataset", tmp_path / "images.npz", "--architecture", "lstm", "--quiet", "--output", tmp_path / "bad"
    )
    assert result.exit_code == 2 and "not sentences" in result.output and not (tmp_path / "bad").exists()
    output = tmp_path / "run"
    options = "--architecture pixelcnn --epochs 2 --batch-size 32 --latent-dim 2 --beta-schedule cyclical --quiet"
    result = invoke("train", "--dataset", tmp_path / "images.npz", *options.split(), "--output", output)
    assert result.exit_code == 0, result.output
    summary = json.loads((output / "summary.json").read_text())
    assert np.isfinite(summary["test"]["negative_elbo"]) and summary["test"]["kl_loss"] >= 0
    assert any(path.name.startswith("latent_space") for path in (output / "diagnostics").iterdir())
    result = invoke("sample", output, "-n", "2")
    assert result.exit_code == 0, result.output
    assert (output / "samples" / "samples.png").exists()
