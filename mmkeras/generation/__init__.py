"""Caption decoding: greedy, beam search (length penalty), top-k and top-p sampling.

KV-cached, one XLA-compiled `while_loop` with static shapes; see `CaptionGenerator`.
"""

from mmkeras.generation.beam_search import beam_search
from mmkeras.generation.caption_generator import CaptionGenerator
from mmkeras.generation.decoder_steps import cached_step
from mmkeras.generation.decoder_steps import reorder_caches
from mmkeras.generation.decoder_steps import uncached_step
from mmkeras.generation.sampling_search import sampling_search
from mmkeras.generation.token_selection import greedy_tokens
from mmkeras.generation.token_selection import mask_logits
from mmkeras.generation.token_selection import sample_tokens
from mmkeras.generation.token_selection import top_k
from mmkeras.generation.token_selection import top_k_filter
from mmkeras.generation.token_selection import top_p_filter

__all__ = [
    "CaptionGenerator",
    "beam_search",
    "cached_step",
    "greedy_tokens",
    "mask_logits",
    "reorder_caches",
    "sample_tokens",
    "sampling_search",
    "top_k",
    "top_k_filter",
    "top_p_filter",
    "uncached_step",
]
