"""Hugging Face `BertModel` checkpoints as mmkeras text towers, with their WordPiece tokenizer."""

import json
import os

from mmkeras.pretrained.keras_hub_loader import KerasHubLoader
from mmkeras.pretrained.keras_hub_loader import read_hf_config
from mmkeras.pretrained.checkpoint_files import read_json

POOLINGS = ("cls", "pooler")
# Hugging Face `hidden_act` -> the activation set on keras-hub's blocks (None: BertBackbone's own, tanh GELU).
ACTIVATIONS = {"gelu": "gelu", "gelu_new": None, "gelu_pytorch_tanh": None, "relu": "relu"}


def load_hf_bert(directory, *, pooling="cls", sequence_length=None, dtype=None, name="text_encoder"):
    """Imports a Hugging Face `BertModel` checkpoint from a local directory as a text tower.

    Reads `config.json`, `model.safetensors` (or a sharded
    `model.safetensors.index.json`), `vocab.txt` (or the WordPiece
    vocabulary of a `tokenizer.json`) and `tokenizer_config.json` (optional:
    `do_lower_case`, `strip_accents`, the special tokens,
    `model_max_length`). Nothing is downloaded and torch is not needed.

    The tower is keras-hub's `BertBackbone` in a `KerasHubEncoder`, its
    weights ported by keras-hub's BERT converter from the checkpoint
    (`bert.`-prefixed names, as in a `BertForMaskedLM` file, are read too).
    keras-hub builds BERT with the tanh approximation of GELU; the tower sets
    the checkpoint's `hidden_act` (exact GELU for "gelu"), so it gives the
    reference's numbers.

    Outputs (the mmkeras tower contract): `sequence` is the reference's
    `last_hidden_state`, `padding_mask` is `token_ids != [PAD]`, and `pooled`
    is

    - "cls": the `[CLS]` token of `sequence` (after the last block's layer
      norm; what ALIGN-style dual encoders project), or
    - "pooler": the reference's `pooler_output`, the dense layer and tanh
      BERT trained for next-sentence prediction on that token. The `[CLS]`
      token itself stays available as `sequence[:, 0]`.

    The tower takes `token_ids` `[B, L]` (L up to `max_position_embeddings`);
    token types are 0 (one text) and the attention mask is the padding mask.
    The returned `WordPieceTokenizer` produces them from raw strings, in
    graph: `[CLS]`, the pieces, `[SEP]`, `[PAD]` up to `sequence_length`,
    the ids of the reference tokenizer with `padding="max_length",
    truncation=True`.

    Args:
        directory: the checkpoint directory (a Hugging Face model folder).
        pooling: "cls" or "pooler", see above.
        sequence_length: optional length of the token id rows; default the
            tokenizer's `model_max_length` when it is at most
            `max_position_embeddings`, else `max_position_embeddings`.
        dtype: optional dtype policy of the tower, e.g. "mixed_bfloat16".
        name: the tower's name.

    Returns:
        `(tower, tokenizer)`: a `KerasHubEncoder` (`modality="text"`,
        `output_dim` the hidden size) and a `WordPieceTokenizer`. A
        `DualEncoder` takes them as `text_encoder` and as the tokenizer of its
        `MultimodalPreprocessor`.

    Raises:
        ValueError: naming the file and the field, tensor or shapes: a missing
            file, a pickle checkpoint (`.bin`, `.pt`; with how to convert it),
            a `model_type` other than "bert", an unsupported `hidden_act`, a
            `sequence_length` over `max_position_embeddings`, a missing tensor
            or a tensor whose shape does not fit the config.

    Example:

    ```python
    bert, tokenizer = load_hf_bert("checkpoints/bert-base-uncased", sequence_length=64)
    features = bert(tokenizer(["a dog on a beach"]))["pooled"]
    ```
    """
    import keras_hub
    from keras_hub.src.utils.transformers import convert_bert

    from mmkeras.encoders.keras_hub_encoder import KerasHubEncoder

    if pooling not in POOLINGS:
        raise ValueError(f"`pooling` must be one of {POOLINGS}, got {pooling!r}.")
    directory = os.fspath(directory)
    config, config_path = read_hf_config(directory, "bert", "load_hf_bert")
    for field in ("vocab_size", "num_hidden_layers", "num_attention_heads", "hidden_size", "intermediate_size",
                  "max_position_embeddings"):
        if not isinstance(config.get(field), int):
            raise ValueError(f"{config_path}: {field} must be an int, got {config.get(field)!r}.")
    activation = config.get("hidden_act", "gelu")
    if activation not in ACTIVATIONS:
        raise ValueError(f"{config_path}: hidden_act {activation!r} is not supported; supported: {sorted(ACTIVATIONS)}.")
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError(f"{config_path}: position_embedding_type {config['position_embedding_type']!r} is not "
                         "supported; load_hf_bert reads 'absolute'.")
    loader = KerasHubLoader(directory, prefix="bert.")
    backbone = keras_hub.models.BertBackbone(
        **convert_bert.convert_backbone_config(config),
        dropout=float(config.get("hidden_dropout_prob", 0.1)),
        num_segments=int(config.get("type_vocab_size", 2)),
        dtype=dtype,
        name="bert_backbone",
    )
    convert_bert.convert_weights(backbone, loader, config)
    tokenizer = _tokenizer(directory, config, sequence_length)
    encoder = KerasHubEncoder(
        tower=backbone,
        modality="text",
        pooling="first" if pooling == "cls" else "auto",
        pad_token_id=tokenizer.pad_id,
        activation=ACTIVATIONS[activation],
        dtype=dtype,
        name=name,
    )
    return encoder, tokenizer


