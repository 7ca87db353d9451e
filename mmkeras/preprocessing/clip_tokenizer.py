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

import keras
import numpy as np
import tensorflow as tf

from mmkeras.preprocessing.subword_tokenizer import DEFAULT_MAX_TEXT_BYTES
from mmkeras.preprocessing.subword_tokenizer import _truncate_utf8
from mmkeras.preprocessing.text_limits import check_min_int
from mmkeras.preprocessing.text_limits import errors_named
from mmkeras.preprocessing.text_limits import frame_ids
from mmkeras.preprocessing.text_limits import read_tokenizer_file
from mmkeras.preprocessing.tokenizer_base import TokenizerBase

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
CLEANINGS = (None, "open_clip")
# open_clip's SimpleTokenizer: its special tokens, matched where a word starts in the cleaned, lowercased text.
OPEN_CLIP_START, OPEN_CLIP_END = "<start_of_text>", "<end_of_text>"
_OPEN_CLIP_WORDS = r"<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+"
# ftfy's remove_control_chars, and its remove_terminal_escapes.
_CONTROL_CHARACTERS = r"[\x00-\x08\x0B\x0E-\x1F\x7F\x{206A}-\x{206F}\x{FEFF}\x{FFF9}-\x{FFFC}]"
_TERMINAL_ESCAPES = r"\x1B\[[0-9;]*[a-zA-Z]"
# ftfy's fix_latin_ligatures table.
_LIGATURES = {
    "Ĳ": "IJ", "ĳ": "ij", "ŉ": "ʼn", "Ǳ": "DZ", "ǲ": "Dz", "ǳ": "dz", "Ǆ": "DŽ", "ǅ": "Dž", "ǆ": "dž", "Ǉ": "LJ",
    "ǈ": "Lj", "ǉ": "lj", "Ǌ": "NJ", "ǋ": "Nj", "ǌ": "nj", "ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi",
    "ﬄ": "ffl", "ﬅ": "ſt", "ﬆ": "st",
}
# HTML character references as ftfy's `unescape_html` finds them (a semicolon needed) and as `html.unescape` does.
# Python's Final_Sigma context: cased letters (Lu, Ll, Lt) and case-ignorable characters (marks, format characters,
# modifier letters and symbols, and the apostrophes, periods and colons of Unicode's MidLetter / MidNumLet).
_CASED = r"\p{Lu}\p{Ll}\p{Lt}"
_CASE_IGNORABLE = r"\p{Mn}\p{Me}\p{Cf}\p{Lm}\p{Sk}'.:\x{B7}\x{387}\x{5F4}\x{2018}\x{2019}\x{2024}\x{2027}\x{FE13}\x{FE52}\x{FE55}\x{FF07}\x{FF0E}\x{FF1A}"
_FINAL_SIGMA = rf"([{_CASED}][{_CASE_IGNORABLE}]*)Σ([{_CASE_IGNORABLE}]*)([^{_CASED}{_CASE_IGNORABLE}]|$)"
_FTFY_ENTITY = r"&#?[0-9A-Za-z]{1,24};"
_HTML_ENTITY = r"&(?:#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)"


def _ftfy_character_map():
    """`{character: text}`: ftfy's C1-control, ligature, width and quote fixes, applied in its order."""
    import unicodedata

    steps = [{}, {ord(k): v for k, v in _LIGATURES.items()}, {0x3000: " "}, {}]
    for byte in range(0x80, 0xA0):  # C1 controls read as Windows-1252 (bytes it leaves undefined stay)
        try:
            steps[0][byte] = bytes([byte]).decode("cp1252")
        except UnicodeDecodeError:
            pass
    for code in range(0xFF01, 0xFFF0):  # halfwidth and fullwidth forms
        alternate = unicodedata.normalize("NFKC", chr(code))
        if alternate != chr(code):
            steps[2][code] = alternate
    steps[3].update({code: "'" for code in (0x02BC, 0x2018, 0x2019, 0x201A, 0x201B)})
    steps[3].update({code: '"' for code in range(0x201C, 0x2020)})
    table = {}
    for step in steps:
        for code in step:
            character = chr(code)
            text = character
            for each in steps:
                text = text.translate(each)
            table[character] = text
    return {k: v for k, v in table.items() if k != v}


