"""AdamW with linear warmup and cosine decay: the default for every family."""

import keras

from mmkeras.training.fused_adamw import FusedAdamW


def default_optimizer(
    total_steps,
    learning_rate=1e-3,
    weight_decay=0.05,
    warmup_fraction=0.1,
    clipnorm=1.0,
    accumulate=1,
):
    """AdamW whose learning rate warms up linearly, then decays with a cosine.

    A `FusedAdamW` (the same update as `keras.optimizers.AdamW`, traced and run
    as one op per variable). Biases, norms and the logit scale are excluded
    from weight decay.

    Args:
        total_steps: int, optimizer steps in the whole run.
        learning_rate: float, the peak learning rate.
        weight_decay: float, decoupled weight decay.
        warmup_fraction: float in [0, 1), share of steps spent warming up.
        clipnorm: float or None, clips each variable's gradient to this norm
            (Keras' `clipnorm`, per variable, not the global norm).
        accumulate: int, average the gradients of this many micro-batches
            before each update (Keras' `gradient_accumulation_steps`). For
            losses that average over examples this equals one step on a
            batch `accumulate` times larger; contrastive negatives stay within
            each micro-batch. The schedule counts micro-batches.

    Example:

    >>> opt = default_optimizer(total_steps=100)
    >>> round(float(opt.learning_rate), 6)  # step 0 of the warmup
    0.0
    """
    if int(total_steps) < 1:
        raise ValueError(f"`total_steps` must be >= 1, got {total_steps!r}.")
    if not 0.0 <= warmup_fraction < 1.0:
        raise ValueError(f"`warmup_fraction` must be in [0, 1), got {warmup_fraction!r}.")
    if int(accumulate) < 1:
        raise ValueError(f"`accumulate` must be >= 1, got {accumulate!r}.")
    warmup = int(total_steps * warmup_fraction)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else learning_rate,
        decay_steps=max(int(total_steps) - warmup, 1),
        alpha=0.01,
        warmup_target=learning_rate if warmup else None,
        warmup_steps=warmup,
    )
    return FusedAdamW(
        learning_rate=schedule,
        weight_decay=weight_decay,
        clipnorm=clipnorm,
        beta_2=0.98,
        exclude_from_weight_decay=["bias", "gamma", "beta", "log_scale", "norm"],
        gradient_accumulation_steps=int(accumulate) if int(accumulate) > 1 else None,
    )
