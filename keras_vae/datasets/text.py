"""Sentences as token ids for the text VAE: a vocabulary read from training text, padding, and back;
a text file of sentences as splits of token ids (`load_text_file`).

Ids 0–3 are `<pad>`, `<unk>`, `<bos>` and `<eos>`; words follow by frequency.
A sentence of n words is n ids, then `<eos>`, then `<pad>` up to the length.
"""

import collections
import gzip
import json
import os

import numpy as np

from keras_vae.datasets.splits import DataError, Splits, array_examples, seeded_split, validation_size
from keras_vae.files import atomic_path
from keras_vae.names import BOS, EOS, PAD, SPECIAL_TOKENS, UNK  # noqa: F401  (the vocabulary's reserved ids)

TEXT_EXTENSIONS = (".txt", ".txt.gz")


def is_text_file(path):
    return str(path).lower().endswith(TEXT_EXTENSIONS)


def read_sentences(path):
    """The sentences of a text file (`.txt`, or gzipped `.txt.gz`): one per line, as lists of words; empty lines skipped."""
    opener = gzip.open if str(path).lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as file:
        return [line.split() for line in file if line.strip()]


def load_text_file(path, validation_fraction, seed):
    """Splits of a text file of sentences as token ids; test and validation from sibling files where they exist.

    A file whose name holds `train` (Penn Treebank's `ptb.train.txt`) takes its
    test and validation sentences from the files named with `test` and `valid`;
    otherwise a seeded `validation_fraction` of its sentences is held out.
    """

    def sibling(part):
        directory, name = os.path.split(path)
        other = os.path.join(directory, name.replace("train", part))
        return other if "train" in name and os.path.isfile(other) else None

    train = read_sentences(path)
    test_path, validation_path = sibling("test"), sibling("valid")
    test = None if test_path is None else read_sentences(test_path)
    validation = None
    if validation_path is not None:
        validation = read_sentences(validation_path)
    elif train:
        num_validation = validation_size(len(train), validation_fraction, path, has_test=test is not None)
        validation_indices, train_indices = seeded_split(len(train), num_validation, seed)
        validation = [train[i] for i in validation_indices]
        train = [train[i] for i in np.sort(train_indices)]
    if not train:
        raise DataError(f"{path} has no sentences: write one sentence per line, words separated by spaces.")
    vocabulary = Vocabulary.from_sentences(train)
    length = max(len(sentence) for sentence in train + (validation or []) + (test or [])) + 1
    encoded = {
        name: None if sentences is None else vocabulary.encode(sentences, length)
        for name, sentences in (("train", train), ("validation", validation), ("test", test))
    }
    validation = None if not validation else array_examples(encoded["validation"])
    return Splits(
        train=array_examples(encoded["train"]).shuffle(len(train), seed=seed, reshuffle_each_iteration=True),
        validation=validation,
        test=validation if test is None else array_examples(encoded["test"]),
        input_shape=(length,),
        name=os.path.basename(path).split(".txt")[0],
        value_range=(0, len(vocabulary) - 1),
        vocabulary=vocabulary,
    )


class Vocabulary:
    """Token ids for words: the special tokens, then `words`.

    Words not in it become `<unk>` (so Penn Treebank's own `<unk>` stays
    `<unk>`). Keras's `TextVectorization` reserves its own out-of-vocabulary
    string, `[UNK]`, and returns framework tensors; a dict lookup over the
    whole of PTB's training text takes a fraction of a second.

    Args:
        words: the words, most frequent first, without the special tokens.

    Example:
    ```python
    vocabulary = Vocabulary.from_sentences(read_sentences("ptb.train.txt"), max_size=10_000)
    ids = vocabulary.encode([["the", "cat"]], length=5)  # [[w1, w2, 3, 0, 0]]
    vocabulary.decode(ids)  # ["the cat"]
    ```
    """

    def __init__(self, words):
        self.tokens = SPECIAL_TOKENS + tuple(word for word in words if word not in SPECIAL_TOKENS)
        self._ids = {token: i for i, token in enumerate(self.tokens)}

    @classmethod
    def from_sentences(cls, sentences, max_size=None):
        """The words of `sentences` (lists of words), most frequent first (ties alphabetically).

        Args:
            max_size: int or None, the most ids, special tokens included;
                rarer words become `<unk>`.
        """
        counts = collections.Counter(word for sentence in sentences for word in sentence)
        for token in SPECIAL_TOKENS:
            counts.pop(token, None)
        words = sorted(counts, key=lambda word: (-counts[word], word))
        if max_size is not None:
            words = words[: max(0, int(max_size) - len(SPECIAL_TOKENS))]
        return cls(words)

    def __len__(self):
        return len(self.tokens)

    def encode(self, sentences, length=None):
        """Token ids `(n, length)` int32: each sentence's words, `<eos>`, then padding.

        Args:
            sentences: lists of words (or strings, split on whitespace).
            length: int, positions per sentence; longer sentences are cut
                (and lose their `<eos>`). Defaults to the longest sentence + 1.
        """
        sentences = [sentence.split() if isinstance(sentence, str) else list(sentence) for sentence in sentences]
        if length is None:
            length = max((len(sentence) for sentence in sentences), default=0) + 1
        ids = np.full((len(sentences), int(length)), PAD, dtype="int32")
        for row, sentence in enumerate(sentences):
            tokens = [self._ids.get(word, UNK) for word in sentence] + [EOS]
            ids[row, : min(len(tokens), length)] = tokens[:length]
        return ids

    def decode(self, ids):
        """The sentences of token ids `(n, length)` as strings, each up to its first `<eos>` or `<pad>`."""
        sentences = []
        for row in np.asarray(ids).astype("int64"):
            words = []
            for token in row:
                if token in (EOS, PAD):
                    break
                words.append(self.tokens[token] if 0 <= token < len(self.tokens) else SPECIAL_TOKENS[UNK])
            sentences.append(" ".join(words))
        return sentences

    def get_config(self):
        return {"words": list(self.tokens[len(SPECIAL_TOKENS) :])}

    @classmethod
    def from_config(cls, config):
        return cls(config["words"])

    def save(self, path):
        """Writes the vocabulary as JSON, atomically."""
        with atomic_path(path) as temporary, open(temporary, "w", encoding="utf-8") as file:
            json.dump(self.get_config(), file)

    @classmethod
    def load(cls, path):
        with open(path, encoding="utf-8") as file:
            return cls.from_config(json.load(file))


def tokens_per_sentence(ids):
    """How many tokens of each sentence a model scores: its words and `<eos>` (padding left out)."""
    return np.sum(np.asarray(ids) != PAD, axis=-1)


def perplexity(nll, ids):
    """exp(total NLL / total scored tokens), from per-sentence NLLs in nats: what text-VAE papers report."""
    return float(np.exp(np.sum(nll, dtype="float64") / np.sum(tokens_per_sentence(ids))))
