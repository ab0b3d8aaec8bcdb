"""The text VAE: the token pipeline, the categorical likelihood, the LSTM networks and AutoregressiveVAE on words."""

import gzip
import os

import keras
import numpy as np
import pytest

from conftest import to_numpy
from keras_vae import VAE, AutoregressiveVAE, likelihoods, networks, ops, schedules
from keras_vae.datasets import text
from keras_vae.evaluation import metrics

PTB_VALID = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "raw", "ptb", "ptb.valid.txt.gz")
SENTENCES = [
    "the cat sat on the mat",
    "a dog ate the cat",
    "the mat sat",
    "a cat on a dog on a mat",
    "dogs and cats",
]
LENGTH = 10


def toy_ids(n=96, seed=0):
    """Sentences from two "topics" (which words they use), so that z has something to carry."""
    rng = np.random.default_rng(seed)
    topics = [["the", "cat", "sat", "on", "mat"], ["a", "dog", "ate", "bone", "yard"]]
    sentences = []
    for i in range(n):
        words = topics[i % 2]
        sentences.append([words[j] for j in rng.integers(0, len(words), rng.integers(3, LENGTH))])
    vocabulary = text.Vocabulary.from_sentences(sentences)
    return vocabulary.encode(sentences, LENGTH), vocabulary


def small_text_vae(vocabulary_size, latent_dim=4, word_dropout=0.0, seed=0):
    keras.utils.set_random_seed(seed)
    return AutoregressiveVAE(
        networks.lstm_encoder((LENGTH,), latent_dim, vocabulary_size, embedding_dim=8, units=16),
        networks.lstm_decoder(
            (LENGTH, vocabulary_size), latent_dim, embedding_dim=8, units=16, word_dropout=word_dropout
        ),
        likelihood=likelihoods.Categorical(vocabulary_size),
        seed=seed,
        data_shape=(LENGTH,),
    )


def assert_sentences(tokens, vocabulary_size):
    """Token ids that are never padding before a sentence's first `<eos>`, and only padding after it."""
    assert (tokens == np.round(tokens)).all() and tokens.max() < vocabulary_size
    ended_before = np.cumsum(tokens == text.EOS, axis=1) - (tokens == text.EOS) > 0
    assert (tokens[~ended_before] >= 1).all() and (tokens[ended_before] == text.PAD).all()


# The token pipeline ----------------------------------------------------------------------


@pytest.mark.backend_independent
def test_sentences_round_trip():
    vocabulary = text.Vocabulary.from_sentences([s.split() for s in SENTENCES])
    ids = vocabulary.encode(SENTENCES)
    assert ids.dtype == np.int32 and ids.shape == (len(SENTENCES), 9)  # the longest has 8 words, then <eos>
    assert vocabulary.decode(ids) == SENTENCES
    for row, sentence in zip(ids, SENTENCES):
        n = len(sentence.split())
        assert row[n] == text.EOS and (row[n + 1 :] == text.PAD).all() and (row[:n] > text.EOS).all()


@pytest.mark.backend_independent
def test_ptb_sentences_round_trip(tmp_path):
    sentences = text.read_sentences(PTB_VALID)
    assert len(sentences) == 3370  # Mikolov's split
    vocabulary = text.Vocabulary.from_sentences(sentences)
    assert "<unk>" not in vocabulary.tokens[len(text.SPECIAL_TOKENS) :]  # PTB's own <unk> is ours
    ids = vocabulary.encode(sentences)
    assert vocabulary.decode(ids) == [" ".join(s) for s in sentences]
    vocabulary.save(tmp_path / "vocabulary.json")
    assert text.Vocabulary.load(tmp_path / "vocabulary.json").tokens == vocabulary.tokens


