"""Sentences as token ids for the text VAE: a vocabulary read from training text, padding, and back;
a text file of sentences as splits of token ids (`load_text_file`), optionally joined into documents
(`join_documents`); batches trimmed to a few widths by length (`bucketed_batches`).

Ids 0–3 are `<pad>`, `<unk>`, `<bos>` and `<eos>`; words follow by frequency.
A sentence of n words is n ids, then `<eos>`, then `<pad>` up to the length.
"""

import collections
import gzip
import json
import math
import os

import numpy as np

from keras_vae.datasets.splits import DataError, Splits, array_examples, seeded_split, validation_size
from keras_vae.files import atomic_path
from keras_vae.names import BOS, EOS, PAD, SPECIAL_TOKENS, UNK  # noqa: F401  (the vocabulary's reserved ids)

TEXT_EXTENSIONS = (".txt", ".txt.gz")
# `bucketed_batches` sorts this many batches' worth of shuffled rows by length at a time.
SORT_WINDOW_BATCHES = 32


def is_text_file(path):
    return str(path).lower().endswith(TEXT_EXTENSIONS)


def read_sentences(path):
    """The sentences of a text file (`.txt`, or gzipped `.txt.gz`): one per line, as lists of words; empty lines skipped."""
    opener = gzip.open if str(path).lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as file:
        return [line.split() for line in file if line.strip()]


def load_text_file(path, validation_fraction, seed, document_words=None):
    """Splits of a text file of sentences as token ids; test and validation from sibling files where they exist.

    A file whose name holds `train` (Penn Treebank's `ptb.train.txt`) takes its
    test and validation sentences from the files named with `test` and `valid`;
    otherwise a seeded `validation_fraction` of its sentences (of its documents,
    with `document_words`) is held out.

    Args:
        document_words: `(min_words, max_words)` to join each file's consecutive
            sentences into documents (`join_documents`) before anything is held
            out, so no document crosses a split; `None` keeps sentences.
    """

    def sibling(part):
        directory, name = os.path.split(path)
        other = os.path.join(directory, name.replace("train", part))
        return other if "train" in name and os.path.isfile(other) else None

    def read(file):
        sentences = read_sentences(file)
        return sentences if document_words is None else join_documents(sentences, *document_words)

    train = read(path)
    test_path, validation_path = sibling("test"), sibling("valid")
    test = None if test_path is None else read(test_path)
    validation = None
    if validation_path is not None:
        validation = read(validation_path)
    elif train:
        num_validation = validation_size(len(train), validation_fraction, path, has_test=test is not None)
        validation_indices, train_indices = seeded_split(len(train), num_validation, seed)
        validation = [train[i] for i in validation_indices]
        train = [train[i] for i in np.sort(train_indices)]
    if not train:
        if document_words is not None:
            raise DataError(
                f"{path} holds no run of consecutive sentences of {document_words[0]} to {document_words[1]} words: "
                "lower the documents' minimum words, or raise their maximum."
            )
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


def join_documents(sentences, min_words=60, max_words=100):
    """Consecutive sentences joined into documents of `min_words` to `max_words` words, in order.

    Penn Treebank's sentences follow their source articles, so consecutive
    sentences share a topic: joined, they make documents with something for a
    global code to carry, as He et al. (2019)'s Yahoo and Yelp documents of
    about 80 words do. Sentences are taken greedily: a document ends at the
    first sentence that brings it to `min_words`. When the next sentence would
    take a document past `max_words` before it gets there, the document's
    first sentences are left out until it fits (so every document is a run of
    consecutive sentences, in their order). A sentence longer than `max_words`
    is left out, and no document spans it; the last sentences, if they make
    fewer than `min_words`, are left out too. Call it once per split, so that
    no document crosses one.

    Args:
        sentences: lists of words (or strings, split on whitespace), in order.
        min_words: int ≥ 1, the fewest words of a document. Defaults to `60`.
        max_words: int ≥ `min_words`, the most. Defaults to `100`.

    Returns:
        A list of documents, each a list of words (sentence boundaries leave no mark).

    Example:
    ```python
    join_documents(["a b c", "d e f g", "h i", "j"], min_words=5, max_words=6)
    # [["d", "e", "f", "g", "h", "i"]]: "a b c" is left out, as "a b c d e f g" is past 6 words;
    # the last sentence, "j", makes fewer than 5 words
    ```
    """
    if int(min_words) != min_words or int(max_words) != max_words or not 1 <= min_words <= max_words:
        raise ValueError(f"Documents need whole numbers 1 <= min_words <= max_words; got {min_words} and {max_words}.")
    sentences = [sentence.split() if isinstance(sentence, str) else list(sentence) for sentence in sentences]
    documents, start, words = [], 0, 0  # the document in progress is sentences[start:i]
    for i, sentence in enumerate(sentences):
        if len(sentence) > max_words:
            start, words = i + 1, 0
            continue
        while words + len(sentence) > max_words:
            words -= len(sentences[start])
            start += 1
        words += len(sentence)
        if words >= min_words:
            documents.append([word for part in sentences[start : i + 1] for word in part])
            start, words = i + 1, 0
    return documents


