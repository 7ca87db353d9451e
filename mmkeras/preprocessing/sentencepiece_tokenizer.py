"""In-graph SentencePiece tokenizer giving the ids of Hugging Face's `SiglipTokenizer`.

The reference is transformers' `SiglipTokenizer(text, padding="max_length",
truncation=True, max_length=L)` on a SentencePiece `spiece.model`:

1. `▁` (U+2581) in the text becomes a space;
2. lower case (Python's `str.lower`: `İ` gives `i̇`, a capital sigma at the
   end of a word the final sigma);
3. ASCII punctuation (Python's `string.punctuation`) is deleted, every run of
   whitespace (Python's `\\s`) becomes one space, and the ends are stripped
   (big_vision's `canonicalize_text`);
4. the text is encoded by SentencePiece behind the unknown token and `▁`
   (`"<unk>▁" + text`), whose pieces are then dropped: the reference's way to
   encode the start of a text as the start of a word; the model's own
   normaliser (e.g. nmt_nfkc) runs inside SentencePiece;
5. the first `L - 1` pieces, `</s>`, then the pad token (`</s>` too) up to `L`.

The SentencePiece model is tensorflow-text's `SentencepieceOp`, created inside
the traced tokenize function from the serialized model proto (an attribute of
the graph): the layer captures no TensorFlow resource, so any `tf.function`
that calls it can be saved (keras-hub #1629 / #2015, tensorflow/text #130 are
about tokenizers whose resource the SavedModel does not track). The process
that loads such a SavedModel must `import tensorflow_text` first.
"""

import base64
import binascii
import os

import keras
import numpy as np
import tensorflow as tf

from mmkeras.preprocessing.clip_tokenizer import _FINAL_SIGMA
from mmkeras.preprocessing.subword_tokenizer import DEFAULT_MAX_TEXT_BYTES
from mmkeras.preprocessing.subword_tokenizer import _truncate_utf8
from mmkeras.preprocessing.text_limits import check_min_int
from mmkeras.preprocessing.text_limits import errors_named
from mmkeras.preprocessing.text_limits import pad_ids
from mmkeras.preprocessing.text_limits import read_tokenizer_file
from mmkeras.preprocessing.tokenizer_base import TokenizerBase

WORD_START = "\u2581"
_NUL_STAND_IN = "\ue000"
# Python's `string.punctuation`.
_ASCII_PUNCTUATION = r"[!-/:-@\[-`{-~]"
# Python's `\s` on str (the characters `str.isspace` accepts).
_PYTHON_WHITESPACE = (
    r"[\t\n\x0B\f\r\x1C-\x1F \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}]+"
)


def _python_lower(strings):
    """`str.lower` in-graph: TensorFlow's lower case plus Python's `İ` and final-sigma rules."""
    strings = tf.strings.regex_replace(strings, "\u0130", "i\u0307")
    strings = tf.strings.regex_replace(strings, _FINAL_SIGMA, "\\1ς\\2\\3")
    return tf.strings.lower(tf.strings.regex_replace(strings, "Σ", "σ"), encoding="utf-8")