@pytest.mark.backend_independent
def test_unknown_words_rare_words_and_cuts():
    vocabulary = text.Vocabulary.from_sentences([["b", "a", "a", "c", "c", "c"]], max_size=len(text.SPECIAL_TOKENS) + 2)
    assert vocabulary.tokens[len(text.SPECIAL_TOKENS) :] == ("c", "a")  # most frequent first; "b" left out
    assert vocabulary.decode(vocabulary.encode(["a b zebra c"])) == ["a <unk> <unk> c"]
    cut = vocabulary.encode(["a c a c"], length=3)
    assert cut.shape == (1, 3) and text.EOS not in cut  # too long: cut, without its end
    assert vocabulary.decode(cut) == ["a c a"]


@pytest.mark.backend_independent
def test_read_sentences_plain_and_gzipped(tmp_path):
    (tmp_path / "s.txt").write_text(" the cat \n\nsat down\n")
    with gzip.open(tmp_path / "s.txt.gz", "wt") as file:
        file.write("the cat\nsat down\n")
    assert (
        text.read_sentences(tmp_path / "s.txt")
        == text.read_sentences(tmp_path / "s.txt.gz")
        == [["the", "cat"], ["sat", "down"]]
    )


@pytest.mark.backend_independent
def test_perplexity_counts_words_and_end():
    ids = np.array([[5, 6, text.EOS, 0], [5, text.EOS, 0, 0]])
    nll = np.array([3.0, 2.0])
    assert text.perplexity(nll, ids) == pytest.approx(np.exp(5.0 / 5))


# The categorical likelihood --------------------------------------------------------------


def test_categorical_log_prob_is_the_sum_over_tokens_and_ignores_padding():
    rng = np.random.default_rng(0)
    ids = np.array([[4, 5, text.EOS, 0, 0], [6, text.EOS, 0, 0, 0]], "int32")
    logits = rng.normal(size=(2, 5, 8)).astype("float32")
    log_softmax = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = [sum(log_softmax[b, t, ids[b, t]] for t in range(5) if ids[b, t]) for b in range(2)]
    got = to_numpy(likelihoods.categorical_log_prob(ids.astype("float32"), keras.ops.convert_to_tensor(logits)))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert (got <= 0).all()
    changed = logits.copy()
    changed[ids == 0] = rng.normal(size=(int((ids == 0).sum()), 8)) * 100
    np.testing.assert_allclose(
        to_numpy(likelihoods.categorical_log_prob(ids, keras.ops.convert_to_tensor(changed))), got, rtol=1e-6
    )


def test_categorical_layer_and_its_config():
    layer = likelihoods.Categorical(7)
    assert layer.parameters_per_feature == 7
    rebuilt = likelihoods.Categorical.from_config(layer.get_config())
    assert (rebuilt.num_classes, rebuilt.padding_id) == (7, 0)
    logits = keras.ops.convert_to_tensor(np.random.default_rng(1).normal(size=(3, 4, 7)).astype("float32"))
    np.testing.assert_allclose(to_numpy(layer.mean(logits)).sum(-1), 1.0, rtol=1e-5)
    greedy = to_numpy(layer.draw(logits))
    drawn = to_numpy(layer.draw(logits, np.random.default_rng(2).random((3, 4)).astype("float32")))
    for tokens in (greedy, drawn):
        assert tokens.shape == (3, 4) and tokens.min() >= 1 and tokens.max() < 7  # never padding
    with pytest.raises(ValueError, match="num_classes"):
        likelihoods.Categorical(1)


def test_initial_decoded_is_the_log_unigram_frequency():
    ids = np.array([[4, 4, 4, text.EOS, 0], [5, text.EOS, 0, 0, 0]])
    initial = likelihoods.Categorical(6).initial_decoded(ids)
    assert initial.shape == (6,)
    probabilities = np.exp(initial)
    assert probabilities.sum() == pytest.approx(1.0, rel=1e-6)
    assert probabilities[4] > probabilities[text.EOS] > probabilities[5] > probabilities[0]


# The LSTM networks -----------------------------------------------------------------------