class _HtmlEntities:
    """In-graph `html.unescape` and ftfy's `unescape_html` (one level each call), from the standard library's tables."""

    def __init__(self):
        import html
        import html.entities

        named = {"&" + name: text for name, text in html.entities.html5.items()}
        strict = {key: text for key, text in named.items() if key.endswith(";")}
        for key, text in list(strict.items()):  # ftfy also reads some names written in capitals
            if key == key.lower() and html.unescape(key.upper()) == key.upper():
                strict[key.upper()] = text.upper()
        self.legacy_lengths = sorted({len(key) for key in named if not key.endswith(";")}, reverse=True)
        self.tables = {}
        for which, table in (("html", named), ("ftfy", strict)):
            self.tables[which] = (
                _HashLookup(list(table), range(len(table)), "HTML entities"),
                np.array([text.encode("utf-8") for text in table.values()], dtype=object),
            )
        # html.unescape's numeric rules: a few code points read as others, some dropped.
        self.charrefs = np.array([html._invalid_charrefs.get(i, "").encode("utf-8") for i in range(160)], dtype=object)
        self.has_charref = np.array([i in html._invalid_charrefs for i in range(160)])
        self.dropped = np.array(sorted(html._invalid_codepoints), dtype="int64")

    def _numeric(self, pieces):
        """`(is_numeric, text)` of `&#...;` pieces, as `html.unescape` decodes them."""
        decimal = tf.strings.regex_full_match(pieces, r"&#[0-9]+;?")
        hexadecimal = tf.strings.regex_full_match(pieces, r"&#[xX][0-9a-fA-F]+;?")
        digits = tf.strings.regex_replace(pieces, r"^&#[xX]?0*|;$", "")
        too_big = tf.strings.length(digits) > tf.where(hexadecimal, 6, 7)
        digits = tf.where((decimal | hexadecimal) & ~too_big, digits, "0")
        codes = tf.cast(tf.strings.unicode_decode(digits, "UTF-8"), tf.int64)
        values = tf.where(codes > 57, tf.bitwise.bitwise_or(codes, 32) - 87, codes - 48)
        base = tf.where(hexadecimal, tf.constant(16, tf.int64), 10)
        position = tf.ragged.range(codes.row_lengths())
        exponent = codes.row_lengths()[:, None] - 1 - position
        number = tf.reduce_sum(values * tf.pow(base[:, None], exponent), axis=1)
        number = tf.where(too_big, tf.constant(0x110000, tf.int64), number)
        invalid = ((number >= 0xD800) & (number <= 0xDFFF)) | (number > 0x10FFFF)
        index = tf.minimum(tf.searchsorted(tf.constant(self.dropped), number), len(self.dropped) - 1)
        dropped = tf.equal(tf.gather(tf.constant(self.dropped), index), number)
        small = tf.minimum(number, 159)
        charref = (number < 160) & tf.gather(tf.constant(self.has_charref), small)  # checked first, as there
        invalid &= ~charref
        dropped &= ~charref
        code = tf.where(invalid | dropped | charref, tf.constant(0xFFFD, tf.int64), number)
        text = tf.strings.unicode_encode(tf.cast(code, tf.int32)[:, None], "UTF-8")
        text = tf.where(dropped, "", tf.where(charref, tf.gather(tf.constant(self.charrefs), small), text))
        return decimal | hexadecimal, text

    def _named(self, pieces, which):
        lookup, texts = self.tables[which]
        index = lookup(pieces, -1)
        found = index >= 0
        text = tf.where(found, tf.gather(tf.constant(texts), tf.maximum(index, 0)), pieces)
        if which == "ftfy":
            return text
        # html.unescape: else the longest legacy name (no semicolon) that starts it, the rest kept.
        for length in reversed(self.legacy_lengths):  # shortest first: longer hits overwrite
            prefix = tf.strings.substr(pieces, 0, length)
            index = lookup(prefix, -1)
            hit = ~found & (index >= 0) & (tf.strings.length(pieces) > length) & ~tf.strings.regex_full_match(prefix, ".*;")
            size = tf.strings.length(pieces)
            rest = tf.strings.substr(pieces, tf.minimum(size, length), size)
            text = tf.where(hit, tf.strings.join([tf.gather(tf.constant(texts), tf.maximum(index, 0)), rest]), text)
        return text

    def __call__(self, strings, which):
        """`strings` with one level of references decoded: "html" as `html.unescape`, "ftfy" as ftfy."""
        import tensorflow_text as tf_text

        pattern = _HTML_ENTITY if which == "html" else _FTFY_ENTITY
        pieces = tf_text.regex_split(strings, pattern, pattern)
        flat = pieces.flat_values
        is_entity = tf.strings.regex_full_match(flat, pattern)
        numeric, number_text = self._numeric(flat)
        if which == "ftfy":  # ftfy keeps a numeric reference that html.unescape would not read whole
            numeric &= tf.strings.regex_full_match(flat, r"&#[0-9]+;|&#[xX][0-9a-fA-F]+;")
            is_entity &= numeric | ~tf.strings.regex_full_match(flat, "&#.*")
        decoded = tf.where(numeric, number_text, self._named(flat, which))
        return tf.strings.reduce_join(pieces.with_flat_values(tf.where(is_entity, decoded, flat)), axis=1)