def _tokenizer(directory, config, sequence_length):
    from mmkeras.preprocessing.wordpiece_tokenizer import WordPieceTokenizer

    settings_path = os.path.join(directory, "tokenizer_config.json")
    settings = read_json(settings_path, required=False) or {}
    positions = int(config["max_position_embeddings"])
    if sequence_length is None:
        length = settings.get("model_max_length")
        sequence_length = length if isinstance(length, int) and 2 <= length <= positions else positions
    elif isinstance(sequence_length, bool) or not isinstance(sequence_length, int) or not 2 <= sequence_length <= positions:
        raise ValueError(
            f"`sequence_length` must be an int from 2 to max_position_embeddings={positions} "
            f"(config.json); got {sequence_length!r}."
        )
    if settings.get("tokenize_chinese_chars", True) is False:
        raise ValueError(f"{settings_path}: tokenize_chinese_chars false is not supported.")

    def token(field, default):
        value = settings.get(field, default)
        return value.get("content", default) if isinstance(value, dict) else (value or default)

    options = {
        "sequence_length": sequence_length,
        "lowercase": bool(settings.get("do_lower_case", True)),
        "strip_accents": settings.get("strip_accents"),
        "start_token": token("cls_token", "[CLS]"),
        "end_token": token("sep_token", "[SEP]"),
        "pad_token": token("pad_token", "[PAD]"),
        "unknown_token": token("unk_token", "[UNK]"),
        "name": "tokenizer",
    }
    vocabulary_file = os.path.join(directory, "vocab.txt")
    if os.path.isfile(vocabulary_file):
        return WordPieceTokenizer.from_file(vocabulary_file, **options)
    fast_file = os.path.join(directory, "tokenizer.json")
    if not os.path.isfile(fast_file):
        raise ValueError(f"{directory} has no tokenizer: vocab.txt (or tokenizer.json) is missing.")
    with open(fast_file, encoding="utf-8") as f:
        model = json.load(f).get("model") or {}
    vocabulary = model.get("vocab")
    if model.get("type") != "WordPiece" or not isinstance(vocabulary, dict):
        raise ValueError(f"{fast_file}: 'model' is not a WordPiece model with a 'vocab'.")
    ordered = sorted(vocabulary, key=vocabulary.get)
    if [vocabulary[t] for t in ordered] != list(range(len(ordered))):
        raise ValueError(f"{fast_file}: the WordPiece ids are not 0 .. {len(ordered) - 1}.")
    try:
        return WordPieceTokenizer(ordered, suffix_indicator=model.get("continuing_subword_prefix", "##"), **options)
    except ValueError as error:
        raise ValueError(f"{fast_file}: {error}") from None
