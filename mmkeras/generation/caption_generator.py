import numpy as np
import tensorflow as tf
from keras import ops

from mmkeras.generation.beam_search import beam_search
from mmkeras.generation.decoder_steps import cached_step
from mmkeras.generation.decoder_steps import reorder_caches
from mmkeras.generation.decoder_steps import uncached_step
from mmkeras.generation.sampling_search import sampling_search
from mmkeras.generation.token_selection import greedy_tokens
from mmkeras.generation.token_selection import sample_tokens
from mmkeras.preprocessing.special_tokens import BOS_ID
from mmkeras.preprocessing.special_tokens import EOS_ID
from mmkeras.preprocessing.special_tokens import PAD_ID

STRATEGIES = ("greedy", "beam", "top_k", "top_p")


class CaptionGenerator:
    """Generates captions from a `Captioner`: greedy, beam, top-k or top-p decoding.

    The whole decode (image encoding, cross-attention keys/values computed once
    per image, then a `while_loop` over positions with a KV cache) is one
    `tf.function(jit_compile=True)` of `(images, seed)` with static shapes
    (`max_length` fixed; the batch is any size, one XLA compilation per size).
    Each caption stops at its `[EOS]`; finished rows emit `[PAD]`.

    keras-hub's samplers were checked and not used for the loop: their
    `BeamSampler` has no length penalty, keeps extending beams after `[EOS]`,
    and returns scores only with `return_all_beams`; none of the samplers
    returns per-sequence scores or pads after `[EOS]`, and `TopKSampler` /
    `TopPSampler` draw from a stateful `SeedGenerator`. Here sampling is
    stateless (keyed by `seed` and the step), so `generate` is a pure function
    of its inputs, and the top-p rule is keras-hub's (keep the token that
    crosses `p`).

    Scores: `sum(log p(token)) / length ** length_penalty` under the model's
    distribution (temperature 1; `[PAD]`/`[BOS]` never allowed), `length` the
    number of generated tokens including `[EOS]`. Beam search ranks hypotheses
    by that score (Hugging Face's length penalty convention).

    Args:
        model: a `mmkeras.models.captioner.Captioner`.
        max_length: int, the most tokens to generate (`[EOS]` included);
            defaults to, and may not exceed, `model.sequence_length`.
        strategy: "greedy", "beam", "top_k" or "top_p".
        num_beams: int, beam width for "beam".
        length_penalty: float, exponent of the length normalisation.
        k: int, tokens kept by "top_k".
        p: float in (0, 1], probability mass kept by "top_p".
        temperature: float > 0, divides the logits before sampling ("top_k",
            "top_p").
        seed: int for reproducible sampling, or None for a fresh seed every
            call; `generate(images, seed=...)` overrides it.
        min_length: int, `[EOS]` is forbidden before this many tokens.
        use_cache: bool; False recomputes the full decoder every step (slow,
            for testing and benchmarking the cache).
        jit_compile: bool, compile the decode with XLA.
        detokenizer: optional object with `detokenize(ids) -> strings`; it
            receives a `tf.RaggedTensor` of each caption's ids (no `[BOS]`,
            `[EOS]` or `[PAD]`). Defaults to `model.tokenizer`.
        bos_id: int, `[BOS]` (2).
        eos_id: int, `[EOS]` (3).
        pad_id: int, `[PAD]` (0).

    Example:

    >>> import numpy as np
    >>> from mmkeras.testing.decoding import tiny_captioner
    >>> model = tiny_captioner(vocabulary_size=30, sequence_length=8)
    >>> generator = CaptionGenerator(model, max_length=6, strategy="beam", num_beams=3)
    >>> out = generator.generate(np.zeros((2, 32, 32, 3), "float32"))
    >>> out["token_ids"].shape, out["scores"].shape
    (TensorShape([2, 6]), TensorShape([2]))
    """

    def __init__(self, model, max_length=None, strategy="greedy", num_beams=4, length_penalty=1.0, k=10,
                 p=0.9, temperature=1.0, seed=None, min_length=0, use_cache=True, jit_compile=True,
                 detokenizer=None, bos_id=BOS_ID, eos_id=EOS_ID, pad_id=PAD_ID):
        for attribute in ("decoder_blocks", "encode_images", "hidden_to_logits", "sequence_length"):
            if not hasattr(model, attribute):
                raise ValueError(
                    f"`model` must be a mmkeras Captioner, got {type(model).__name__} (no `{attribute}`)."
                )
        if strategy not in STRATEGIES:
            raise ValueError(f"`strategy` must be one of {STRATEGIES}, got {strategy!r}.")
        max_length = model.sequence_length if max_length is None else int(max_length)
        if not 1 <= max_length <= model.sequence_length:
            raise ValueError(
                f"`max_length` must be in [1, model.sequence_length={model.sequence_length}], got {max_length}."
            )
        if not 0 <= int(min_length) <= max_length:
            raise ValueError(f"`min_length` must be in [0, max_length={max_length}], got {min_length!r}.")
        vocabulary_size = model.vocabulary_size
        if strategy == "beam" and not 1 <= int(num_beams) <= (vocabulary_size - 3) // 2:
            raise ValueError(
                f"`num_beams` must be in [1, {(vocabulary_size - 3) // 2}] for a vocabulary of "
                f"{vocabulary_size}, got {num_beams!r}."
            )
        if strategy == "top_k" and not 1 <= int(k) <= vocabulary_size:
            raise ValueError(f"`k` must be in [1, vocabulary_size={vocabulary_size}], got {k!r}.")
        if strategy == "top_p" and not 0.0 < float(p) <= 1.0:
            raise ValueError(f"`p` must be in (0, 1], got {p!r}.")
        if not float(temperature) > 0.0:
            raise ValueError(f"`temperature` must be > 0, got {temperature!r}.")
        self.model = model
        self.max_length = max_length
        self.strategy = strategy
        self.num_beams = int(num_beams) if strategy == "beam" else 1
        self.length_penalty = float(length_penalty)
        self.k = int(k)
        self.p = float(p)
        self.temperature = float(temperature)
        self.seed = None if seed is None else int(seed)
        self.min_length = int(min_length)
        self.use_cache = bool(use_cache)
        self.jit_compile = bool(jit_compile)
        self.detokenizer = detokenizer if detokenizer is not None else getattr(model, "tokenizer", None)
        self.bos_id, self.eos_id, self.pad_id = int(bos_id), int(eos_id), int(pad_id)
        self.generate_fn = tf.function(self._decode, jit_compile=self.jit_compile, autograph=False)

    def _decode(self, images, seed):
        """Pure function `(images [B,H,W,3], seed int32[2]) -> {"token_ids", "scores"}`."""
        model = self.model
        batch_size = ops.shape(images)[0]
        image_tokens = model.encode_images(images, training=False)
        make_step = cached_step if self.use_cache else uncached_step
        step, caches = make_step(model, image_tokens, self.max_length, num_beams=self.num_beams)
        special = dict(bos_id=self.bos_id, eos_id=self.eos_id, pad_id=self.pad_id, min_length=self.min_length)
        if self.strategy == "beam":
            token_ids, scores = beam_search(
                step,
                caches,
                batch_size,
                self.max_length,
                self.num_beams,
                length_penalty=self.length_penalty,
                reorder=reorder_caches if self.use_cache else None,
                **special,
            )
        else:
            if self.strategy == "greedy":
                select = lambda logits, index: greedy_tokens(logits)  # noqa: E731
            else:
                filters = {"k": self.k} if self.strategy == "top_k" else {"p": self.p}
                select = lambda logits, index: sample_tokens(  # noqa: E731
                    logits, seed, index, temperature=self.temperature, **filters
                )
            token_ids, scores = sampling_search(
                step,
                caches,
                batch_size,
                self.max_length,
                select,
                length_penalty=self.length_penalty,
                **special,
            )
        return {"token_ids": token_ids, "scores": scores}

    def _seed_tensor(self, seed):
        seed = self.seed if seed is None else seed
        if seed is None:
            return tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int32)
        if isinstance(seed, (int, np.integer)):
            return tf.constant([int(seed), 0], dtype=tf.int32)
        seed = tf.cast(seed, tf.int32)
        if seed.shape.rank == 0:
            return tf.stack([seed, 0])
        return seed

    def generate(self, images, seed=None):
        """Captions a batch of images.

        Args:
            images: float `[B, H, W, 3]`, preprocessed like the training images.
            seed: optional int / int32 `[2]` tensor for the sampling strategies;
                defaults to the constructor's `seed`.

        Returns:
            `{"token_ids": int32 [B, max_length], "scores": float32 [B]}` plus
            `"captions"` (string `[B]`) when a detokenizer is available.
            `token_ids` exclude `[BOS]`, include `[EOS]` and then `[PAD]`.
        """
        images = tf.convert_to_tensor(images)
        if images.shape.rank != 4:
            raise ValueError(f"`images` must have shape [batch, height, width, channels], got {images.shape}.")
        tower = getattr(self.model, "image_encoder", None)
        expected = tuple(tower.inputs[0].shape[1:]) if getattr(tower, "inputs", None) else ()
        if any(want is not None and got is not None and want != got for want, got in zip(expected, images.shape[1:])):
            raise ValueError(
                f"`images` must have shape [batch, {', '.join(str(d) for d in expected)}] for this model's image "
                f"tower, got {tuple(images.shape)}."
            )
        if images.dtype != tf.float32:
            images = tf.cast(images, tf.float32)
        outputs = dict(self.generate_fn(images, self._seed_tensor(seed)))
        if self.detokenizer is not None:
            outputs["captions"] = self.detokenize(outputs["token_ids"])
        return outputs

    def caption_tokens(self, token_ids):
        """The ids of each caption, as a `tf.RaggedTensor` without `[EOS]`/`[PAD]`."""
        token_ids = tf.convert_to_tensor(token_ids)
        stop = tf.logical_or(tf.equal(token_ids, self.eos_id), tf.equal(token_ids, self.pad_id))
        lengths = tf.argmax(
            tf.concat([tf.cast(stop, tf.int32), tf.ones_like(token_ids[:, :1], tf.int32)], axis=1),
            axis=1,
            output_type=tf.int32,
        )
        return tf.RaggedTensor.from_tensor(token_ids, lengths=lengths)

    def detokenize(self, token_ids):
        """Strings `[B]` for generated `token_ids`, through the detokenizer."""
        if self.detokenizer is None:
            raise ValueError("`detokenizer` is None and the model has no tokenizer: cannot make captions.")
        captions = self.detokenizer.detokenize(self.caption_tokens(token_ids))
        # Some tokenizers return Python lists when called eagerly.
        return captions if isinstance(captions, tf.Tensor) else tf.convert_to_tensor(captions, tf.string)

    def get_config(self):
        """The decoding settings (not the model or the detokenizer)."""
        return {
            "max_length": self.max_length,
            "strategy": self.strategy,
            "num_beams": self.num_beams,
            "length_penalty": self.length_penalty,
            "k": self.k,
            "p": self.p,
            "temperature": self.temperature,
            "seed": self.seed,
            "min_length": self.min_length,
            "use_cache": self.use_cache,
            "jit_compile": self.jit_compile,
            "bos_id": self.bos_id,
            "eos_id": self.eos_id,
            "pad_id": self.pad_id,
        }
