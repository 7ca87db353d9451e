"""In-graph WordPiece tokenizer with fixed special ids, saved with the model.

Built on `keras_hub.tokenizers.WordPieceTokenizer` (tensorflow-text's
`FastWordpieceTokenizer`) and `keras_hub.tokenizers.compute_word_piece_vocabulary`.

Export. The vocabulary is compiled by tensorflow-text into a `uint8` model
buffer that traced functions capture as a constant; the tokenizer owns no
lookup table or other TF resource, so the "untracked resource" failure of
keras-hub #1629 / #2015 cannot happen: any `tf.function` that calls the
tokenizer can be saved with `tf.saved_model.save` (or `keras.export`) whether
or not the tokenizer is an attribute of the exported object. The process that
*loads* the SavedModel must `import tensorflow_text` first: the pre-tokenizer
(`RegexSplitWithOffsets`, `NormalizeUTF8`, `CaseFoldUTF8`) and WordPiece
(`FastWordpieceTokenizeWithOffsets`, `FastWordpieceDetokenize`) ops are
tensorflow-text custom ops, not core TensorFlow ops. Neither keras-hub nor
mmkeras is needed to load and run it.
"""

import keras
import numpy as np
import tensorflow as tf

from mmkeras.preprocessing.special_tokens import BOS_ID
from mmkeras.preprocessing.special_tokens import EOS_ID
from mmkeras.preprocessing.special_tokens import PAD_ID
from mmkeras.preprocessing.special_tokens import SPECIAL_TOKENS
from mmkeras.preprocessing.special_tokens import UNK_ID
from mmkeras.preprocessing.text_limits import check_min_int

DEFAULT_MAX_TEXT_BYTES = 65536


def _clean_utf8(strings):
    """Makes any bytes safe to tokenize.

    Invalid UTF-8 sequences become U+FFFD (the tokenizer would fail on them)
    and NUL characters become spaces (the pre-tokenizer's regex split would
    drop everything after a NUL).
    """
    strings = tf.strings.unicode_transcode(
        strings,
        input_encoding="UTF-8",
        output_encoding="UTF-8",
        errors="replace",
        replacement_char=0xFFFD,
        replace_control_characters=False,
    )
    return tf.strings.regex_replace(strings, "\\x00", " ")


def _truncate_utf8(strings, max_bytes):
    """Cuts `[N]` strings longer than `max_bytes` at the last UTF-8 character boundary within `max_bytes`.

    Only the 4 bytes around the cut are read, so a 50 MB string costs no more
    than a short one. A cut inside a multi-byte character drops that
    character (up to 3 bytes); invalid UTF-8 is left to `_clean_utf8`.
    """
    long = tf.strings.length(strings) > max_bytes
    # Bytes max_bytes - 3 .. max_bytes: the last 3 kept bytes and the first dropped one.
    window = tf.strings.substr(tf.where(long, strings, "\0" * (max_bytes + 1)), max_bytes - 3, 4)
    window = tf.cast(tf.io.decode_raw(window, tf.uint8, fixed_length=4), tf.int32)
    starts_char = (window & 0xC0) != 0x80  # not a continuation byte
    cut = tf.fill(tf.shape(strings), max_bytes)
    for i in range(4):  # the last character start at or before max_bytes wins
        cut = tf.where(starts_char[:, i], max_bytes - 3 + i, cut)
    return tf.where(long, tf.strings.substr(strings, tf.zeros_like(cut), cut), strings)


class _Engine:
    """Holds the keras-hub tokenizer and traced helpers out of Keras/TF object tracking.

    The vocabulary lives in the layer config; keeping the inner keras-hub layer
    untracked stops `.keras` saving from also writing (and reloading) it as an
    asset, and keeps its `tf.function`s from being saved as attributes of SavedModels.
    """

    def __init__(self, wordpiece, tokenize_graph, detokenize_graph):
        self.wordpiece = wordpiece
        # Traced once: eager calls would otherwise make keras-hub convert outputs to
        # Python lists (a pure-Python path for ragged data), and graphs that call
        # the tokenizer reuse this trace.
        self.tokenize = tf.function(
            tokenize_graph, input_signature=[tf.TensorSpec([None], tf.string)], autograph=False
        )
        self.detokenize = tf.function(
            detokenize_graph,
            input_signature=[tf.TensorSpec([None, None], tf.int32)],
            autograph=False,
        )


