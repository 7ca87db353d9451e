"""Evaluation metrics: captioning (BLEU, CIDEr-D), retrieval (exact and semantic), zero-shot and classification.

Most are plain functions over NumPy arrays / Python strings: run them on the outputs of a whole
evaluation split. The Keras metrics (`HeadAccuracy`, `MaskedTokenAccuracy`, `MaskedPerplexity`,
`MaskedTokenMetric`) are logged during training.
"""

from mmkeras.metrics.bleu import corpus_bleu
from mmkeras.metrics.cider import cider_d
from mmkeras.metrics.classification import accuracy
from mmkeras.metrics.classification import auroc
from mmkeras.metrics.classification import classification_metrics
from mmkeras.metrics.classification import macro_f1
from mmkeras.metrics.classification import multilabel_macro_f1
from mmkeras.metrics.classification import multilabel_metrics
from mmkeras.metrics.classification import per_class_report
from mmkeras.metrics.head_accuracy import HeadAccuracy
from mmkeras.metrics.masked_perplexity import MaskedPerplexity
from mmkeras.metrics.masked_token_accuracy import MaskedTokenAccuracy
from mmkeras.metrics.masked_token_metric import MaskedTokenMetric
from mmkeras.metrics.retrieval import retrieval_metrics
from mmkeras.metrics.retrieval import retrieval_ranks
from mmkeras.metrics.semantic_retrieval import score_retrieval_metrics
from mmkeras.metrics.semantic_retrieval import semantic_retrieval_metrics
from mmkeras.metrics.zero_shot import DEFAULT_TEMPLATES
from mmkeras.metrics.zero_shot import zero_shot_accuracy
from mmkeras.metrics.zero_shot import zero_shot_classifier

__all__ = [
    "DEFAULT_TEMPLATES",
    "HeadAccuracy",
    "MaskedPerplexity",
    "MaskedTokenAccuracy",
    "MaskedTokenMetric",
    "accuracy",
    "auroc",
    "cider_d",
    "classification_metrics",
    "corpus_bleu",
    "macro_f1",
    "multilabel_macro_f1",
    "multilabel_metrics",
    "per_class_report",
    "retrieval_metrics",
    "retrieval_ranks",
    "score_retrieval_metrics",
    "semantic_retrieval_metrics",
    "zero_shot_accuracy",
    "zero_shot_classifier",
]
