"""In-graph BERT WordPiece tokenizer giving the ids of Hugging Face's `BertTokenizer`.

The reference is the `tokenizers` pipeline of Hugging Face's `BertTokenizer`
(`BertTokenizerFast` before transformers 5):

1. clean text: NUL, U+FFFD and control / format / private-use characters
   (Unicode category C, except tab, newline and carriage return) are
   deleted; every Unicode whitespace character becomes a space;
2. a space on both sides of every CJK ideograph;
3. with `strip_accents`: NFD, then non-spacing marks (Mn) deleted;
4. with `lowercase`: lower case, character by character;
5. split on whitespace, every punctuation character (Unicode P and the ASCII
   symbols) a word of its own;
6. WordPiece: the longest vocabulary prefix first, then `##` pieces; a word
   that cannot be covered, or has more than `max_word_chars` characters, is
   `[UNK]`;
7. `[CLS]`, the first `sequence_length - 2` pieces, `[SEP]`, `[PAD]` to the
   length.

keras-hub's `BertTokenizer` case-folds with NFKC (full-width letters,
ligatures, `ß` differ), keeps accents and does not clean the text, so its ids
differ from the reference on about a quarter of varied captions. Here the
WordPiece step is tensorflow-text's `FastWordpieceTokenizer` built from a
model buffer held as a graph constant: the layer owns no TensorFlow resource,
so any `tf.function` that calls it can be saved. The process that loads such
a SavedModel must `import tensorflow_text` first.
"""


import keras
import numpy as np
import tensorflow as tf

from mmkeras.config_fields import config_fields
from mmkeras.preprocessing.subword_tokenizer import DEFAULT_MAX_TEXT_BYTES
from mmkeras.preprocessing.subword_tokenizer import _truncate_utf8
from mmkeras.preprocessing.text_limits import check_min_int
from mmkeras.preprocessing.text_limits import errors_named
from mmkeras.preprocessing.text_limits import frame_ids
from mmkeras.preprocessing.text_limits import read_tokenizer_file
from mmkeras.preprocessing.tokenizer_base import TokenizerBase

# Cc (except \t \n \r), Cf, Co, Cs, NUL and U+FFFD: deleted by the reference's text cleaning.
_CONTROL = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F\p{Cf}\p{Co}\p{Cs}\x{FFFD}]"
# Unicode White_Space left after the cleaning (its other members are control characters).
_WHITESPACE = r"[\t\n\r \x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}]"
_CJK = (
    r"[\x{4E00}-\x{9FFF}\x{3400}-\x{4DBF}\x{20000}-\x{2A6DF}\x{2A700}-\x{2B73F}\x{2B740}-\x{2B81F}"
    r"\x{2B920}-\x{2CEAF}\x{F900}-\x{FAFF}\x{2F800}-\x{2FA1F}]"
)
_PUNCTUATION = r"[!-/:-@\[-`{-~\p{P}]"


class _Engine:
    """The WordPiece model buffer and the traced tokenize function, kept out of Keras / TF object tracking."""

    def __init__(self, vocabulary, suffix_indicator, unknown_token, max_word_chars, tokenize_graph):
        from tensorflow_text.core.pybinds import pywrap_fast_wordpiece_tokenizer_model_builder as builder

        # Up to 4 UTF-8 bytes a character: the character limit is applied separately.
        buffer = builder.build_fast_wordpiece_model(
            vocabulary, 4 * max_word_chars, suffix_indicator, unknown_token, True, False
        )
        self.model_buffer = np.frombuffer(buffer, dtype=np.uint8)
        self.tokenize = tf.function(
            tokenize_graph, input_signature=[tf.TensorSpec([None], tf.string)], autograph=False
        )