@keras.saving.register_keras_serializable(package="mmkeras")
class SubwordTokenizer(keras.layers.Layer):
    """WordPiece tokenizer layer: strings to `[BOS] tokens [EOS] [PAD]...` ids, in-graph.

    Special ids are fixed: `[PAD]=0, [UNK]=1, [BOS]=2, [EOS]=3` (the first four
    vocabulary entries). Text is cleaned (invalid UTF-8 bytes become U+FFFD),
    optionally lowercased / accent-stripped, split on whitespace, punctuation
    and CJK characters, and WordPiece-encoded; words the vocabulary cannot spell
    and words over 100 bytes become `[UNK]`.

    Output is int32 `[N, sequence_length]` (`[sequence_length]` for a scalar
    string). Truncation is clean: the word pieces are cut to
    `sequence_length - add_bos - add_eos`, so `[BOS]` and `[EOS]` are always
    present even for truncated text (a word may lose its trailing pieces).
    Empty strings give `[BOS] [EOS] [PAD]...`. Texts longer than
    `max_text_bytes` are cut to that many bytes (at a UTF-8 character
    boundary) before anything else, so a huge string costs no more than a
    long caption; only the first few dozen words fit `sequence_length` anyway.

    `detokenize` stops at the first `[EOS]`, drops `[PAD]` / `[BOS]`, joins `##`
    pieces back into words and words with single spaces. Punctuation comes
    back as its own space-separated word (`"a, b"` -> `"a , b"`), and text is
    lowercased when `lowercase=True`; otherwise in-vocabulary text round-trips
    exactly.

    Saving: the vocabulary is part of `get_config`, so `.keras` files hold it.
    SavedModels: call the tokenizer inside the exported `tf.function`s; nothing
    needs to be attached or tracked. The loading process must import the
    modules in `SubwordTokenizer.serving_imports` (`tensorflow_text`) first.

    Args:
        vocabulary: list of unique token strings whose first four entries are
            `"[PAD]", "[UNK]", "[BOS]", "[EOS]"`; suffix pieces start with `##`.
        sequence_length: length of the output id sequences.
        lowercase: lowercase (Unicode case folding) before tokenizing.
        strip_accents: remove accents (NFD, drop combining marks).
        split_on_cjk: split CJK ideographs into single-character words.
        add_bos: start each sequence with `[BOS]`.
        add_eos: end each sequence with `[EOS]`.
        max_text_bytes: the most UTF-8 bytes of each text that are tokenized
            (at least 4); the rest is ignored.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`; the output
            is int32 whatever the dtype policy).

    Example:

    >>> tokenizer = SubwordTokenizer.train(
    ...     ["a red circle", "a blue square"], vocabulary_size=60, sequence_length=16)
    >>> ids = tokenizer(["A red square"])
    >>> ids.numpy()[0, 0] == tokenizer.bos_id, ids.shape
    (np.True_, TensorShape([1, 16]))
    >>> tokenizer.detokenize(ids).numpy().tolist()
    [b'a red square']
    """

    pad_id = PAD_ID
    unk_id = UNK_ID
    bos_id = BOS_ID
    eos_id = EOS_ID
    # Modules a process must import before `tf.saved_model.load` of a model
    # that tokenizes in-graph (they register the custom ops). Exporters can
    # record this next to their signatures.
    serving_imports = ("tensorflow_text",)

    def __init__(self, vocabulary, sequence_length=32, lowercase=True, strip_accents=False, split_on_cjk=True,
                 add_bos=True, add_eos=True, max_text_bytes=DEFAULT_MAX_TEXT_BYTES, **kwargs):
        super().__init__(**kwargs)
        import keras_hub

        # === Config ===
        if isinstance(vocabulary, (str, bytes)) or not isinstance(vocabulary, (list, tuple)):
            raise ValueError(
                f"`vocabulary` must be a list of token strings; got {type(vocabulary).__name__}."
            )
        vocabulary = [str(token) for token in vocabulary]
        if tuple(vocabulary[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
            raise ValueError(
                f"`vocabulary` must start with the special tokens {list(SPECIAL_TOKENS)} (ids 0-3); "
                f"got {vocabulary[: len(SPECIAL_TOKENS)]}."
            )
        if len(vocabulary) <= len(SPECIAL_TOKENS):
            raise ValueError(
                "`vocabulary` must hold at least one token besides the four special tokens."
            )
        if len(set(vocabulary)) != len(vocabulary) or not all(vocabulary):
            raise ValueError("`vocabulary` entries must be unique, non-empty strings.")
        if isinstance(sequence_length, bool) or not isinstance(sequence_length, int):
            raise ValueError(f"`sequence_length` must be an int; got {sequence_length!r}.")
        num_special = int(bool(add_bos)) + int(bool(add_eos))
        if sequence_length <= num_special:
            raise ValueError(
                f"`sequence_length` must exceed the {num_special} [BOS]/[EOS] slots; got {sequence_length}."
            )
        check_min_int("max_text_bytes", max_text_bytes, 4)
        self.vocabulary = vocabulary
        self.sequence_length = sequence_length
        self.max_text_bytes = max_text_bytes
        self.lowercase = bool(lowercase)
        self.strip_accents = bool(strip_accents)
        self.split_on_cjk = bool(split_on_cjk)
        self.add_bos = bool(add_bos)
        self.add_eos = bool(add_eos)
        self._token_to_id = {token: i for i, token in enumerate(vocabulary)}
        # === Layers ===
        wordpiece = keras_hub.tokenizers.WordPieceTokenizer(
            vocabulary=vocabulary,
            sequence_length=sequence_length - num_special,
            lowercase=self.lowercase,
            strip_accents=self.strip_accents,
            split=True,
            split_on_cjk=self.split_on_cjk,
            oov_token=SPECIAL_TOKENS[UNK_ID],
            dtype="int32",
        )
        self._engine = _Engine(wordpiece, self._tokenize_graph, self._detokenize_graph)
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        self.built = True

    # --- training ---------------------------------------------------------

    @classmethod
    def train(cls, corpus, vocabulary_size, sequence_length=32, lowercase=True, strip_accents=False,
              split_on_cjk=True, add_bos=True, add_eos=True, **kwargs):
        """Learns a WordPiece vocabulary from a corpus and returns a tokenizer using it.

        Args:
            corpus: an iterable of `str` / `bytes`, or a `tf.data.Dataset` of
                `tf.string` scalars or vectors.
            vocabulary_size: maximum vocabulary size, special tokens included
                (a small corpus can give fewer).
            sequence_length: output length of the tokenizer.
            lowercase: lowercase before learning and tokenizing.
            strip_accents: strip accents before learning and tokenizing.
            split_on_cjk: split CJK ideographs into single-character words.
            add_bos: see the class.
            add_eos: see the class.
            **kwargs: other `SubwordTokenizer` / `keras.layers.Layer` arguments.

        Returns:
            A `SubwordTokenizer`.
        """
        import keras_hub

        if (
            isinstance(vocabulary_size, bool)
            or not isinstance(vocabulary_size, int)
            or vocabulary_size <= 4
        ):
            raise ValueError(
                f"`vocabulary_size` must be an int greater than 4; got {vocabulary_size!r}."
            )
        # The pre-tokenizer is plain TensorFlow ops: its `Dataset.map`s are traced
        # without AutoGraph, whose source conversion alone takes about a second.
        learn = tf.autograph.experimental.do_not_convert(keras_hub.tokenizers.compute_word_piece_vocabulary)
        dataset = _corpus_dataset(corpus).map(tf.autograph.experimental.do_not_convert(_clean_utf8))
        try:
            vocabulary = learn(
                dataset,
                vocabulary_size,
                lowercase=lowercase,
                strip_accents=strip_accents,
                split=True,
                split_on_cjk=split_on_cjk,
                reserved_tokens=list(SPECIAL_TOKENS),
            )
        except StopIteration:  # the learner reads the first word of an empty count
            raise ValueError("`corpus` contains no words to learn a vocabulary from.") from None
        return cls(vocabulary, sequence_length=sequence_length, lowercase=lowercase, strip_accents=strip_accents,
                   split_on_cjk=split_on_cjk, add_bos=add_bos, add_eos=add_eos, **kwargs)

    # --- vocabulary -------------------------------------------------------

    def vocabulary_size(self):
        """Number of tokens, special tokens included."""
        return len(self.vocabulary)

    def get_vocabulary(self):
        """The vocabulary as a list of token strings (index = id)."""
        return list(self.vocabulary)

    def id_to_token(self, id):
        """The token string of an id."""
        if (
            isinstance(id, (bool, np.bool_))
            or not isinstance(id, (int, np.integer))
            or not 0 <= id < len(self.vocabulary)
        ):
            raise ValueError(f"`id` must be an int in [0, {len(self.vocabulary) - 1}]; got {id!r}.")
        return self.vocabulary[int(id)]

    def token_to_id(self, token):
        """The id of a token string."""
        if token not in self._token_to_id:
            raise ValueError(f"`token` {token!r} is not in the vocabulary.")
        return self._token_to_id[token]

    # --- tokenize ---------------------------------------------------------

    def _tokenize_graph(self, strings):
        strings = _truncate_utf8(strings, self.max_text_bytes)
        pieces = self._engine.wordpiece.tokenize(_clean_utf8(strings))
        pieces = tf.cast(pieces, tf.int32)  # [N, L - specials], 0-padded
        batch = tf.shape(pieces)[0]
        parts = [pieces]
        if self.add_bos:
            parts.insert(0, tf.fill([batch, 1], BOS_ID))
        if self.add_eos:
            parts.append(tf.zeros([batch, 1], tf.int32))
        ids = tf.concat(parts, axis=1) if len(parts) > 1 else pieces
        if self.add_eos:
            # WordPiece never emits id 0, so the real length is the non-pad count.
            lengths = tf.reduce_sum(tf.cast(pieces != PAD_ID, tf.int32), axis=1) + int(self.add_bos)
            positions = tf.range(self.sequence_length)[None, :]
            ids = tf.where(positions == lengths[:, None], EOS_ID, ids)
        return tf.ensure_shape(ids, [None, self.sequence_length])

    def call(self, inputs, training=None):
        strings = tf.convert_to_tensor(inputs, dtype=tf.string)
        rank = strings.shape.rank
        if rank == 0:
            strings = strings[None]
        elif rank == 2 and strings.shape[1] == 1:
            strings = strings[:, 0]
        elif rank != 1:
            raise ValueError(
                f"`inputs` must be a string scalar, [N] or [N, 1]; got shape {strings.shape}."
            )
        with tf.device("cpu"):
            # One traced function per tokenizer, called eagerly or as a function-call op from
            # a caller's graph (a `tf.data` map, a train step, a SavedModel signature), instead
            # of adding the tokenizer's ops to every graph that uses it.
            ids = self._engine.tokenize(strings)
        return ids[0] if rank == 0 else ids

    def tokenize(self, inputs):
        """Same as calling the layer."""
        return self(inputs)

    # --- detokenize -------------------------------------------------------

    def _detokenize_graph(self, ids):
        size = len(self.vocabulary)
        ids = tf.where((ids < 0) | (ids >= size), UNK_ID, ids)
        before_eos = tf.cumsum(tf.cast(ids == EOS_ID, tf.int32), axis=1) == 0
        keep = before_eos & (ids != PAD_ID) & (ids != BOS_ID)
        return self._engine.wordpiece.detokenize(tf.ragged.boolean_mask(ids, keep))

    def detokenize(self, ids):
        """Token ids back to text.

        Args:
            ids: int `[N, L]`, `[L]`, or a `tf.RaggedTensor` `[N, None]`.
                Out-of-range ids read as `[UNK]`.

        Returns:
            `tf.string` `[N]` (a scalar for `[L]` input).
        """
        if isinstance(ids, tf.RaggedTensor):
            ids = ids.to_tensor(default_value=PAD_ID)
        ids = tf.cast(tf.convert_to_tensor(ids), tf.int32)
        rank = ids.shape.rank
        if rank == 1:
            ids = ids[None]
        elif rank != 2:
            raise ValueError(f"`ids` must be [L] or [N, L]; got shape {ids.shape}.")
        with tf.device("cpu"):
            if tf.executing_eagerly():
                text = self._engine.detokenize(ids)
            else:
                text = self._detokenize_graph(ids)
        return text[0] if rank == 1 else text

    # --- Keras plumbing ---------------------------------------------------

    def compute_output_spec(self, inputs):
        shape = tuple(inputs.shape)
        if len(shape) == 0:
            return keras.KerasTensor((self.sequence_length,), dtype="int32")
        return keras.KerasTensor((shape[0], self.sequence_length), dtype="int32")

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary": list(self.vocabulary),
                "sequence_length": self.sequence_length,
                "lowercase": self.lowercase,
                "strip_accents": self.strip_accents,
                "split_on_cjk": self.split_on_cjk,
                "add_bos": self.add_bos,
                "add_eos": self.add_eos,
                "max_text_bytes": self.max_text_bytes,
            }
        )
        return config


