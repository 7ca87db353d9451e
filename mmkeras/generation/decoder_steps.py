"""Next-token functions `step(tokens, index, caches) -> (logits, caches)` over a `Captioner`.

The decoding loops (`sampling_search`, `beam_search`) only see this interface,
the same one keras-hub samplers call `next(prompt, cache, index)`:

- `tokens`: int32 `[N, max_length + 1]`; `tokens[:, 0]` is `[BOS]`, and
  `tokens[:, i]` is the token fed at position `i`.
- `index`: int32 scalar, the position whose next token is wanted.
- returns float32 logits `[N, V]` for the token after position `index`.

`cached_step` keeps, per block, a self-attention key pool `[B, heads,
head_dim, max_length * num_beams]` (keys transposed, see `_attention`) and
value pool `[B, heads, max_length * num_beams, head_dim]`: at step `i`, beam
`j` of image `b` writes its new key and value into entry `i * num_beams + j`,
its slot `j` at position `i` (one in-place write of all beams per step).
A table `origin [N, max_length]` says, for each row, which slot holds its
key at each position; beam search moves only that table when beams change
parents (`reorder_caches`), never the pools: a new beam's past is its
parent's past, already written. Each row attends to the positions where the
slot matches its table, so the pool of an image is one key/value matrix and
the beams of that image are the query rows of one product against it.
Reordering per-row caches instead copied 8 caches of 4 MB every beam step of
the benchmark model (3.6 ms of a 24 ms step). The cross-attention keys/values
are computed once per image, in the same head-major layout, and shared by its
beams the same way. `uncached_step` recomputes the whole decoder (self- and
cross-attention keys/values included) over the fixed-size token buffer
every step: the reference the cache must match, and the baseline of the
decoding benchmark.

For speed, the cached step runs each pre-norm block as one fused single-token
update (`_block_decode_step`): the query/key/value projections as one matrix
product, the new keys and values written in place into their pools, and
attention as two batched matrix products over head-major operands (batch and
heads leading, contraction over trailing dimensions), so XLA neither slices a
stacked key/value tensor nor transposes a cache at any step. This layout
took a cached greedy step of the benchmark model from 23.5 to 18.0 ms on 2
CPU cores (the keras-hub layout `[N, 2, L, heads, head_dim]` made XLA copy
and transpose every cache at every step). It uses the layers the block owns
(`TransformerDecoderBlock.sublayers()`: their weights, layer norms and MLP),
so it computes the same function as the block's `call` (the tests check
cached == uncached decoding).
"""

from keras import ops

NEG_INF = -1e9


def _fused_attention_weights(block):
    """The block's attention weights as 2-D matrices, in its compute dtype (once per decode)."""
    dtype = block.compute_dtype
    width = block.num_heads * block.head_dim
    layers = block.sublayers()
    self_attention, cross_attention = layers.self_attention, layers.cross_attention
    projections = (self_attention.query_dense, self_attention.key_dense, self_attention.value_dense)

    def kernel(dense):
        return ops.cast(ops.reshape(dense.kernel, (-1, width)), dtype)

    def bias(dense):
        return ops.cast(ops.reshape(dense.bias, (-1,)), dtype)

    def output(dense):
        return ops.cast(ops.reshape(dense.kernel, (width, -1)), dtype), ops.cast(dense.bias, dtype)

    return {
        "qkv_kernel": ops.concatenate([kernel(d) for d in projections], axis=1),
        "qkv_bias": ops.concatenate([bias(d) for d in projections], axis=0),
        "self_output": output(self_attention.output_dense),
        "cross_query": (kernel(cross_attention.query_dense), bias(cross_attention.query_dense)),
        "cross_output": output(cross_attention.output_dense),
    }


def _attention(query, keys, values, valid=None):
    """Head-major attention: `query [B, H, Q, d]` over `keys [B, H, d, L]`, `values [B, H, L, d]`.

    Returns `[B, H, Q, d]`. Batch and head lead every operand, so both
    products compile to plain batched matrix products (no transposes or
    copies of the caches), and both are (rows x inner) times (inner x
    columns): keys are stored transposed. With several query rows (the beams
    of an image) XLA's CPU product took twice as long when it had to contract
    the keys' last axis (bench-small, beam 4: 0.40 against 0.20 ms a product).
    `valid`, if given, marks the positions each query may see (broadcast to
    the scores `[B, H, Q, L]`). Softmax in float32.
    """
    scores = ops.cast(ops.einsum("bhqd,bhdl->bhql", query, keys), "float32")
    if valid is not None:
        scores = ops.where(valid, scores, NEG_INF)
    probs = ops.cast(ops.softmax(scores, axis=-1), values.dtype)
    return ops.einsum("bhql,bhld->bhqd", probs, values)