def test_lstm_decoder_position_depends_only_on_earlier_tokens():
    vocabulary_size = 12
    decoder = networks.lstm_decoder((LENGTH, vocabulary_size), 3, embedding_dim=8, units=16)
    rng = np.random.default_rng(0)
    z = rng.normal(size=(1, 3)).astype("float32")
    tokens = rng.integers(4, vocabulary_size, (1, LENGTH)).astype("float32")
    base = to_numpy(decoder([z, tokens]))
    for j in range(LENGTH):
        changed = tokens.copy()
        changed[0, j] = 4 + (changed[0, j] - 3) % (vocabulary_size - 4)
        moved = np.abs(to_numpy(decoder([z, changed])) - base).max(axis=-1)[0]
        assert (moved[: j + 1] == 0).all(), f"a token at {j} changed the logits at or before it"
        if j + 1 < LENGTH:
            assert moved[j + 1] > 0, f"the token at {j} does not reach the next position"
    other_z = to_numpy(decoder([z + 1.0, tokens]))
    assert (np.abs(other_z - base).max(axis=-1) > 0).all()  # z reaches every position, the first too


def test_lstm_encoder_ignores_padding():
    encoder = networks.lstm_encoder((LENGTH,), 3, 12, embedding_dim=8, units=16)
    ids = np.array([[5, 6, 7, text.EOS] + [0] * (LENGTH - 4)], "float32")
    wider = networks.lstm_encoder((LENGTH + 3,), 3, 12, embedding_dim=8, units=16)
    wider.set_weights(encoder.get_weights())
    for a, b in zip(encoder(ids), wider(np.pad(ids, ((0, 0), (0, 3))))):
        np.testing.assert_allclose(to_numpy(a), to_numpy(b), rtol=1e-5, atol=1e-6)


def test_word_dropout_replaces_words_in_training_only():
    layer = networks.WordDropout(0.5, seed=0)
    tokens = np.array([[text.BOS] + [7] * 200 + [0] * 20], "int32")
    dropped = to_numpy(layer(tokens, training=True))
    assert dropped[0, 0] == text.BOS and (dropped[0, 201:] == 0).all()
    assert set(np.unique(dropped[0, 1:201])) == {text.UNK, 7}
    assert 60 < (dropped[0, 1:201] == text.UNK).sum() < 140
    np.testing.assert_array_equal(to_numpy(layer(tokens)), tokens)
    assert networks.WordDropout.from_config(layer.get_config()).rate == 0.5


def test_builders_refuse_what_they_cannot_build():
    with pytest.raises(ValueError, match="AutoregressiveVAE"):
        VAE.from_input_shape((LENGTH,), architecture="lstm", likelihood=likelihoods.Categorical(10))
    with pytest.raises(ValueError, match="keras_vae.VAE"):
        AutoregressiveVAE.from_input_shape((28, 28, 1), architecture="mlp")
    with pytest.raises(ValueError, match="Categorical"):
        AutoregressiveVAE.from_input_shape((LENGTH,), architecture="lstm", likelihood="bernoulli")
    with pytest.raises(ValueError, match=r"\(length,\)"):
        networks.lstm_encoder((4, 4), 3, 10)


# The model -------------------------------------------------------------------------------


def test_text_vae_trains_and_decodes_valid_tokens(small_default_networks):
    ids, vocabulary = toy_ids()
    vae = AutoregressiveVAE.from_input_shape(
        (LENGTH,), latent_dim=4, architecture="lstm", likelihood=likelihoods.Categorical(len(vocabulary)), seed=0
    )
    vae.initialize_decoder_bias(ids)
    vae.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = vae.fit(ids, epochs=6, batch_size=32, verbose=0).history
    losses = history["loss"]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
    assert min(history["kl_loss"]) >= 0
    z = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    greedy = vae.generate(z, method="greedy")
    assert greedy.shape == (5, LENGTH) and vae.data_shape == (LENGTH,)
    np.testing.assert_array_equal(greedy, vae.decode(z))  # greedy decoding is deterministic
    for tokens in (greedy, vae.sample(5, seed=3), vae.reconstruct(ids[:5])):
        assert_sentences(tokens, len(vocabulary))
        assert all(isinstance(s, str) for s in vocabulary.decode(tokens))
    np.testing.assert_array_equal(vae.sample(3, seed=7), vae.sample(3, seed=7))