def _corpus_dataset(corpus):
    """A `tf.data.Dataset` of strings from a dataset or an iterable of str/bytes."""
    if isinstance(corpus, tf.data.Dataset):
        spec = corpus.element_spec
        if not (
            isinstance(spec, tf.TensorSpec)
            and spec.dtype == tf.string
            and spec.shape.rank in (0, 1)
        ):
            raise ValueError(
                f"`corpus` dataset must yield tf.string scalars or vectors; got element spec {spec}."
            )
        return corpus
    if isinstance(corpus, (str, bytes)):
        raise ValueError("`corpus` must be an iterable of strings, not a single string.")
    try:
        items = list(corpus)
    except TypeError:
        raise ValueError(
            f"`corpus` must be an iterable of strings or a tf.data.Dataset; got {type(corpus).__name__}."
        ) from None
    encoded = []
    for item in items:
        if isinstance(item, str):
            encoded.append(item.encode("utf-8", errors="replace"))
        elif isinstance(item, bytes):
            encoded.append(item)
        else:
            raise ValueError(f"`corpus` items must be str or bytes; got {type(item).__name__}.")
    if not encoded:
        raise ValueError("`corpus` is empty.")
    return tf.data.Dataset.from_tensor_slices(np.array(encoded, dtype=object)).batch(1024)
