"""In-graph CLIP tokenizer (byte-level BPE) giving the ids of Hugging Face's `CLIPTokenizer`.

The reference is the `tokenizers` pipeline of Hugging Face's `CLIPTokenizer`
(`CLIPTokenizerFast` before transformers 5): `<|startoftext|>` and
`<|endoftext|>` written in the text (exact case) are split out first and
become their ids; the rest is normalised (NFC, every run of whitespace a
single space, lowercase character by character), split with CLIP's pattern
(`<|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|\\p{L}+|\\p{N}|
[^\\s\\p{L}\\p{N}]+`: letters run together, every digit is a word, whitespace
is dropped), each word is mapped to byte-level symbols with `</w>` on its
last one, and merges are applied in rank order (every occurrence of the best
pair, left to right, without overlaps).

keras-hub's `CLIPTokenizer` holds the same vocabulary and merges, but its
in-graph path splits like GPT-2 (no lowercasing or normalisation, digit runs
kept whole) and keeps a mutable cache table, so its ids differ from the
reference on ordinary captions and a SavedModel must track its tables. This
layer owns no TensorFlow resource: the vocabulary and merges are sorted hash
arrays searched with `tf.searchsorted` (every hit confirmed by comparing the
strings), so any `tf.function` that calls it can be saved. The process that
loads such a SavedModel must `import tensorflow_text` first (the
pre-tokenizer's `RegexSplitWithOffsets` and `NormalizeUTF8` ops).
"""

import json
import os

import keras
import numpy as np
import tensorflow as tf

from mmkeras.preprocessing.subword_tokenizer import DEFAULT_MAX_TEXT_BYTES
from mmkeras.preprocessing.subword_tokenizer import SubwordTokenizer
from mmkeras.preprocessing.subword_tokenizer import _truncate_utf8

START_TOKEN = "<|startoftext|>"
END_TOKEN = "<|endoftext|>"
END_OF_WORD = "</w>"
_HASH_BUCKETS = 2**63 - 1
# Unicode White_Space, the `\s` of the reference's normaliser.
_WHITESPACE = r"[\t\n\x0B\f\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}]+"
# The byte-level step splits each word again like GPT-2 (no whitespace is left): "<|endoftext|>" written
# in any other case gives "<|", "endoftext", "|>"; any other word is kept whole.
_BYTE_LEVEL_WORDS = r"'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}+|[^\s\p{L}\p{N}]+"
_SPECIAL = r"<\|startoftext\|>|<\|endoftext\|>"
_WORDS = r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+"


def _every_other(flags, continues):
    """bool `[T]`: the `flags` at an even offset in their run of consecutive flags.

    `continues[t]` says whether position t may extend a run from t - 1 (False
    at the first position of each word).
    """
    index = tf.range(tf.size(flags), dtype=tf.int32)
    starts = flags & ~(tf.concat([[False], flags[:-1]], 0) & continues)
    run = tf.maximum(tf.cumsum(tf.cast(starts, tf.int32)) - 1, 0)
    run_start = tf.gather(tf.concat([tf.boolean_mask(index, starts), [0]], 0), run)
    return flags & tf.equal((index - run_start) % 2, 0)


