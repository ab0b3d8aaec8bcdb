"""The fast text path's data: batches bucketed by length, documents of consecutive sentences, and their flag."""

import math

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from conftest import to_numpy
from keras_vae import AutoregressiveVAE, likelihoods, networks
from keras_vae import datasets as data
from keras_vae.app.cli import main
from keras_vae.datasets import text
from keras_vae.datasets.batching import concatenate_batches

WORDS = ["the", "cat", "dog", "sat", "ran", "on", "a", "mat", "far"]


def random_ids(n=203, length=40, seed=0):
    """Rows of 1 to length - 1 words and `<eos>`, padded: sentences of many lengths."""
    rng = np.random.default_rng(seed)
    ids = np.zeros((n, length), "int32")
    for row, words in enumerate(rng.integers(1, length, n)):
        ids[row, :words] = rng.integers(4, 30, words)
        ids[row, words] = text.EOS
    return ids


def epoch(batches):
    return list(batches.as_numpy_iterator())


def padded(batches, length):
    return np.concatenate([np.pad(batch, ((0, 0), (0, length - batch.shape[1]))) for batch in batches])


def sorted_rows(ids):
    return sorted(map(tuple, ids))


def numbered_sentences(lengths, start=0):
    """Sentences whose words say where they come from: `w<sentence>_<position>`."""
    return [[f"w{start + i}_{j}" for j in range(n)] for i, n in enumerate(lengths)]


def write_lines(path, sentences):
    path.write_text("\n".join(" ".join(sentence) for sentence in sentences) + "\n")


# Bucketed batches ------------------------------------------------------------------------


@pytest.mark.backend_independent
def test_every_batch_is_cut_to_the_smallest_width_that_holds_its_longest_row():
    ids = random_ids()
    widths = text.bucket_widths(40)
    assert widths == (8, 16, 24, 32, 40)
    for batches in (
        epoch(text.bucketed_batches(ids, 16, seed=0)),
        epoch(text.bucketed_batches(ids, 16, shuffle=False)),
    ):
        for batch in batches:
            need = np.max(np.sum(batch != text.PAD, axis=1))
            assert batch.dtype == np.int32 and batch.shape[1] == min(w for w in widths if w >= need)
        assert sorted_rows(padded(batches, 40)) == sorted_rows(ids)  # no token cut off
    assert any(batch.shape[1] == 40 for batch in epoch(text.bucketed_batches(ids, 16)))
    batches = epoch(text.bucketed_batches(ids, 16, boundaries=[10, 20, 60]))
    assert {batch.shape[1] for batch in batches} <= {10, 20, 40}