def test_text_vae_with_every_training_tool_and_its_round_trip(tmp_path):
    ids, vocabulary = toy_ids()
    vae = small_text_vae(len(vocabulary), word_dropout=0.2)
    vae.compile(
        beta=schedules.Cyclical(12, n_cycles=2), free_bits=0.1, aggressive=True, max_inner_steps=4, inner_check_every=2
    )
    history = vae.fit(ids, epochs=2, batch_size=16, validation_data=(ids[:32],), verbose=0).history
    assert np.isfinite(history["loss"]).all() and min(history["kl_loss"]) >= 0
    assert history["encoder_steps"][0] >= 2 and "val_mutual_info" in history
    nll = to_numpy(metrics.importance_weighted_nll(vae, ids[:8], num_samples=16, seed=0))
    assert nll.shape == (8,) and np.isfinite(nll).all() and (nll > 0).all()
    assert text.perplexity(nll, ids[:8]) > 1
    vae.save(tmp_path / "text.keras")
    loaded = keras.saving.load_model(tmp_path / "text.keras")
    assert type(loaded) is AutoregressiveVAE
    z = np.zeros((2, 4), "float32")
    assert loaded.data_shape == (LENGTH,)
    np.testing.assert_array_equal(loaded.generate(z, method="greedy"), vae.generate(z, method="greedy"))
    np.testing.assert_array_equal(
        loaded.generate(z, method="beam", beam_width=3), vae.generate(z, method="beam", beam_width=3)
    )
    np.testing.assert_allclose(to_numpy(loaded.embed(ids[:4])), to_numpy(vae.embed(ids[:4])), rtol=1e-5, atol=1e-6)


# Sentences of any length, and generation -------------------------------------------------


def peaked_text_vae(vocabulary_size, length, latent_dim=3, seed=0):
    """A small text VAE with large random decoder weights (the same on every backend): no near ties between tokens."""
    vae = AutoregressiveVAE(
        networks.lstm_encoder((length,), latent_dim, vocabulary_size, embedding_dim=4, units=8),
        networks.lstm_decoder((length, vocabulary_size), latent_dim, embedding_dim=4, units=8),
        likelihood=likelihoods.Categorical(vocabulary_size),
        data_shape=(length,),
    )
    rng = np.random.default_rng(seed)
    vae.decoder.set_weights([rng.normal(size=w.shape).astype("float32") for w in vae.decoder.get_weights()])
    return vae


def log_prob_given_z(vae, z, tokens):
    """log p(x|z) by teacher forcing: the decoder scores every position at once."""
    tokens = tokens.astype("float32")
    return to_numpy(vae.likelihood.log_prob(tokens, vae.decoder([z, tokens])))


def test_the_networks_take_any_length_and_a_padded_sentence_has_the_loss_of_the_trimmed_one():
    ids, vocabulary = toy_ids(8)
    vae = small_text_vae(len(vocabulary))
    vae.compile()
    for length in (LENGTH, 6):
        z_mean, _ = vae.encode(ids[:, :length])
        logits = vae.decoder([z_mean, ids[:, :length].astype("float32")])
        assert z_mean.shape == (8, 4) and tuple(logits.shape) == (8, length, len(vocabulary))
    padded = ids[:1]
    own_length = int((padded[0] != text.PAD).sum())  # its words and <eos>
    assert own_length < LENGTH
    trimmed = padded[:, :own_length]
    outputs = vae(padded)
    z_mean, z_log_var = vae.posterior(trimmed)
    decoded = vae.decoder([outputs["z"], keras.ops.cast(trimmed, "float32")])
    trimmed_outputs = {"z_mean": z_mean, "z_log_var": z_log_var, "z": outputs["z"], "decoded": decoded}
    for name, value in vae.loss_terms(padded, outputs).items():
        np.testing.assert_allclose(
            to_numpy(vae.loss_terms(trimmed, trimmed_outputs)[name]), to_numpy(value), rtol=1e-5, atol=1e-5
        )