def _bytes_to_unicode():
    """The byte -> printable character map of byte-level BPE (GPT-2, CLIP)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    table, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            table[byte] = chr(byte)
        else:
            table[byte] = chr(256 + extra)
            extra += 1
    return [table[byte] for byte in range(256)]


class _HashLookup:
    """`keys -> values` without a TensorFlow resource: sorted 63-bit hashes, `tf.searchsorted`, string check."""

    def __init__(self, keys, values, what):
        keys = np.array([k.encode("utf-8") for k in keys], dtype=object)
        hashes = tf.strings.to_hash_bucket_fast(keys, _HASH_BUCKETS).numpy() if len(keys) else np.zeros([0], "int64")
        order = np.argsort(hashes, kind="stable")
        self.hashes, self.keys = hashes[order], keys[order]
        self.values = np.asarray(values, dtype="int32")[order]
        if len(np.unique(self.hashes)) != len(self.hashes):
            raise ValueError(f"Two {what} entries share a 63-bit hash; this vocabulary cannot be looked up exactly.")

    def __call__(self, strings, default):
        """int32 values of `strings` (any shape), `default` for strings that are not keys."""
        if not len(self.keys):
            return tf.fill(tf.shape(strings), tf.constant(default, tf.int32))
        hashes = tf.strings.to_hash_bucket_fast(strings, _HASH_BUCKETS)
        flat = tf.reshape(hashes, [-1])
        index = tf.minimum(tf.searchsorted(tf.constant(self.hashes), flat), len(self.keys) - 1)
        found = tf.equal(tf.gather(tf.constant(self.keys, tf.string), index), tf.reshape(strings, [-1]))
        values = tf.where(found, tf.gather(tf.constant(self.values), index), default)
        return tf.reshape(values, tf.shape(strings))


class _Engine:
    """Lookup arrays and the traced tokenize function, kept out of Keras / TF object tracking."""

    def __init__(self, vocabulary, merges, tokenize_graph):
        self.vocabulary = _HashLookup(list(vocabulary), list(vocabulary.values()), "vocabulary")
        self.merge_ranks = _HashLookup(merges, range(len(merges)), "merges")
        self.no_merge = len(merges)
        self.byte_symbols = _bytes_to_unicode()
        self.tokenize = tf.function(
            tokenize_graph, input_signature=[tf.TensorSpec([None], tf.string)], autograph=False
        )


@keras.saving.register_keras_serializable(package="mmkeras")
class ClipTokenizer(keras.layers.Layer):
    """CLIP's byte-level BPE tokenizer as a layer: strings to `[N, sequence_length]` int32 ids, in-graph.

    Gives the ids of Hugging Face's `CLIPTokenizer(text, padding="max_length",
    truncation=True, max_length=sequence_length)`: `<|startoftext|>`, the
    text's tokens (cut to `sequence_length - 2`), `<|endoftext|>`, then
    `pad_token` up to `sequence_length`. Special tokens written in the text
    are their own ids; symbols missing from the vocabulary read as
    `<|endoftext|>` (the reference's unknown token). The module docstring
    says how text is normalised and split. Texts longer than
    `max_text_bytes` are cut to that many bytes (at a UTF-8 character
    boundary) first, and only the first `sequence_length - 2` words are
    byte-pair encoded (each gives at least one token), so a huge string costs
    no more than a caption.

    Saving: the vocabulary and merges are part of `get_config`, so a `.keras`
    file holds them. SavedModels: call the layer inside the exported
    `tf.function`s; nothing needs to be attached. The loading process must
    import `tensorflow_text` first (`ClipTokenizer.serving_imports`).

    Args:
        vocabulary: dict `{token: id}` (a `vocab.json`), with
            `<|startoftext|>` and `<|endoftext|>`.
        merges: list of merge rules `"a b"` in rank order (the lines of a
            `merges.txt` after its `#version` line).
        sequence_length: length of the id rows (the text tower's context,
            77 for OpenAI CLIP).
        pad_token: the token that pads the rows: `<|endoftext|>` (Hugging
            Face's default for CLIP) or the checkpoint's own, e.g. `"!"`.
        max_text_bytes: the most UTF-8 bytes of each text that are tokenized
            (at least 4); the rest is ignored.
        **kwargs: `keras.layers.Layer` arguments (`name`; the output is int32).

    Example:

    >>> vocabulary = {"a</w>": 0, "c": 1, "t": 2, "at</w>": 3, "cat</w>": 4, "!</w>": 5,
    ...               "<|startoftext|>": 6, "<|endoftext|>": 7, "a": 8, "t</w>": 9}
    >>> tokenizer = ClipTokenizer(vocabulary, ["a t</w>", "c at</w>"], sequence_length=6)
    >>> tokenizer(["A cat!", ""]).numpy().tolist()
    [[6, 0, 4, 5, 7, 7], [6, 7, 7, 7, 7, 7]]
    """

    serving_imports = ("tensorflow_text",)

    def __init__(self, vocabulary, merges, sequence_length=77, pad_token=END_TOKEN,
                 max_text_bytes=DEFAULT_MAX_TEXT_BYTES, **kwargs):
        kwargs.pop("dtype", None)  # the ids are int32 whatever the policy
        super().__init__(dtype="int32", **kwargs)
        if not isinstance(vocabulary, dict) or not vocabulary:
            raise ValueError(f"`vocabulary` must be a non-empty dict {{token: id}}; got {type(vocabulary).__name__}.")
        vocabulary = {str(token): int(i) for token, i in vocabulary.items()}
        if isinstance(merges, (str, bytes)) or not isinstance(merges, (list, tuple)):
            raise ValueError(f"`merges` must be a list of 'a b' strings; got {type(merges).__name__}.")
        merges = [str(rule) for rule in merges]
        for what, token in (("the start token", START_TOKEN), ("the end token", END_TOKEN), ("`pad_token`", pad_token)):
            if token not in vocabulary:
                raise ValueError(f"{what} {token!r} is not in `vocabulary`.")
        for i, rule in enumerate(merges):
            parts = rule.split(" ")
            if len(parts) != 2 or any(token not in vocabulary for token in (*parts, "".join(parts))):
                raise ValueError(
                    f"`merges[{i}]` = {rule!r} must be two symbols that, and whose join, are in `vocabulary`."
                )
        if isinstance(sequence_length, bool) or not isinstance(sequence_length, int) or sequence_length < 2:
            raise ValueError(f"`sequence_length` must be an int of at least 2 (start and end tokens); got {sequence_length!r}.")
        if isinstance(max_text_bytes, bool) or not isinstance(max_text_bytes, int) or max_text_bytes < 4:
            raise ValueError(f"`max_text_bytes` must be an int of at least 4; got {max_text_bytes!r}.")
        # === Config ===
        self.vocabulary = vocabulary
        self.merges = merges
        self.sequence_length = sequence_length
        self.pad_token = pad_token
        self.max_text_bytes = max_text_bytes
        self.start_id = vocabulary[START_TOKEN]
        self.end_id = vocabulary[END_TOKEN]
        self.pad_id = vocabulary[pad_token]
        self._engine = _Engine(vocabulary, merges, self._tokenize_graph)
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        self.built = True

    @classmethod
    def from_files(cls, vocabulary_file, merges_file, **kwargs):
        """A tokenizer from a `vocab.json` and a `merges.txt` (its `#version` line is skipped).

        Args:
            vocabulary_file: path of the JSON `{token: id}` file.
            merges_file: path of the merges file, one `"a b"` rule per line.
            **kwargs: other `ClipTokenizer` arguments.

        Returns:
            A `ClipTokenizer`.
        """
        for path in (vocabulary_file, merges_file):
            if not os.path.isfile(path):
                raise ValueError(f"Tokenizer file not found: {path}.")
        try:
            with open(vocabulary_file, encoding="utf-8") as f:
                vocabulary = json.load(f)
        except ValueError as error:
            raise ValueError(f"{vocabulary_file} is not a JSON vocabulary ({error}).") from None
        with open(merges_file, encoding="utf-8") as f:
            lines = f.read().split("\n")
        merges = [line for i, line in enumerate(lines) if line and not (i == 0 and line.startswith("#version"))]
        try:
            return cls(vocabulary, merges, **kwargs)
        except ValueError as error:
            raise ValueError(f"{vocabulary_file} / {merges_file}: {error}") from None

    def vocabulary_size(self):
        """The number of token ids (one more than the largest id)."""
        return max(self.vocabulary.values()) + 1

    # --- tokenize ---------------------------------------------------------

    @staticmethod
    def _normalize(strings):
        """NFC, whitespace runs to one space, lowercase one character at a time (a final sigma is `σ`)."""
        import tensorflow_text as tf_text

        strings = tf.strings.regex_replace(tf_text.normalize_utf8(strings, "NFC"), _WHITESPACE, " ")
        return tf.strings.lower(tf.strings.regex_replace(strings, "Σ", "σ"), encoding="utf-8")

    def _byte_pair_encode(self, words, special):
        """`(symbols [T], word_index [T])`: the BPE symbols of `[W]` words (`special` ones kept whole), in order."""
        engine = self._engine
        chars = tf.strings.bytes_split(words)
        row = tf.cast(chars.value_rowids(), tf.int32)
        byte_values = tf.cast(tf.reshape(tf.io.decode_raw(chars.flat_values, tf.uint8), [-1]), tf.int32)
        # Undo the NUL escape of `_words`: "\x01\x01" was U+0001 and "\x01\x02" was NUL.
        same_word = tf.concat([[False], tf.equal(row[1:], row[:-1])], 0)
        escape = _every_other(tf.equal(byte_values, 1), same_word)
        escaped = tf.concat([[False], escape[:-1]], 0)
        byte_values = tf.boolean_mask(tf.where(escaped & tf.equal(byte_values, 2), 0, byte_values), ~escape)
        row = tf.boolean_mask(row, ~escape)
        first = tf.concat([[True], tf.not_equal(row[1:], row[:-1])], 0)
        last = tf.concat([tf.not_equal(row[1:], row[:-1]), [True]], 0)
        symbols = tf.gather(tf.constant(engine.byte_symbols), byte_values)
        symbols = tf.where(last, tf.strings.join([symbols, END_OF_WORD]), symbols)
        # A special token is one symbol, never merged.
        is_special = tf.gather(special, row)
        keep = ~is_special | first
        symbols = tf.boolean_mask(tf.where(is_special, tf.gather(words, row), symbols), keep)
        row = tf.boolean_mask(row, keep)
        num_words = tf.size(words)

        def merge(symbols, row, _):
            has_next = tf.concat([tf.equal(row[1:], row[:-1]), [False]], 0)
            following = tf.concat([symbols[1:], [""]], 0)
            rank = engine.merge_ranks(tf.strings.join([symbols, following], " "), engine.no_merge)
            rank = tf.where(has_next, rank, engine.no_merge)
            best = tf.math.unsorted_segment_min(rank, row, num_words)
            chosen = tf.equal(rank, tf.gather(best, row)) & (rank < engine.no_merge)
            # The best pair merges at every occurrence, left to right, without overlaps ("a a a" -> "aa a").
            take = _every_other(chosen, tf.concat([[False], has_next[:-1]], 0))
            merged = tf.where(take, tf.strings.join([symbols, following]), symbols)
            kept = ~tf.concat([[False], take[:-1]], 0)
            return tf.boolean_mask(merged, kept), tf.boolean_mask(row, kept), tf.reduce_any(chosen)

        symbols, row, _ = tf.while_loop(
            lambda symbols, row, active: active,
            merge,
            [symbols, row, tf.size(symbols) > 0],
            shape_invariants=[tf.TensorShape([None]), tf.TensorShape([None]), tf.TensorShape([])],
        )
        return symbols, row

    def _words(self, strings):
        """`(words [N, None], special [W])`: the pre-tokenized words of `[N]` texts and which are special tokens."""
        import tensorflow_text as tf_text

        strings = _truncate_utf8(strings, self.max_text_bytes)
        strings = tf.strings.unicode_transcode(
            strings, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD, replace_control_characters=False
        )
        # TensorFlow's regex split and lowercasing stop at a NUL, which the reference keeps as a symbol:
        # NUL becomes "\x01\x02" and U+0001 "\x01\x01" (control characters too, so words split the same).
        strings = tf.strings.regex_replace(strings, r"\x01", "\x01\x01")
        strings = tf.strings.regex_replace(strings, r"\x00", "\x01\x02")
        # Special tokens written in the text (exact case) are split out before normalisation.
        pieces = tf_text.regex_split(strings, _SPECIAL, _SPECIAL)
        flat = pieces.flat_values
        special = tf.equal(flat, START_TOKEN) | tf.equal(flat, END_TOKEN)
        text = tf.where(special, "", self._normalize(flat))
        words = tf_text.regex_split(text, r"\s+|" + _WORDS, _WORDS)
        words = words.with_flat_values(
            tf_text.regex_split(words.flat_values, _BYTE_LEVEL_WORDS, _BYTE_LEVEL_WORDS)
        ).merge_dims(1, 2)
        whole = tf.RaggedTensor.from_row_lengths(tf.boolean_mask(flat, special), tf.cast(special, tf.int64))
        words = tf.concat([whole, words], axis=1)  # a special piece is one word, any other piece its words
        special = tf.gather(special, words.value_rowids())
        return pieces.with_flat_values(words).merge_dims(1, 2), special

    def _tokenize_graph(self, strings):
        length = self.sequence_length
        words, special = self._words(strings)
        # Each word gives at least one token: only the first `length - 2` can reach the output.
        within = tf.cast(words.row_splits[:-1], tf.int32)
        index = tf.range(tf.size(special), dtype=tf.int32) - tf.gather(within, tf.cast(words.value_rowids(), tf.int32))
        first = index < length - 2
        words = tf.ragged.boolean_mask(words, tf.RaggedTensor.from_row_splits(first, words.row_splits))
        special = tf.boolean_mask(special, first)
        symbols, row = self._byte_pair_encode(words.flat_values, special)
        ids = self._engine.vocabulary(symbols, self.end_id)
        text = tf.gather(tf.cast(words.value_rowids(), tf.int32), row)
        ids = tf.RaggedTensor.from_value_rowids(ids, text, nrows=tf.shape(strings, out_type=tf.int32)[0])
        batch = tf.shape(strings)[0]
        ids = tf.concat(
            [tf.fill([batch, 1], self.start_id), ids[:, : length - 2], tf.fill([batch, 1], self.end_id)], axis=1
        )
        return tf.ensure_shape(ids.to_tensor(self.pad_id, shape=[None, length]), [None, length])

    # Strings in ([N], [N, 1] or a scalar), ids out from the traced `_engine.tokenize` on CPU:
    # the same as `SubwordTokenizer`, which reads nothing else of its layer.
    call = SubwordTokenizer.call
    tokenize = SubwordTokenizer.tokenize
    compute_output_spec = SubwordTokenizer.compute_output_spec

    # --- Keras plumbing ---------------------------------------------------

    def get_config(self):
        config = super().get_config()
        config.pop("dtype", None)
        config.update(
            vocabulary=dict(self.vocabulary),
            merges=list(self.merges),
            sequence_length=self.sequence_length,
            pad_token=self.pad_token,
            max_text_bytes=self.max_text_bytes,
        )
        return config