def _decode_proto(proto):
    """The serialized model of `proto`: bytes, or base64 text as `get_config` writes it."""
    if isinstance(proto, np.ndarray) and proto.dtype == np.uint8:
        proto = proto.tobytes()
    if isinstance(proto, (bytes, bytearray)):
        return bytes(proto)
    if isinstance(proto, str):
        try:
            return base64.b64decode(proto.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raise ValueError(
                "`proto` must be the serialized SentencePiece model (bytes) or its base64 text; got a string "
                "that is not base64 (use `SentencePieceTokenizer.from_file(path)` for a .model file)."
            ) from None
    raise ValueError(f"`proto` must be bytes or base64 text; got {type(proto).__name__}.")


class _Engine:
    """The model proto and the traced tokenize function, kept out of Keras / TF object tracking."""

    def __init__(self, proto, tokenize_graph):
        self.proto = proto
        self.tokenize = tf.function(
            tokenize_graph, input_signature=[tf.TensorSpec([None], tf.string)], autograph=False
        )


def _sentencepiece_ids(proto, strings):
    """Ragged int32 piece ids of `[N]` strings, from a model created in the current graph."""
    from tensorflow_text.python.ops import sentencepiece_tokenizer as ops

    generated = ops.gen_sentencepiece_tokenizer
    handle = generated.sentencepiece_op(model=proto)
    values, splits = generated.sentencepiece_tokenize_op(
        handle, strings, nbest_size=0, alpha=1.0, add_bos=False, add_eos=False, reverse=False,
        out_type=tf.int32, Tsplits=tf.int64,
    )
    return tf.RaggedTensor.from_row_splits(values, splits, validate=False)


@keras.saving.register_keras_serializable(package="mmkeras")
class SentencePieceTokenizer(TokenizerBase):
    """A SentencePiece model as a layer: strings to `[N, sequence_length]` int32 ids, in-graph.

    With `canonicalize=True` (the default) it gives the ids of Hugging Face's
    `SiglipTokenizer(text, padding="max_length", truncation=True,
    max_length=sequence_length)`, as the module docstring describes: the text
    lower-cased, without ASCII punctuation, whitespace collapsed, encoded as
    the reference does, cut to `sequence_length - 1` pieces, `end_token`,
    then `pad_token` up to the length; no attention mask (SigLIP's text tower
    reads the padding). With `canonicalize=False` the text is encoded as it
    is (lower-cased when `lowercase`), as `SentencePieceProcessor.encode`
    does. Texts longer than `max_text_bytes` are cut to that many bytes (at a
    UTF-8 character boundary) first, so a huge string costs no more than a
    long caption; invalid UTF-8 bytes read as U+FFFD.

    Not reproduced: the reference also splits the special tokens' own text
    (`</s>`, `<unk>`) out of a caption; here such text is ordinary text
    (its punctuation deleted). A NUL is read as U+E000, which gives the
    same unknown piece, except with a byte-fallback model (SigLIP's have
    none), which spells the bytes of U+E000 instead.

    Saving: the serialized model is part of `get_config` (base64), so a
    `.keras` file holds it. SavedModels: call the layer inside the exported
    `tf.function`s; nothing needs to be attached. The loading process must
    import `tensorflow_text` first (`SentencePieceTokenizer.serving_imports`).

    Args:
        proto: the serialized SentencePiece model: bytes (a `spiece.model`
            file's content) or its base64 text.
        sequence_length: length of the id rows (at least 2).
        canonicalize: bool, SigLIP's text cleaning and encoding (above).
        lowercase: bool, lower-case the text (`do_lower_case`).
        end_token: the piece that ends every text (`</s>`), or None for none.
        pad_token: the piece that pads the rows (`</s>` for SigLIP).
        unknown_token: the model's unknown piece (`<unk>`).
        max_text_bytes: the most UTF-8 bytes of each text that are tokenized
            (at least 4); the rest is ignored.
        **kwargs: `keras.layers.Layer` arguments (`name`; the output is int32).

    Example:

    ```python
    tokenizer = SentencePieceTokenizer.from_file("checkpoints/siglip/spiece.model", sequence_length=64)
    ids = tokenizer(["A photo of a cat."])  # [1, 64]: the pieces, </s>, then </s> padding
    ```
    """

    serving_imports = ("tensorflow_text",)

    def __init__(self, proto, sequence_length=64, canonicalize=True, lowercase=True, end_token="</s>",
                 pad_token="</s>", unknown_token="<unk>", max_text_bytes=DEFAULT_MAX_TEXT_BYTES, **kwargs):
        super().__init__(**kwargs)
        import tensorflow_text as tf_text

        proto = _decode_proto(proto)
        try:
            model = tf_text.SentencepieceTokenizer(model=proto, out_type=tf.int32)
            size = int(model.vocab_size())
        except (tf.errors.InvalidArgumentError, tf.errors.InternalError) as error:
            raise ValueError(f"`proto` is not a valid SentencePiece model ({error.message.strip()}).") from None
        for field, value, minimum in (("sequence_length", sequence_length, 2), ("max_text_bytes", max_text_bytes, 4)):
            check_min_int(field, value, minimum)
        ids = {}
        for field, token in (("end_token", end_token), ("pad_token", pad_token), ("unknown_token", unknown_token)):
            if token is None and field == "end_token":
                continue
            if not isinstance(token, str) or not token:
                raise ValueError(f"`{field}` must be a piece of the model; got {token!r}.")
            ids[field] = int(model.string_to_id(token).numpy())
            if model.id_to_string(ids[field]).numpy().decode("utf-8") != token:
                raise ValueError(f"`{field}` {token!r} is not a piece of the SentencePiece model.")
        # === Config ===
        self.proto = proto
        self.sequence_length = sequence_length
        self.canonicalize = bool(canonicalize)
        self.lowercase = bool(lowercase)
        self.end_token, self.pad_token, self.unknown_token = end_token, pad_token, unknown_token
        self.max_text_bytes = max_text_bytes
        self.end_id = ids.get("end_token")
        self.pad_id, self.unknown_id = ids["pad_token"], ids["unknown_token"]
        self._vocabulary_size = size
        # The pieces of the prefix the canonical encoding puts before every text.
        self._prefix = unknown_token + WORD_START
        self._prefix_length = int(model.tokenize(unknown_token).shape[0]) if self.canonicalize else 0
        self._ready(_Engine(proto, self._tokenize_graph))

    @classmethod
    def from_file(cls, model_file, **kwargs):
        """A tokenizer from a SentencePiece model file (`spiece.model`, `vocabulary.spm`).

        Args:
            model_file: path of the model file.
            **kwargs: other `SentencePieceTokenizer` arguments.

        Returns:
            A `SentencePieceTokenizer`.
        """
        proto = read_tokenizer_file(model_file, binary=True)
        with errors_named(os.fspath(model_file)):
            return cls(proto, **kwargs)

    def vocabulary_size(self):
        """The number of pieces of the model."""
        return self._vocabulary_size

    # --- tokenize ---------------------------------------------------------

    def _normalize(self, strings):
        strings = tf.strings.unicode_transcode(
            strings, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD, replace_control_characters=False
        )
        # TensorFlow's regex ops stop at a NUL: a private-use character stands in for it (both are unknown
        # characters to SentencePiece, and a run of unknown characters is one unknown piece).
        strings = tf.strings.regex_replace(strings, "\\x00", _NUL_STAND_IN)
        if self.canonicalize:
            strings = tf.strings.regex_replace(strings, WORD_START, " ")
        if self.lowercase:
            strings = _python_lower(strings)
        if self.canonicalize:
            strings = tf.strings.regex_replace(strings, _ASCII_PUNCTUATION, "")
            strings = tf.strings.regex_replace(strings, _PYTHON_WHITESPACE, " ")
            strings = tf.strings.regex_replace(strings, "^ | $", "")
            strings = tf.strings.join([self._prefix, strings])
        return strings

    def _tokenize_graph(self, strings):
        length = self.sequence_length
        strings = self._normalize(_truncate_utf8(strings, self.max_text_bytes))
        pieces = _sentencepiece_ids(self._engine.proto, strings)
        keep = length - (self.end_id is not None)
        pieces = pieces[:, self._prefix_length: self._prefix_length + keep]
        if self.end_id is not None:
            pieces = tf.concat([pieces, tf.fill([tf.shape(strings)[0], 1], self.end_id)], axis=1)
        return pad_ids(pieces, self.pad_id, length)

    # --- Keras plumbing ---------------------------------------------------

    def get_config(self):
        config = super().get_config()
        config.update(
            proto=base64.b64encode(self.proto).decode("ascii"),
            sequence_length=self.sequence_length,
            canonicalize=self.canonicalize,
            lowercase=self.lowercase,
            end_token=self.end_token,
            pad_token=self.pad_token,
            unknown_token=self.unknown_token,
            max_text_bytes=self.max_text_bytes,
        )
        return config