@pytest.mark.backend_independent
def test_an_epoch_holds_every_row_once_in_plain_batch_sizes_and_the_order_changes():
    ids = random_ids()
    batches = text.bucketed_batches(ids, 16, seed=0)
    first, second = epoch(batches), epoch(batches)
    for one in (first, second):
        # As many steps as plain batching: every batch full but one.
        assert sorted(len(b) for b in one) == [len(ids) % 16] + [16] * (len(ids) // 16)
        assert sorted_rows(padded(one, 40)) == sorted_rows(ids)
    assert not np.array_equal(padded(first, 40), padded(second, 40))
    # Similar lengths together: far less padding than batches in the rows' order.
    real = np.sum(ids != text.PAD)
    in_order = epoch(text.bucketed_batches(ids, 16, shuffle=False))
    assert real / sum(b.size for b in first) > real / sum(b.size for b in in_order) + 0.15
    # Seeded: the same epochs again; a tf.data.Dataset of rows works as the array does.
    np.testing.assert_array_equal(padded(epoch(text.bucketed_batches(ids, 16, seed=0)), 40), padded(first, 40))
    import tensorflow as tf

    from_rows = epoch(text.bucketed_batches(tf.data.Dataset.from_tensor_slices(ids), 16, seed=1))
    assert sorted_rows(padded(from_rows, 40)) == sorted_rows(ids)


@pytest.mark.backend_independent
def test_without_shuffle_the_rows_keep_their_order_and_batches_concatenate_back():
    ids = random_ids(50)
    batches = epoch(text.bucketed_batches(ids, 16, shuffle=False))
    assert [len(b) for b in batches] == [16, 16, 16, 2]
    np.testing.assert_array_equal(concatenate_batches(batches), ids[:, : max(b.shape[1] for b in batches)])
    np.testing.assert_array_equal(padded(batches, 40), ids)
    dicts = concatenate_batches([{"x": batches[0]}, {"x": batches[3]}])
    assert dicts["x"].shape == (18, max(batches[0].shape[1], batches[3].shape[1]))
    with pytest.raises(ValueError):  # only token ids are padded: other arrays of other shapes do not join
        concatenate_batches([np.zeros((2, 3), "float32"), np.zeros((2, 4), "float32")])


@pytest.mark.backend_independent
@pytest.mark.parametrize(
    "args, match",
    [
        ((np.zeros((4, 5), "float32"), 2), "integer token ids"),
        ((np.zeros((4,), "int32"), 2), "integer token ids"),
        ((np.zeros((4, 5), "int32"), 0), "batch_size"),
        ((np.zeros((4, 5), "int32"), 2, [4, 2]), "increasing"),
    ],
)
def test_bucketed_batches_refuse_what_they_cannot_batch(args, match):
    with pytest.raises(ValueError, match=match):
        text.bucketed_batches(*args)


@pytest.mark.backend_independent
def test_text_sources_load_as_bucketed_batches(tmp_path):
    sentences = [
        [WORDS[(i + j) % len(WORDS)] for j in range(n)] for i, n in enumerate([3, 30, 2, 4, 25, 5, 3, 28, 2, 6] * 4)
    ]
    write_lines(tmp_path / "toy.train.txt", sentences)
    write_lines(tmp_path / "toy.test.txt", sentences[:9])
    datasets = data.load(tmp_path / "toy.train.txt", batch_size=4, validation_fraction=0.25, seed=0)
    assert datasets.input_shape == (31,) and datasets.num_train == 30
    train = epoch(datasets.train)
    assert len(train) == math.ceil(30 / 4) and {b.shape[1] for b in train} <= {8, 16, 24, 31}
    assert len(padded(train, 31)) == 30 and len({b.shape[1] for b in train}) >= 2
    test = epoch(datasets.test)  # in order, trimmed
    assert datasets.vocabulary.decode(concatenate_batches(test)) == [" ".join(s) for s in sentences[:9]]
    assert [b.shape[1] for b in test] == [31, 31, 8]


# Documents -------------------------------------------------------------------------------


@pytest.mark.backend_independent
def test_documents_join_consecutive_sentences_in_order_within_the_word_range():
    lengths = [12, 5, 30, 9, 14, 3, 45, 8, 20, 7, 61, 11, 11, 2, 40, 18, 6, 9, 25, 4]
    sentences = numbered_sentences(lengths)
    documents = text.join_documents(sentences, min_words=30, max_words=50)
    assert documents and all(30 <= len(document) <= 50 for document in documents)
    previous = -1
    for document in documents:
        # A run of whole, consecutive sentences, after those of the document before.
        used = sorted({int(word.split("_")[0][1:]) for word in document})
        assert used == list(range(used[0], used[-1] + 1)) and used[0] > previous
        assert document == [word for i in used for word in sentences[i]]
        previous = used[-1]
    # The 61-word sentence is past max_words: left out, and no document spans it.
    assert all("w10_0" not in document for document in documents)
    assert not any({"w9_0", "w11_0"} <= set(document) for document in documents)
    assert text.join_documents(["a b c", "d e f g", "h i", "j"], 5, 6) == [["d", "e", "f", "g", "h", "i"]]
    assert text.join_documents(["a b", "c"], 5, 6) == []  # too few words: no document
    for low, high in ((0, 5), (6, 5), (2.5, 5)):
        with pytest.raises(ValueError, match="min_words"):
            text.join_documents(["a b"], low, high)


@pytest.mark.backend_independent
def test_documents_never_cross_splits(tmp_path):
    splits = {
        "train": numbered_sentences([7, 9, 4, 12, 6, 8, 5, 11, 3, 9, 10, 6] * 3),
        "valid": numbered_sentences([8, 5, 9, 7, 6, 4, 10], start=1000),
        "test": numbered_sentences([6, 6, 9, 3, 8, 12, 5], start=2000),
    }
    # Every word is a training word, so that the other splits decode back.
    splits["train"] += splits["valid"] + splits["test"]
    for name, sentences in splits.items():
        write_lines(tmp_path / f"toy.{name}.txt", sentences)
    datasets = data.load(tmp_path / "toy.train.txt", batch_size=4, document_words=(15, 25))
    for name, split in (("valid", datasets.validation), ("test", datasets.test)):
        expected = [" ".join(document) for document in text.join_documents(splits[name], 15, 25)]
        assert datasets.vocabulary.decode(concatenate_batches(epoch(split))) == expected
    assert datasets.num_train == len(text.join_documents(splits["train"], 15, 25))
    assert datasets.input_shape[0] <= 26

    # One file alone: whole documents are held out.
    write_lines(tmp_path / "alone.txt", splits["train"])
    alone = data.load(tmp_path / "alone.txt", batch_size=4, validation_fraction=0.2, document_words=(15, 25), seed=1)
    documents = text.join_documents(splits["train"], 15, 25)
    kept = alone.vocabulary.decode(concatenate_batches(epoch(alone.test)))  # the held-out part (its words <unk>)
    lengths = [len(document) for document in documents]
    assert kept and alone.num_train + alone.num_validation == len(documents)
    assert all(lengths.count(n) >= [len(d.split()) for d in kept].count(n) for n in lengths)
    with pytest.raises(data.DataError, match="document_words"):
        data.load("mnist", document_words=(15, 25))
    with pytest.raises(data.DataError, match="lower the documents' minimum"):
        data.load(tmp_path / "alone.txt", document_words=(500, 600))


@pytest.mark.backend_independent
@pytest.mark.parametrize(
    "value, dataset, fragment",
    [
        ("100-60", "toy.txt", "1 <= MIN <= MAX"),
        ("sixty", "toy.txt", "MIN-MAX"),
        ("0,10", "toy.txt", "MIN-MAX"),
        ("60-100", "toy.npy", "not one"),
    ],
)
def test_bad_document_words_are_one_line_errors(tmp_path, value, dataset, fragment):
    write_lines(tmp_path / "toy.txt", numbered_sentences([5] * 20))
    np.save(tmp_path / "toy.npy", np.zeros((20, 4), "float32"))
    args = ["train", "--dataset", tmp_path / dataset, "--document-words", value, "--output", tmp_path / "run", "-q"]
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "--document-words" in lines[0] and fragment in lines[0], result.output
    assert not (tmp_path / "run").exists()


# Training on bucketed batches -------------------------------------------------------------


def test_fit_runs_on_bucketed_batches_and_trimming_leaves_the_scores_unchanged():
    ids = random_ids(32, length=16, seed=1)
    vocabulary_size = 30
    keras.utils.set_random_seed(0)
    vae = AutoregressiveVAE(
        networks.lstm_encoder((16,), 2, vocabulary_size, embedding_dim=4, units=4),
        networks.lstm_decoder((16, vocabulary_size), 2, embedding_dim=4, units=4),
        likelihood=likelihoods.Categorical(vocabulary_size),
        seed=0,
    )
    train = text.bucketed_batches(ids, 8, seed=0)  # widths 8 and 16
    assert {batch.shape[1] for batch in epoch(train)} == {8, 16}
    vae.initialize_decoder_bias(train)
    expected = likelihoods.Categorical(vocabulary_size).initial_decoded(ids).reshape(-1, vocabulary_size)[0]
    np.testing.assert_allclose(to_numpy(vae.decoder.layers[-1].bias), expected, rtol=1e-5)
    vae.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = vae.fit(train, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"]).all() and history["kl_loss"][0] >= 0
    # Padding is not scored: a batch scores the same trimmed as padded to the full length.
    order = np.argsort(np.sum(ids != text.PAD, axis=1))[:6]  # rows of up to 8 tokens
    short = epoch(text.bucketed_batches(ids[order], 8, shuffle=False))[0]
    assert short.shape == (6, 8)
    z = to_numpy(vae.posterior(ids[order])[0])
    scores = [to_numpy(vae.likelihood.log_prob(x, vae.decoder([z, x]))) for x in (short, ids[order])]
    np.testing.assert_allclose(scores[0], scores[1], rtol=1e-5)
    np.testing.assert_allclose(to_numpy(vae.posterior(short)[0]), z, rtol=1e-5, atol=1e-6)
