"""In-graph preprocessing: image decoding/resizing, augmentation, and the subword, CLIP and SentencePiece tokenizers."""

from mmkeras.preprocessing.clip_tokenizer import ClipTokenizer
from mmkeras.preprocessing.image_header import read_image_size
from mmkeras.preprocessing.image_preprocessor import ImagePreprocessor
from mmkeras.preprocessing.image_preprocessor import check_image_bytes
from mmkeras.preprocessing.image_preprocessor import map_with_error_flags
from mmkeras.preprocessing.image_preprocessor import try_decode_image
from mmkeras.preprocessing.multimodal_preprocessor import MultimodalPreprocessor
from mmkeras.preprocessing.random_resized_crop import RandomResizedCrop
from mmkeras.preprocessing.sentencepiece_tokenizer import SentencePieceTokenizer
from mmkeras.preprocessing.subword_tokenizer import SubwordTokenizer
from mmkeras.preprocessing.wordpiece_tokenizer import WordPieceTokenizer

__all__ = [
    "ClipTokenizer",
    "ImagePreprocessor",
    "MultimodalPreprocessor",
    "RandomResizedCrop",
    "SentencePieceTokenizer",
    "SubwordTokenizer",
    "WordPieceTokenizer",
    "check_image_bytes",
    "map_with_error_flags",
    "read_image_size",
    "try_decode_image",
]
