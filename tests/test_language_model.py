"""LanguageModel: the text VAE's LSTM decoder without a latent code, the baseline of the text study."""

import os

import keras
import numpy as np

from keras_vae import LanguageModel, names
from keras_vae.datasets import text
from keras_vae.models.language_model import lstm_language_model_network

VOCABULARY = 12


def sentences(n=64, length=8, seed=0):
    """Token ids with a pattern a language model can learn (each word follows from the one before), then padding."""
    rng = np.random.default_rng(seed)
    ids = np.full((n, length), names.PAD, "int32")
    for row in range(n):
        size = rng.integers(3, length)
        first = rng.integers(len(names.SPECIAL_TOKENS), VOCABULARY)
        words = [(first + i) % (VOCABULARY - 4) + 4 for i in range(size - 1)]
        ids[row, :size] = [*words, names.EOS]
    return ids


def small_model(seed=0):
    keras.utils.set_random_seed(seed)
    return LanguageModel(lstm_language_model_network(VOCABULARY, embedding_dim=8, units=16))


def test_language_model_trains_and_scores_sentences_as_the_vae_does(tmp_path):
    x = sentences()
    model = small_model()
    untrained = model.nll(x)
    model.initialize_output_bias(x)
    before = model.nll(x)
    assert before.mean() < untrained.mean()  # the unigram distribution beats uniform logits
    model.compile(optimizer=keras.optimizers.Adam(0.02))
    history = model.fit(x, epochs=4, batch_size=16, verbose=0).history
    assert np.all(np.isfinite(history["loss"])) and history["loss"][-1] < history["loss"][0]
    nll = model.nll(x)
    assert nll.shape == (len(x),) and np.all(nll > 0) and nll.mean() < before.mean()
    # Perplexity: exp(total NLL / scored tokens), padding not scored; at least 1.
    tokens = np.sum(x != names.PAD)
    np.testing.assert_allclose(model.perplexity(x), np.exp(nll.sum() / tokens), rtol=1e-5)
    assert model.perplexity(x) >= 1.0
    # Sentences of any length: trimming the padding changes nothing.
    np.testing.assert_allclose(model.nll(x[:, :6][x[:, 5] == names.PAD]), nll[x[:, 5] == names.PAD], rtol=1e-4)
    # It reads only the tokens before each position.
    changed = x[:4].copy()
    changed[:, 3] = 5
    logits, changed_logits = (keras.ops.convert_to_numpy(model(ids)) for ids in (x[:4], changed))
    np.testing.assert_allclose(logits[:, :4], changed_logits[:, :4], atol=1e-5)
    # A .keras round trip keeps the network.
    path = os.path.join(tmp_path, "language_model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded.nll(x), nll, rtol=1e-5)
    assert text.perplexity(nll, x) == model.perplexity(x)