def bucketed_batches(ids, batch_size, boundaries=None, shuffle=True, seed=None):
    """Batches of token ids, each trimmed to the smallest of a few widths that holds its longest row.

    Text is padded to its longest sentence (83 tokens on Penn Treebank, where
    most sentences have 20 to 25 words): a batch of short sentences then spends
    most of its compute on padding, which the categorical likelihood does not
    score. Here every batch is cut to the smallest `boundaries` width at or
    above its longest row, so the model sees a few shapes only (JAX compiles
    one step per width). With `shuffle`, the rows are reshuffled every epoch,
    then sorted by length `SORT_WINDOW_BATCHES` batches' worth at a time and
    cut into batches, which are shuffled again: batches hold rows of similar
    length (as `tf.data`'s `bucket_by_sequence_length` does), but all batches
    but one have `batch_size` rows, so an epoch has the same number of
    steps as plain batching. Without `shuffle` the rows keep their order (for
    evaluation) and each batch is only trimmed.

    Args:
        ids: int array `(examples, length)` of token ids padded with `<pad>`
            (`Vocabulary.encode`), or a `tf.data.Dataset` of such rows.
        batch_size: int, rows per batch.
        boundaries: increasing ints, the widths a batch may have; the full
            `length` is always one. Defaults to 8, 16, 24, 32, 48, 64, 96,
            128, 192, ... (each a quarter to a half above the one before),
            those below `length`.
        shuffle: bool, whether to reshuffle every epoch (training); `False`
            keeps the rows' order. Defaults to `True`.
        seed: int or None, for the shuffles.

    Returns:
        A `tf.data.Dataset` of int32 batches `(rows, width)`, prefetched: what
        `fit` takes, on every backend.

    Example:
    ```python
    ids = vocabulary.encode(read_sentences("ptb.train.txt"))
    vae.fit(bucketed_batches(ids, 128, seed=0), epochs=10)
    ```
    """
    import tensorflow as tf

    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}.")
    batch_size = int(batch_size)
    if isinstance(ids, tf.data.Dataset):
        rows = ids
    else:
        ids = np.asarray(ids)
        if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"ids must be integer token ids of shape (examples, length); got {ids.dtype} {ids.shape}.")
        rows = tf.data.Dataset.from_tensor_slices(ids.astype("int32"))
    shape = rows.element_spec.shape
    if shape.rank != 1 or shape[0] is None:
        raise ValueError(f"bucketed_batches needs rows of token ids of one known length; got rows of shape {shape}.")
    widths = tf.constant(bucket_widths(int(shape[0]), boundaries), tf.int32)

    def trimmed(batch):
        longest = tf.reduce_max(row_lengths(batch))
        return batch[:, : tf.gather(widths, tf.searchsorted(widths, longest[None]))[0]]

    rows = rows.map(lambda row: tf.cast(row, tf.int32))
    if not shuffle:
        return rows.batch(batch_size).map(trimmed, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
    seeds = (None, None) if seed is None else (int(seed), int(seed) + 1)
    count = int(rows.cardinality())
    if count < 0:
        count = int(rows.reduce(0, lambda count, _: count + 1))
    window = batch_size * SORT_WINDOW_BATCHES

    def sorted_by_length(rows):
        return tf.gather(rows, tf.argsort(row_lengths(rows), stable=True))

    batches = (
        rows.shuffle(max(count, 1), seed=seeds[0], reshuffle_each_iteration=True)
        .batch(window)
        .map(sorted_by_length, num_parallel_calls=tf.data.AUTOTUNE)
        .unbatch()
        .batch(batch_size)
        .map(trimmed, num_parallel_calls=tf.data.AUTOTUNE)
    )
    batches = batches.shuffle(2 * SORT_WINDOW_BATCHES, seed=seeds[1], reshuffle_each_iteration=True)
    # Unbatching loses the count, which Keras needs to end an epoch without a warning.
    batches = batches.apply(tf.data.experimental.assert_cardinality(math.ceil(count / batch_size)))
    return batches.prefetch(tf.data.AUTOTUNE)


def bucket_widths(length, boundaries=None):
    """The widths `bucketed_batches` trims to: the `boundaries` below `length`, then `length`."""
    if boundaries is None:
        boundaries, width = [8], 16
        while width < length:
            boundaries += [width, width * 3 // 2]
            width *= 2
    boundaries = [int(b) for b in boundaries]
    if any(b < 1 for b in boundaries) or boundaries != sorted(set(boundaries)):
        raise ValueError(f"boundaries must be increasing positive widths; got {boundaries}.")
    return tuple(b for b in boundaries if b < length) + (int(length),)


def row_lengths(ids):
    """Positions up to each row's last token that is not `<pad>` (its words and `<eos>`), in TensorFlow."""
    import tensorflow as tf

    positions = tf.range(1, tf.shape(ids)[-1] + 1, dtype=tf.int32)
    return tf.reduce_max(tf.where(ids != PAD, positions, 0), axis=-1)


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