def _block_decode_step(block, weights, x, index, pool, cross_cache, valid, num_beams=1):
    """One token through a pre-norm `TransformerDecoderBlock`, in inference mode.

    Args:
        block: the block (its layer norms and MLP layers are called).
        weights: `_fused_attention_weights(block)`.
        x: `[N, D]` the token's hidden state, `N = B * num_beams` rows.
        index: int32 scalar, the token's position.
        pool: `(keys [B, heads, head_dim, max_length * num_beams], values
            [B, heads, max_length * num_beams, head_dim])`: the self-attention
            pool, position `i` of slot `j` at entry `i * num_beams + j`.
        cross_cache: `(keys [B, heads, head_dim, S], values [B, heads, S,
            head_dim])`: the image's cross-attention keys/values (shared by
            its beams).
        valid: bool, broadcastable to `[B, heads, num_beams, max_length *
            num_beams]`: which pool entries each row attends to.
        num_beams: int, rows per image.

    Returns:
        `(x [N, D], pool)` with each row's key/value written at `index`.
    """
    heads, head_dim = block.num_heads, block.head_dim
    layers = block.sublayers()
    scale = ops.cast(head_dim**-0.5, x.dtype)

    def per_image(rows):  # [N, heads * head_dim] -> [B, heads, beams, head_dim]
        return ops.transpose(ops.reshape(rows, (-1, num_beams, heads, head_dim)), (0, 2, 1, 3))

    def per_row(attended):  # the inverse
        return ops.reshape(ops.transpose(attended, (0, 2, 1, 3)), (-1, heads * head_dim))

    # Causal self-attention over each row's own past in the pool.
    h = layers.self_attention_norm(x)
    qkv = ops.matmul(h, weights["qkv_kernel"]) + weights["qkv_bias"]
    query, key, value = (per_image(part) for part in ops.split(qkv, 3, axis=-1))
    keys, values = pool
    keys = ops.slice_update(keys, [0, 0, 0, index * num_beams], ops.transpose(key, (0, 1, 3, 2)))
    values = ops.slice_update(values, [0, 0, index * num_beams, 0], value)
    attended = _attention(query * scale, keys, values, valid)
    kernel, bias = weights["self_output"]
    x = x + ops.matmul(per_row(attended), kernel) + bias
    # Cross-attention: the beams of an image are the query rows of one product against its keys.
    h = layers.cross_attention_norm(x)
    kernel, bias = weights["cross_query"]
    attended = _attention(per_image(ops.matmul(h, kernel) + bias) * scale, *cross_cache)
    kernel, bias = weights["cross_output"]
    x = x + ops.matmul(per_row(attended), kernel) + bias
    # MLP.
    h = layers.feedforward_norm(x)
    return x + layers.feedforward_output(layers.feedforward_intermediate(h)), (keys, values)


def _attended_positions(origin, index, num_beams):
    """Which pool entries each row attends to, for `_attention`'s `valid`.

    Positions `0..index`, each in the slot that `origin [N, L]` names; with
    one beam there is one slot, so just the positions.
    """
    length = origin.shape[1]
    past = ops.arange(length, dtype="int32") <= index
    if num_beams == 1:
        return past
    origin = ops.reshape(origin, (-1, num_beams, length, 1))  # [B, row, L, 1]
    slots = ops.arange(num_beams, dtype="int32")  # [slot]
    valid = ops.logical_and(ops.equal(origin, slots), past[:, None])
    return ops.reshape(valid, (-1, 1, num_beams, length * num_beams))  # [B, 1, row, L * slot]


def _head_major(dense, tokens, keys=False):
    """`dense` (an attention projection) of `tokens [B, S, D]` as `[B, heads, S, head_dim]`.

    Keys (`keys=True`) come transposed, `[B, heads, head_dim, S]`, as `_attention` takes them.
    """
    return ops.transpose(dense(tokens), (0, 2, 3, 1) if keys else (0, 2, 1, 3))


def _repeat_beams(x, num_beams):
    return x if num_beams == 1 else ops.repeat(x, num_beams, axis=0)