@keras.saving.register_keras_serializable(package="mmkeras")
class WordPieceTokenizer(TokenizerBase):
    """BERT's WordPiece tokenizer as a layer: strings to `[N, sequence_length]` int32 ids, in-graph.

    Gives the ids of Hugging Face's `BertTokenizer(text, padding="max_length",
    truncation=True, max_length=sequence_length)`: `start_token`, the text's
    pieces (cut to `sequence_length - 2`), `end_token`, then `pad_token` up
    to `sequence_length`. The module docstring says how text is cleaned,
    normalised and split. Texts longer than `max_text_bytes` are cut to that
    many bytes (at a UTF-8 character boundary) first, and only the first
    `sequence_length - 2` words are looked up, so a huge string costs no more
    than a caption.

    Saving: the vocabulary is part of `get_config`, so a `.keras` file holds
    it. SavedModels: call the layer inside the exported `tf.function`s;
    nothing needs to be attached. The loading process must import
    `tensorflow_text` first (`WordPieceTokenizer.serving_imports`).

    Args:
        vocabulary: list of tokens, the id of each is its index (the lines of
            a `vocab.txt`).
        sequence_length: length of the id rows (at least 2).
        lowercase: bool, lower-case the text (`do_lower_case`).
        strip_accents: bool or None, delete accents after NFD; None follows
            `lowercase` (the reference's default).
        start_token: the token that starts every row (`[CLS]`).
        end_token: the token that ends the text (`[SEP]`).
        pad_token: the token that pads the rows (`[PAD]`).
        unknown_token: the token of words the vocabulary cannot cover (`[UNK]`).
        suffix_indicator: the prefix of word-continuing pieces (`##`).
        max_word_chars: words with more characters are `unknown_token`.
        max_text_bytes: the most UTF-8 bytes of each text that are tokenized
            (at least 4); the rest is ignored.
        **kwargs: `keras.layers.Layer` arguments (`name`; the output is int32).

    Example:

    >>> vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "cat", "!", "ca", "##t", "##fe"]
    >>> tokenizer = WordPieceTokenizer(vocabulary, sequence_length=7)
    >>> tokenizer(["A CAT!", "Café", ""]).numpy().tolist()
    [[2, 4, 5, 6, 3, 0, 0], [2, 7, 9, 3, 0, 0, 0], [2, 3, 0, 0, 0, 0, 0]]
    """

    serving_imports = ("tensorflow_text",)

    def __init__(self, vocabulary, sequence_length=512, lowercase=True, strip_accents=None, start_token="[CLS]",
                 end_token="[SEP]", pad_token="[PAD]", unknown_token="[UNK]", suffix_indicator="##",
                 max_word_chars=100, max_text_bytes=DEFAULT_MAX_TEXT_BYTES, **kwargs):
        super().__init__(**kwargs)
        if isinstance(vocabulary, (str, bytes, dict)) or not isinstance(vocabulary, (list, tuple)) or not vocabulary:
            raise ValueError(f"`vocabulary` must be a non-empty list of tokens; got {type(vocabulary).__name__}.")
        vocabulary = [str(token) for token in vocabulary]
        index = {}
        for i, token in enumerate(vocabulary):
            if token in index:
                raise ValueError(f"`vocabulary` holds {token!r} twice (ids {index[token]} and {i}).")
            index[token] = i
        for field, token in (("start_token", start_token), ("end_token", end_token), ("pad_token", pad_token),
                             ("unknown_token", unknown_token)):
            if token not in index:
                raise ValueError(f"`{field}` {token!r} is not in `vocabulary`.")
        for field, value, minimum in (("sequence_length", sequence_length, 2), ("max_word_chars", max_word_chars, 1),
                                      ("max_text_bytes", max_text_bytes, 4)):
            check_min_int(field, value, minimum)
        if not isinstance(suffix_indicator, str) or not suffix_indicator:
            raise ValueError(f"`suffix_indicator` must be a non-empty string; got {suffix_indicator!r}.")
        # === Config ===
        self.vocabulary = vocabulary
        self.sequence_length = sequence_length
        self.lowercase = bool(lowercase)
        self.strip_accents = None if strip_accents is None else bool(strip_accents)
        self.start_token, self.end_token = start_token, end_token
        self.pad_token, self.unknown_token = pad_token, unknown_token
        self.suffix_indicator = suffix_indicator
        self.max_word_chars = max_word_chars
        self.max_text_bytes = max_text_bytes
        self.start_id, self.end_id = index[start_token], index[end_token]
        self.pad_id, self.unknown_id = index[pad_token], index[unknown_token]
        self._ready(_Engine(vocabulary, suffix_indicator, unknown_token, max_word_chars, self._tokenize_graph))

    @classmethod
    def from_file(cls, vocabulary_file, **kwargs):
        """A tokenizer from a `vocab.txt` (one token a line, the id is the line number).

        Args:
            vocabulary_file: path of the vocabulary file.
            **kwargs: other `WordPieceTokenizer` arguments.

        Returns:
            A `WordPieceTokenizer`.
        """
        vocabulary = read_tokenizer_file(vocabulary_file).split("\n")
        if vocabulary and vocabulary[-1] == "":
            vocabulary.pop()
        vocabulary = [token.rstrip("\r") for token in vocabulary]
        with errors_named(vocabulary_file):
            return cls(vocabulary, **kwargs)

    def vocabulary_size(self):
        """The number of token ids."""
        return len(self.vocabulary)

    # --- tokenize ---------------------------------------------------------

    def _normalize(self, strings):
        import tensorflow_text as tf_text

        strings = tf.strings.unicode_transcode(
            strings, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD, replace_control_characters=False
        )
        # TensorFlow's regex ops stop at a NUL: delete NULs (the reference does) before anything else.
        strings = tf.strings.regex_replace(strings, "\x00", "")
        strings = tf.strings.regex_replace(strings, _CONTROL, "")
        strings = tf.strings.regex_replace(strings, _WHITESPACE, " ")
        strings = tf.strings.regex_replace(strings, _CJK, r" \0 ")
        if self.lowercase if self.strip_accents is None else self.strip_accents:
            strings = tf.strings.regex_replace(tf_text.normalize_utf8(strings, "NFD"), r"\p{Mn}", "")
        if self.lowercase:
            strings = tf.strings.lower(tf.strings.regex_replace(strings, "Σ", "σ"), encoding="utf-8")
        return strings

    def _tokenize_graph(self, strings):
        import tensorflow_text as tf_text

        length = self.sequence_length
        strings = self._normalize(_truncate_utf8(strings, self.max_text_bytes))
        words = tf_text.regex_split(strings, r"\s+|" + _PUNCTUATION, _PUNCTUATION)
        # Each word gives at least one piece: only the first `length - 2` can reach the output.
        words = words[:, : length - 2]
        wordpiece = tf_text.FastWordpieceTokenizer(
            model_buffer=tf.constant(self._engine.model_buffer), token_out_type=tf.int32
        )
        # A word over `max_word_chars` characters is looked up as the unknown token itself.
        too_long = tf.strings.length(words.flat_values, unit="UTF8_CHAR") > self.max_word_chars
        pieces = wordpiece.tokenize(tf.where(too_long, self.unknown_token, words.flat_values))
        ids = words.with_flat_values(pieces).merge_dims(1, 2)
        return frame_ids(ids, tf.shape(strings)[0], self.start_id, self.end_id, self.pad_id, length)

    # --- Keras plumbing ---------------------------------------------------

    def get_config(self):
        config = super().get_config()
        config.update(config_fields(
            self, "vocabulary sequence_length lowercase strip_accents start_token end_token pad_token unknown_token "
            "suffix_indicator max_word_chars max_text_bytes"))
        return config

