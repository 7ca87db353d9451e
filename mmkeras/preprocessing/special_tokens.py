"""The special token ids every mmkeras vocabulary starts with: `[PAD]=0, [UNK]=1, [BOS]=2, [EOS]=3`.

`SubwordTokenizer` puts `SPECIAL_TOKENS` first in every vocabulary it builds
or loads, so these ids hold for every tokenizer, dataset, model, loss, metric
and decoder of the library, which take their `pad_id` / `bos_id` / `eos_id`
defaults from here. A leaf module: it imports nothing from mmkeras.

Example:

>>> SPECIAL_TOKENS[PAD_ID], SPECIAL_TOKENS[UNK_ID], SPECIAL_TOKENS[BOS_ID], SPECIAL_TOKENS[EOS_ID]
('[PAD]', '[UNK]', '[BOS]', '[EOS]')
"""

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[BOS]", "[EOS]")
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