def cached_step(model, image_tokens, max_length, num_beams=1):
    """The KV-cached step function and its initial caches.

    Args:
        model: a `Captioner`.
        image_tokens: `[B, S, D]` from `model.encode_images`.
        max_length: int, number of positions the self-attention cache holds.
        num_beams: int; rows become `B * num_beams` (beam `j` of image `b` is
            row `b * num_beams + j`). The cross-attention keys/values are
            computed once per image and shared by its beams (not copied: the
            beams' queries attend to the same per-image tensor).

    Returns:
        `(step, caches)`: the function and the loop-carried caches, a flat
        tuple: the table `origin` (int32 `[N, max_length]`, rows on axis 0),
        then block 0's key pool (`[B, heads, head_dim, max_length *
        num_beams]`), block 0's value pool (`[B, heads, max_length *
        num_beams, head_dim]`), block 1's key pool, ... Beam search
        must move them with `reorder_caches`, which moves only `origin`.

    Example:

    >>> import numpy as np
    >>> from mmkeras.testing.decoding import tiny_captioner
    >>> model = tiny_captioner(vocabulary_size=30, sequence_length=8)
    >>> image_tokens = model.encode_images(np.zeros((2, 32, 32, 3), "float32"))
    >>> step, caches = cached_step(model, image_tokens, max_length=8)
    >>> tokens = np.full((2, 9), 2, "int32")
    >>> logits, caches = step(tokens, 0, caches)
    >>> logits.shape
    TensorShape([2, 30])
    """
    if not all(block.normalize_first for block in model.decoder_blocks):
        raise ValueError("`cached_step` needs pre-norm decoder blocks (`normalize_first=True`).")
    images = ops.shape(image_tokens)[0]
    cross_caches, caches = [], [ops.zeros((images * num_beams, max_length), dtype="int32")]
    for block in model.decoder_blocks:
        attention = block.sublayers().cross_attention
        cross_caches.append(
            (
                _head_major(attention.key_dense, image_tokens, keys=True),
                _head_major(attention.value_dense, image_tokens),
            )
        )
        entries, dtype = max_length * num_beams, block.compute_dtype
        caches += [  # key pool (transposed), value pool
            ops.zeros((images, block.num_heads, block.head_dim, entries), dtype),
            ops.zeros((images, block.num_heads, entries, block.head_dim), dtype),
        ]
    weights = [_fused_attention_weights(block) for block in model.decoder_blocks]
    own_slots = (ops.arange(images * num_beams, dtype="int32") % num_beams)[:, None]

    def step(tokens, index, caches):
        index = ops.cast(index, "int32")
        origin = caches[0]  # with one beam every row keeps slot 0, which the table already says
        if num_beams > 1:
            origin = ops.slice_update(origin, [0, index], own_slots)  # each row writes into its own slot
        valid = _attended_positions(origin, index, num_beams)
        current = ops.expand_dims(ops.take(tokens, index, axis=1), 1)
        x = model.embedding(current, start_index=index)[:, 0]
        new_caches = [origin]
        for i, (block, block_weights, cross) in enumerate(zip(model.decoder_blocks, weights, cross_caches)):
            pool = caches[1 + 2 * i : 3 + 2 * i]
            x, pool = _block_decode_step(block, block_weights, x, index, pool, cross, valid, num_beams)
            new_caches += pool
        return model.hidden_to_logits(x), tuple(new_caches)

    return step, tuple(caches)


def reorder_caches(caches, source_rows):
    """`cached_step`'s caches after beam search gives row `i` the past of row `source_rows[i]`.

    Only the `origin` table moves; the pools stay where they were written.

    Args:
        caches: the tuple `cached_step` returned (or a later step's).
        source_rows: int32 `[N]`, the parent row of each new row.

    Returns:
        The caches, reordered.
    """
    origin, *pools = caches
    return (ops.take(origin, source_rows, axis=0), *pools)


def uncached_step(model, image_tokens, max_length, num_beams=1):
    """The step function that recomputes the decoder over the whole buffer each step.

    Same arguments and return as `cached_step`; its caches are `()`. The
    causal mask makes positions after `index` irrelevant, so its logits equal
    the cached ones up to float rounding.

    Example:

    >>> import numpy as np
    >>> from mmkeras.testing.decoding import tiny_captioner
    >>> model = tiny_captioner(dropout=0.0)
    >>> image_tokens = model.encode_images(np.ones((1, 32, 32, 3), "float32"))
    >>> tokens = np.array([[2, 7, 5, 0, 0, 0, 0, 0, 0]], "int32")
    >>> (cached, caches), (uncached, _) = (make(model, image_tokens, 8) for make in (cached_step, uncached_step))
    >>> for index in range(3):
    ...     logits, caches = cached(tokens, index, caches)
    ...     assert np.allclose(logits, uncached(tokens, index, ())[0], atol=1e-5)
    """
    image_tokens = _repeat_beams(image_tokens, num_beams)

    def step(tokens, index, caches):
        index = ops.cast(index, "int32")
        hidden = model.decode_hidden(tokens[:, :max_length], image_tokens)
        current = ops.expand_dims(ops.take(hidden, index, axis=1), 1)
        return model.hidden_to_logits(current)[:, 0], caches

    return step, ()