def _open_clip_clean(strings, character_map, character_texts, entities):
    """open_clip's `whitespace_clean(basic_clean(text)).lower()`, in-graph; `ClipTokenizer` says what differs."""
    import tensorflow_text as tf_text

    # ftfy removes NUL; TensorFlow's regex ops would stop at it.
    strings = tf.strings.regex_replace(strings, r"\x00", "")
    # ftfy decodes references (until nothing changes) unless the text has a "<".
    decoded = strings
    for _ in range(4):
        decoded = entities(decoded, "ftfy")
    strings = tf.where(tf.strings.regex_full_match(strings, r"(?s).*<.*"), strings, decoded)
    chars = tf.strings.unicode_split(strings, "UTF-8")
    index = character_map(chars.flat_values, -1)
    fixed = tf.where(index >= 0, tf.gather(tf.constant(character_texts), tf.maximum(index, 0)), chars.flat_values)
    strings = tf.strings.reduce_join(chars.with_flat_values(fixed), axis=-1)
    strings = tf.strings.regex_replace(strings, _TERMINAL_ESCAPES, "")
    strings = tf.strings.regex_replace(strings, _CONTROL_CHARACTERS, "")
    strings = tf_text.normalize_utf8(strings, "NFC")
    for _ in range(2):  # html.unescape(html.unescape(text))
        strings = entities(strings, "html")
    strings = tf.strings.regex_replace(tf.strings.regex_replace(strings, _WHITESPACE, " "), r"^ | $", "")
    # Python's lower(): a capital sigma after a cased letter and not before one (case-ignorable characters
    # between) is the final sigma.
    strings = tf.strings.regex_replace(strings, _FINAL_SIGMA, "\\1ς\\2\\3")
    return tf.strings.lower(tf.strings.regex_replace(strings, "Σ", "σ"), encoding="utf-8")


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

    def __init__(self, vocabulary, merges, tokenize_graph, cleaning=None):
        self.vocabulary = _HashLookup(list(vocabulary), list(vocabulary.values()), "vocabulary")
        self.character_map = self.character_texts = self.entities = None
        if cleaning == "open_clip":
            table = _ftfy_character_map()
            self.character_map = _HashLookup(list(table), range(len(table)), "character map")
            self.character_texts = np.array([text.encode("utf-8") for text in table.values()], dtype=object)
            self.entities = _HtmlEntities()
        self.merge_ranks = _HashLookup(merges, range(len(merges)), "merges")
        self.no_merge = len(merges)
        self.byte_symbols = _bytes_to_unicode()
        self.tokenize = tf.function(
            tokenize_graph, input_signature=[tf.TensorSpec([None], tf.string)], autograph=False
        )


