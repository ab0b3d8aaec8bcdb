"""Token-by-token decoding with a carried state: greedy or drawn tokens, and beam search, in `keras.ops`.

A `step(tokens, state)` reads the previous token of each sequence, `(batch,)`
int32, and returns the logits of the next position, `(batch, vocabulary_size)`,
and the new state: a list of tensors whose first axis is the batch (so beam
search can repeat and reorder them). `networks.LSTMDecoderSteps` is one. The
loops are `keras.ops.while_loop`s, compiled with the function that calls them,
and stop once every sequence has ended.
"""

from keras import ops

# A log-probability no sequence reaches: the score of what is ruled out (finite, so sums stay numbers).
IMPOSSIBLE = -1e9


def end_at_first(tokens, end_id, padding_id):
    """`tokens` `(batch, length)` with every position after the first `end_id` of its row set to `padding_id`."""
    tokens = ops.convert_to_tensor(tokens)
    ended = ops.cast(tokens == end_id, "int32")
    ended_before = (ops.cumsum(ended, axis=1) - ended) > 0
    return ops.where(ended_before, ops.cast(padding_id, tokens.dtype), tokens)


def decode_step_by_step(step, state, first_tokens, length, choose, end_id, padding_id):
    """One token per position, each chosen from the logits given the ones before: greedy or drawn decoding.

    A sequence ends at its first `end_id`; its later positions are `padding_id`.

    Args:
        step, state: the decoder's step function and its initial state (module docstring).
        first_tokens: `(batch,)` int32, the tokens read before the first position.
        length: int, the number of positions.
        choose: `choose(logits, position)` → `(batch,)` token ids, e.g. the argmax, or a draw.
        end_id, padding_id: int.

    Returns:
        A tensor `(batch, length)` of int32 token ids.
    """
    positions = ops.expand_dims(ops.arange(length, dtype="int32"), 0)
    batch = ops.shape(first_tokens)[0]

    def body(position, tokens, previous, ended, *state):
        logits, state = step(previous, list(state))
        chosen = ops.where(ended, ops.cast(padding_id, "int32"), ops.cast(choose(logits, position), "int32"))
        tokens = ops.where(positions == position, ops.expand_dims(chosen, 1), tokens)
        return (position + 1, tokens, chosen, ops.logical_or(ended, chosen == end_id), *state)

    def not_done(position, tokens, previous, ended, *state):
        return ops.logical_and(position < length, ops.logical_not(ops.all(ended)))

    start = (
        ops.convert_to_tensor(0, "int32"),
        ops.full((batch, length), padding_id, dtype="int32"),
        ops.cast(first_tokens, "int32"),
        ops.zeros((batch,), dtype="bool"),
        *state,
    )
    return ops.while_loop(not_done, body, start)[1]


def beam_search(step, state, first_tokens, length, beam_width, end_id, padding_id, normalize_length=False):
    """The most probable sequences found by keeping the `beam_width` best prefixes at each position.

    A prefix's score is its log-probability, the sum of its tokens'
    log-softmax, so the result's score is the model's log p(x) as teacher
    forcing computes it (positions after the end not scored). A sequence ends
    at `end_id`, then holds `padding_id` at no cost; one that never ends is cut
    at `length`. Padding is never chosen before the end. With `beam_width`
    at least (vocabulary size - 1) ** (length - 1) the search is exhaustive;
    with 1 it is greedy decoding.

    Args:
        step, state, first_tokens, length, end_id, padding_id: as for `decode_step_by_step`.
        beam_width: int ≥ 1, the prefixes kept per sequence.
        normalize_length: bool, pick the final sequence by its mean
            log-probability per token (its end included) instead of the sum;
            the search itself ranks by the sum. Defaults to `False`.

    Returns:
        `(tokens, log_probs)`: the best sequence of each batch row, `(batch, length)`
        int32, and its log-probability, `(batch,)`.
    """
    batch = ops.shape(first_tokens)[0]
    rows = ops.arange(batch, dtype="int32")
    positions = ops.reshape(ops.arange(length, dtype="int32"), (1, 1, length))

    def gather(tensor, flat_index):
        return ops.take(tensor, flat_index, axis=0)

    def body(position, tokens, previous, scores, ended, counted, *state):
        logits, state = step(previous, list(state))
        log_probs = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
        vocabulary_size = log_probs.shape[-1]
        padding = ops.one_hot(padding_id, vocabulary_size, dtype="float32")
        open_scores = log_probs + padding * IMPOSSIBLE
        ended_scores = ops.broadcast_to((1.0 - padding) * IMPOSSIBLE, ops.shape(log_probs))
        ended_flat = ops.reshape(ended, (-1, 1))
        candidates = ops.reshape(scores, (-1, 1)) + ops.where(ended_flat, ended_scores, open_scores)
        scores, best = ops.top_k(ops.reshape(candidates, (batch, beam_width * vocabulary_size)), beam_width)
        best = ops.cast(best, "int32")
        beam, chosen = best // vocabulary_size, best % vocabulary_size
        flat_index = ops.reshape(ops.expand_dims(rows, 1) * beam_width + beam, (-1,))
        tokens = ops.reshape(gather(ops.reshape(tokens, (-1, length)), flat_index), (batch, beam_width, length))
        tokens = ops.where(positions == position, ops.expand_dims(chosen, -1), tokens)
        was_ended = ops.reshape(gather(ops.reshape(ended, (-1,)), flat_index), (batch, beam_width))
        counted = ops.reshape(gather(ops.reshape(counted, (-1,)), flat_index), (batch, beam_width))
        counted = counted + ops.cast(ops.logical_not(was_ended), "float32")
        ended = ops.logical_or(was_ended, chosen == end_id)
        state = [gather(tensor, flat_index) for tensor in state]
        return (position + 1, tokens, ops.reshape(chosen, (-1,)), scores, ended, counted, *state)

    def not_done(position, tokens, previous, scores, ended, *rest):
        return ops.logical_and(position < length, ops.logical_not(ops.all(ended)))

    # All beams start from the same prefix: only the first is live, so the first step fills them with distinct tokens.
    first_scores = ops.where(ops.arange(beam_width) == 0, 0.0, IMPOSSIBLE)
    start = (
        ops.convert_to_tensor(0, "int32"),
        ops.full((batch, beam_width, length), padding_id, dtype="int32"),
        ops.repeat(ops.cast(first_tokens, "int32"), beam_width, axis=0),
        ops.cast(ops.broadcast_to(ops.expand_dims(first_scores, 0), (batch, beam_width)), "float32"),
        ops.zeros((batch, beam_width), dtype="bool"),
        ops.zeros((batch, beam_width), dtype="float32"),
        *(ops.repeat(tensor, beam_width, axis=0) for tensor in state),
    )
    _, tokens, _, scores, _, counted, *_ = ops.while_loop(not_done, body, start)
    ranks = scores / ops.maximum(counted, 1.0) if normalize_length else scores
    best = ops.cast(ops.argmax(ranks, axis=-1), "int32")
    flat_index = rows * beam_width + best
    return gather(ops.reshape(tokens, (-1, length)), flat_index), gather(ops.reshape(scores, (-1,)), flat_index)