def test_cached_generation_equals_rerunning_the_decoder_at_every_position():
    vae = peaked_text_vae(9, 7)
    assert networks.LSTMDecoderSteps.of(vae.decoder) is not None
    z = np.random.default_rng(1).normal(size=(6, 3)).astype("float32")
    cached = vae.generate(z, method="greedy")
    np.testing.assert_array_equal(cached, vae.generate(z, method="greedy", cached=False))
    np.testing.assert_array_equal(cached, vae.generate(z, greedy=True))  # the former spelling
    drawn = vae.generate(z, method="sample", seed=4)
    np.testing.assert_array_equal(drawn, vae.generate(z, method="sample", seed=4))  # reproducible
    np.testing.assert_array_equal(drawn, vae.generate(z, method="sample", seed=4, cached=False))  # the same draws
    assert not np.array_equal(drawn, vae.generate(z, method="sample", seed=5))
    for tokens in (cached, drawn, vae.generate(z, method="sample", seed=4, temperature=0.5)):
        assert tokens.shape == (6, 7)
        assert_sentences(tokens, 9)
    assert vae.generate(z, method="greedy", length=3).shape == (6, 3)
    with pytest.raises(ValueError, match="method"):
        vae.generate(z, method="nucleus")


def test_a_model_without_data_shape_asks_for_a_length():
    vae = small_text_vae(12)
    vae._data_shape = None  # as built from lstm networks alone
    with pytest.raises(ValueError, match="data_shape"):
        vae.generate(np.zeros((1, 4), "float32"))
    assert vae.generate(np.zeros((2, 4), "float32"), method="greedy", length=5).shape == (2, 5)


def test_beam_search_finds_the_most_probable_sentence_of_all():
    vocabulary_size, length = 6, 4
    vae = peaked_text_vae(vocabulary_size, length, seed=2)
    z = np.random.default_rng(3).normal(size=(3, 3)).astype("float32")
    # Every sentence: tokens that are not padding, then padding after the first <eos>.
    every = np.stack(np.meshgrid(*[np.arange(1, vocabulary_size)] * length, indexing="ij"), -1).reshape(-1, length)
    every = np.unique(to_numpy(ops.end_at_first(every, text.EOS, text.PAD)), axis=0)
    scores = np.stack([log_prob_given_z(vae, np.repeat(z[[i]], len(every), 0), every) for i in range(len(z))])
    lengths = (every != text.PAD).sum(axis=1)

    exhaustive = vae.generate(z, method="beam", beam_width=(vocabulary_size - 1) ** (length - 1))
    np.testing.assert_array_equal(exhaustive, every[scores.argmax(axis=1)])
    np.testing.assert_allclose(log_prob_given_z(vae, z, exhaustive), scores.max(axis=1), rtol=1e-5)
    per_token = vae.generate(z, method="beam", beam_width=len(every), normalize_length=True)
    np.testing.assert_array_equal(per_token, every[(scores / lengths).argmax(axis=1)])

    greedy = vae.generate(z, method="greedy")
    np.testing.assert_array_equal(vae.generate(z, method="beam", beam_width=1), greedy)
    narrow = vae.generate(z, method="beam", beam_width=2)  # no better than the exhaustive search
    assert (log_prob_given_z(vae, z, exhaustive) >= log_prob_given_z(vae, z, narrow) - 1e-5).all()
    assert (scores.max(axis=1) > log_prob_given_z(vae, z, greedy) + 1e-3).any()  # greedy is not always the best