@keras.saving.register_keras_serializable(package="mmkeras")
class ClipTokenizer(TokenizerBase):
    """CLIP's byte-level BPE tokenizer as a layer: strings to `[N, sequence_length]` int32 ids, in-graph.

    Gives the ids of Hugging Face's `CLIPTokenizer(text, padding="max_length",
    truncation=True, max_length=sequence_length)` (or, with
    `cleaning="open_clip"`, of open_clip's tokenizer): `<|startoftext|>`, the
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
        cleaning: None (the normalisation above, Hugging Face's) or
            "open_clip": the ids of open_clip's `SimpleTokenizer` (with
            `pad_token` the vocabulary's id-0 symbol, `"!"`, as it pads with
            0). The text is cleaned as open_clip's `basic_clean`,
            `whitespace_clean` and `lower` do: ftfy's character fixes (C1
            controls read as Windows-1252, Latin ligatures split, full-width
            forms and the ideographic space to ASCII, curly quotes
            straightened, terminal escapes and control characters removed,
            NFC), HTML character references decoded as ftfy and then
            `html.unescape` twice do (named, from Python's HTML5 table, and
            numeric), whitespace runs to one space and stripped, lower case
            with the final sigma; then split with its pattern, where
            `<start_of_text>` and `<end_of_text>` (any case) are the special
            tokens (`<|endoftext|>` is plain text there). Approximated:
            ftfy's mojibake repair (`fix_encoding`, e.g. "Ã©" -> "é") is
            not done; the final sigma's context counts Lu, Ll and Lt letters
            as cased (not the few others Python counts, such as "ª"); a `'`
            before a long s (`ſ`), which open_clip's case-insensitive pattern
            reads as `'s`, is two words here; and letters newer than
            TensorFlow's Unicode tables lowercase as those tables say.
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
                 max_text_bytes=DEFAULT_MAX_TEXT_BYTES, cleaning=None, **kwargs):
        super().__init__(**kwargs)
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
        check_min_int("sequence_length", sequence_length, 2, "start and end tokens")
        check_min_int("max_text_bytes", max_text_bytes, 4)
        if cleaning not in CLEANINGS:
            raise ValueError(f"`cleaning` must be one of {CLEANINGS}; got {cleaning!r}.")
        # === Config ===
        self.vocabulary = vocabulary
        self.merges = merges
        self.sequence_length = sequence_length
        self.pad_token = pad_token
        self.max_text_bytes = max_text_bytes
        self.cleaning = cleaning
        self.start_id = vocabulary[START_TOKEN]
        self.end_id = vocabulary[END_TOKEN]
        self.pad_id = vocabulary[pad_token]
        self._ready(_Engine(vocabulary, merges, self._tokenize_graph, cleaning))

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
        vocabulary, lines = read_tokenizer_file(vocabulary_file), read_tokenizer_file(merges_file).split("\n")
        try:
            vocabulary = json.loads(vocabulary)
        except ValueError as error:
            raise ValueError(f"{vocabulary_file} is not a JSON vocabulary ({error}).") from None
        merges = [line for i, line in enumerate(lines) if line and not (i == 0 and line.startswith("#version"))]
        with errors_named(f"{vocabulary_file} / {merges_file}"):
            return cls(vocabulary, merges, **kwargs)

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
        if self.cleaning == "open_clip":
            return self._open_clip_words(strings)
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

    def _open_clip_words(self, strings):
        """`_words` of open_clip's tokenizer: its cleaning, then its pattern, its special tokens where a word starts."""
        import tensorflow_text as tf_text

        engine = self._engine
        text = _open_clip_clean(strings, engine.character_map, engine.character_texts, engine.entities)  # no NUL is left
        words = tf_text.regex_split(text, r"\s+|" + _OPEN_CLIP_WORDS, _OPEN_CLIP_WORDS)
        flat = words.flat_values
        is_start, is_end = tf.equal(flat, OPEN_CLIP_START), tf.equal(flat, OPEN_CLIP_END)
        flat = tf.where(is_start, START_TOKEN, tf.where(is_end, END_TOKEN, flat))
        return words.with_flat_values(flat), is_start | is_end

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
        return frame_ids(ids, tf.shape(strings)[0], self.start_id, self.end_id, self.pad_id, length)

    # --- Keras plumbing ---------------------------------------------------

    def get_config(self):
        config = super().get_config()
        config.update(
            vocabulary=dict(self.vocabulary),
            merges=list(self.merges),
            sequence_length=self.sequence_length,
            pad_token=self.pad_token,
            max_text_bytes=self.max_text_bytes,
            cleaning=self.cleaning,
        )
        return config
